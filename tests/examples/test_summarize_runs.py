"""`examples/summarize_runs.py`: the README's results tables, read from finished runs' `all_results.json`."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from tests.examples.test_run_ner import REPO
from tests.test_model_card import classification_results, ner_results, write_run


def summarize(capsys, *runs) -> str:
    spec = importlib.util.spec_from_file_location("summarize_runs", REPO / "examples/summarize_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = sys.argv
    sys.argv = ["summarize_runs.py", *map(str, runs)]
    try:
        module.main()
    finally:
        sys.argv = argv
    return capsys.readouterr().out


def test_ner_table_rows_and_mean_of_the_full_model(tmp_path, capsys):
    ablation = ner_results()
    ablation["config"]["use_adversary"] = False
    out = summarize(capsys, write_run(tmp_path / "full", ner_results()), write_run(tmp_path / "abl", ablation))
    rows = [line for line in out.splitlines() if line.startswith("| nl ")]
    assert (
        rows[0]
        == "| nl | en de es | word vectors + CharCNN | MAN-MoE | zero_shot | 600 | 600 | 62.2 | 59.9 (65.6 / 55.2) | "
        "49 min |"
    )
    assert "| no adversary |" in rows[1]
    assert "Mean target test F1 of the full model (word vectors + CharCNN) over 1 target(s): 59.9" in out


def test_a_distilled_run_says_its_settings_and_is_averaged_apart_from_the_runs_without_teachers(tmp_path, capsys):
    member = {"model_type": "manmoe", "path": "/runs/t", "weights_sha256": "0" * 64}
    ensemble = {"model_type": "ensemble", "members": [member, member | {"path": "/runs/u"}], "test": {}}
    record = {"distillation_alpha": 0.0, "distillation_temperature": 1.0, "target_distillation_weight": 3.0,
              "teacher_mixture": "uniform", "target_distillation_batches": 3,
              "teachers": {lang: ensemble for lang in ("en", "de", "es")}}  # fmt: skip
    distilled = ner_results() | {"distillation": record, "target_train": {"size": 0, "transfer_method": "zero_shot"}}
    distilled["test"] = distilled["test"] | {"nl": distilled["test"]["nl"] | {"f1": 70.0}}
    out = summarize(capsys, write_run(tmp_path / "alone", ner_results()), write_run(tmp_path / "student", distilled))
    rows = [line for line in out.splitlines() if line.startswith("| nl ")]
    assert "| MAN-MoE | zero_shot | 600 |" in rows[0]
    assert "| MAN-MoE | zero_shot, distilled (α 0.0, β 3.0, T 1.0, 3 target batches per step, 2 teachers per " \
        "source) | 600 |" in rows[1]  # fmt: skip
    assert "(word vectors + CharCNN) over 1 target(s): 59.9" in out
    assert "(word vectors + CharCNN, distilled (α 0.0, β 3.0, T 1.0, 3 target batches per step, 2 teachers per " \
        "source)) over 1 target(s): 70.0" in out  # fmt: skip
    assert "| method | nl |" not in out, "zero-shot runs get no table by few-shot method"


def test_character_case_other_than_the_references_is_its_own_input(tmp_path, capsys):
    """A German-target run whose characters kept their case (`--lowercase_characters no`) is shown and averaged as
    another input; an older run without the `tokenizer` entry is read from its saved tokenizer_config.json; several
    runs of one target are counted as runs, not targets."""
    as_written = ner_results() | {"target_language": "de", "tokenizer": {"lowercase_characters": False}}
    reference = write_run(tmp_path / "reference", ner_results() | {"target_language": "de"})
    (reference / "tokenizer_config.json").write_text('{"lowercase_characters": true}', encoding="utf-8")
    seed = write_run(tmp_path / "seed", ner_results() | {"target_language": "de"})
    out = summarize(capsys, write_run(tmp_path / "as-written", as_written), reference, seed)
    rows = [line for line in out.splitlines() if line.startswith("| de ")]
    assert "| word vectors + CharCNN, characters as written | MAN-MoE |" in rows[0]
    assert "| word vectors + CharCNN | MAN-MoE |" in rows[1] and "| word vectors + CharCNN | MAN-MoE |" in rows[2]
    assert "(word vectors + CharCNN, characters as written) over 1 target(s): 62.8" in out
    assert "(word vectors + CharCNN) over 2 runs of 1 target(s): 62.8" in out


def test_resumed_run_says_its_wall_time_counts_from_the_resume(tmp_path, capsys):
    results = ner_results()
    results["train"].update(resumed_from_checkpoint="/runs/x/checkpoint-300", resumed_at_step=300)
    assert "| 49 min since the resume at step 300 |" in summarize(capsys, write_run(tmp_path / "run", results))


def test_classification_table(tmp_path, capsys):
    out = summarize(capsys, write_run(tmp_path / "cls", classification_results()))
    assert (
        "| de | books | en fr ja | word vectors | MAN-MoE | zero_shot | 200 | 150 | 72.7 | 73.0 | en 77.1 / fr 75.0 / "
        "ja 67.2 |" in out
    )


def test_few_shot_runs_get_a_table_by_method_with_the_mean_and_spread_over_subset_seeds(tmp_path, capsys):
    runs = [write_run(tmp_path / "zero", ner_results())]
    for method, seed, f1 in [("joint", 1, 0.60), ("joint", 2, 0.64), ("metaxl", 1, 0.62), ("metaxl", 2, 0.66)]:
        results = ner_results() | {"target_train": {"transfer_method": method, "size": 100, "subset_seed": seed,
                                                    "ids": list(range(100))}}  # fmt: skip
        results["test"] = {**results["test"], "nl": {**results["test"]["nl"], "f1": f1 * 100}}
        runs.append(write_run(tmp_path / f"{method}-{seed}", results))
    (runs[-1] / "trainer_state.json").write_text(json.dumps({"log_history": [
        {"step": 50, "loss": 2.0, "task_loss_nl": 0.5, "rtn_norm": 0.25, "meta_grad_norm": 0.0012},
        {"step": 100, "loss": 1.0, "task_loss_nl": 0.125, "rtn_norm": 0.5, "meta_grad_norm": 0.0002},
        {"step": 100, "eval_loss": 3.0}]}))  # fmt: skip
    out = summarize(capsys, *runs)
    assert "| metaxl-2 | 0.5 → 0.125 | 0.25 → 0.5 | 0.0012 → 0.0002 |" in out
    assert "| MAN-MoE | joint N=100 seed 2 | 600 |" in out
    assert "| joint | 62.0 ± 2.8 (60.0–64.0), n=2 | 62.0 | 49 min |" in out
    assert "| metaxl | 64.0 ± 2.8 (62.0–66.0), n=2 | 64.0 | 49 min |" in out
    assert "| zero_shot | 59.9, n=1 | 59.9 | 49 min |" in out
    assert "over 1 target(s): 59.9" in out, "the zero-shot mean counts the zero-shot run only"


def test_refuses_unfinished_runs_and_mixed_tasks(tmp_path, capsys):
    with pytest.raises(SystemExit, match="all_results.json: not found"):
        summarize(capsys, tmp_path / "empty")
    ner, cls = write_run(tmp_path / "ner", ner_results()), write_run(tmp_path / "cls", classification_results())
    with pytest.raises(SystemExit, match="different tasks"):
        summarize(capsys, ner, cls)


def test_refuses_malformed_results_naming_the_file_and_field(tmp_path, capsys):
    """The runs are read by `load_run_results`, as the model cards read them: a malformed file stops the table with
    the file and the field, and an NER run without the target's dev score is refused (its table has a dev column)."""
    broken = write_run(tmp_path / "broken", ner_results())
    (broken / "all_results.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"broken/all_results.json: not valid JSON"):
        summarize(capsys, broken)
    nan = ner_results()
    nan["test"]["nl"]["f1"] = float("nan")
    with pytest.raises(SystemExit, match=r"field 'test.nl.f1' is nan, not a finite number"):
        summarize(capsys, write_run(tmp_path / "nan", nan))
    no_dev = ner_results()
    del no_dev["dev"]["nl"]
    with pytest.raises(SystemExit, match=r"no-dev/all_results.json: no dev scores for the target 'nl'"):
        summarize(capsys, write_run(tmp_path / "no-dev", no_dev))
