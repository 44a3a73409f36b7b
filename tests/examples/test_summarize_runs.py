"""`examples/summarize_runs.py`: the README's results tables, read from finished runs' `all_results.json`."""

from __future__ import annotations

import importlib.util
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
        == "| nl | en de es | word vectors + CharCNN | MAN-MoE | 600 | 600 | 62.2 | 59.9 (65.6 / 55.2) | 49 min |"
    )
    assert "| no adversary |" in rows[1]
    assert "Mean target test F1 of the full model (word vectors + CharCNN) over 1 target(s): 59.9" in out


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
        "| de | books | en fr ja | word vectors | MAN-MoE | 200 | 150 | 72.7 | 73.0 | en 77.1 / fr 75.0 / ja 67.2 |"
        in out
    )


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
