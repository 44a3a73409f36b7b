"""Model cards from a run's `all_results.json`: the model-index equals the file, the body says what the file says,
incomplete files are refused, and the `manmoe-card` console script writes README.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from modeling_manmoe.errors import DataFormatError
from modeling_manmoe.run.model_card import (
    build_model_card,
    command_without_resume,
    main,
    write_model_card,
)
from modeling_manmoe.run.results import ResultsFileNotFoundError

REPO = Path(__file__).resolve().parents[1]

SHA = {name: f"{index:x}" * 64 for index, name in enumerate("abcdefghijklmnop", start=1)}
CONLL = {"en": "conll2003/eng", "de": "conll2003/deu", "es": "conll2002/esp", "nl": "conll2002/ned"}
SUFFIXES = {"train": "train", "validation": "testa", "test": "testb"}


def ner_results() -> dict:
    """A `run_ner.py` results file in the shape of runs/ner-*: sources en de es, target nl, word vectors."""
    scores = {
        "dev": {"en": (74.6, 73.9, 74.2369), "de": (68.0722, 64.8, 66.4), "es": (60.6, 63.0, 61.8), "nl": (67.4, 57.7, 62.1783)},
        "test": {"en": (73.1, 72.2, 72.6512), "de": (64.7, 61.1, 62.8307), "es": (62.0, 64.6, 63.3), "nl": (65.5713, 55.189, 59.9339)},
    }  # fmt: skip
    provenance = {
        f"{split}/{lang}": {"path": f"/data/{CONLL[lang]}.{suffix}", "sha256": SHA["abcd"[i]], "sentences": 100 + i}
        for split, suffix in SUFFIXES.items()
        for i, lang in enumerate(CONLL)
    }
    provenance |= {f"word_vectors/{lang}": {"path": f"/vec/{lang}.vec.gz", "sha256": SHA["m"]} for lang in CONLL}
    return {
        "task": "token-classification",
        "source_languages": ["en", "de", "es"],
        "target_language": "nl",
        "seed": 42,
        "command": "python examples/run_ner.py --source_languages en de es --target_language nl --max_steps 600",
        "config": {
            "use_char_cnn": True,
            "use_adversary": True,
            "use_private_moe": True,
            "use_predictor_moe": True,
            "source_languages": ["en", "de", "es"],
            "unlabeled_languages": ["nl"],
            "id2label": {"0": "O", "1": "B-PER", "2": "I-PER"},
        },
        "dev": {lang: dict(zip(("precision", "recall", "f1"), v, strict=True)) for lang, v in scores["dev"].items()},
        "test": {lang: dict(zip(("precision", "recall", "f1"), v, strict=True)) for lang, v in scores["test"].items()},
        "train": {
            "global_step": 600,
            "epochs": 0.853,
            "steps_per_epoch": 703,
            "train_runtime_s": 2450.4,
            "best_checkpoint": "/work/runs/ner-nl/checkpoint-600",
            "best_selection_score": 49.2,
            "model_selection": "target",
        },
        "training_arguments": {"learning_rate": 0.001, "per_device_train_batch_size": 16, "seed": 42},
        "data_and_vector_files": provenance,
        "hardware": {"cpu_count": 2, "cuda": None, "processes": 1, "torch_threads": 1, "platform": "Linux-x"},
        "versions": {"modeling_manmoe": "0.1.0", "torch": "2.13.0+cpu", "transformers": "5.23.0"},
        "wall_time_s": 2950.7,
    }


def classification_results() -> dict:
    """A `run_classification.py` results file in the shape of runs/cls-de-books: dev held out from training."""
    folders = {"en": "en", "fr": "fr", "ja": "jp", "de": "de"}
    provenance = {
        f"{split}/{lang}": {"path": f"/webis/{folder}/books/{split}.review.gz", "sha256": SHA["e"], "texts": 2000}
        for split in ("train", "test")
        for lang, folder in folders.items()
    }
    provenance |= {
        f"validation/{lang}": {"held_out_from": f"train/{lang}", "texts": 200} for lang in ("en", "fr", "ja")
    }
    return {
        "task": "text-classification",
        "source_languages": ["en", "fr", "ja"],
        "target_language": "de",
        "domain": "books",
        "max_words": 64,
        "seed": 42,
        "command": "python examples/run_classification.py --target_language de --domain books --max_words 64",
        "config": {"use_char_cnn": False, "id2label": {"0": "negative", "1": "positive"}},
        "dev": {"en": {"accuracy": 75.5}, "fr": {"accuracy": 75.0}, "ja": {"accuracy": 67.5}},
        "test": {"de": {"accuracy": 73.05}, "en": {"accuracy": 77.1}, "fr": {"accuracy": 75.05}, "ja": {"accuracy": 67.2}},
        "train": {"global_step": 200, "epochs": 1.77, "best_checkpoint": "runs/x/checkpoint-150",
                  "best_selection_score": 72.66666666666667, "model_selection": "source_mean", "train_runtime_s": 497.0},
        "data_and_vector_files": provenance,
        "wall_time_s": 541.2,
    }  # fmt: skip


RESULTS = {"token-classification": ner_results, "text-classification": classification_results}


def write_run(folder: Path, results: dict | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = results if isinstance(results, str) else json.dumps(results, indent=2)
    (folder / "all_results.json").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("task", sorted(RESULTS))
def test_model_index_equals_the_results_file(task, tmp_path):
    results = RESULTS[task]()
    run = write_run(tmp_path / "run", results)
    card = ModelCard.load(write_model_card(run))
    found = {
        (e.dataset_split, e.dataset_config.split("-")[0], e.metric_type): e.metric_value for e in card.data.eval_results
    }
    expected = {
        ({"dev": "validation", "test": "test"}[split], lang, metric): value
        for split in ("dev", "test")
        for lang, scores in results[split].items()
        for metric, value in scores.items()
    }
    assert found == expected  # every score, exactly as written, and nothing else
    assert len(card.data.eval_results) == len(expected)
    target_test = card.data.eval_results[0]  # the headline: the target's test score comes first
    assert (target_test.dataset_config.split("-")[0], target_test.dataset_split) == (results["target_language"], "test")
    assert {e.task_type for e in card.data.eval_results} == {task}
    assert card.data.pipeline_tag == task and card.data.library_name == "transformers" and card.data.license == "mit"
    assert card.data.language == [*results["source_languages"], results["target_language"]]
    assert {"manmoe", "cross-lingual", "zero-shot", "mixture-of-experts"} <= set(card.data.tags)
    assert results["command"] in card.text and "3098--3112" in card.text and "Xilun" in card.text


def test_ner_card_datasets_provenance_and_limitations(tmp_path):
    card = build_model_card(write_run(tmp_path / "ner-nl", ner_results()), model_id="someone/manmoe-ner-nl")
    datasets = {(e.dataset_config, e.dataset_split): (e.dataset_type, e.dataset_name) for e in card.data.eval_results}
    assert datasets[("nl", "test")] == ("conll2002", "CoNLL-2002")
    assert datasets[("es", "validation")] == ("conll2002", "CoNLL-2002")
    assert datasets[("en", "test")] == ("conll2003", "CoNLL-2003")
    assert datasets[("de", "validation")] == ("conll2003", "CoNLL-2003")
    assert card.data.datasets == ["conll2002", "conll2003"] and card.data.model_name == "someone/manmoe-ner-nl"
    text = card.text
    assert "| nl | **target (zero-shot)** | **67.4** | **57.7** | **62.1783** |" in text
    assert "| en | source (labeled) | 74.6 | 73.9 | 74.2369 |" in text
    assert "`/data/conll2002/ned.train` | `" + SHA["d"] + "` | 103 sentences, labels not used |" in text
    assert "`/vec/nl.vec.gz`" in text and SHA["m"] in text
    assert 'pipeline("token-classification", model="someone/manmoe-ner-nl", trust_remote_code=True' in text
    assert "600 optimizer steps (0.853 epochs" in text and "`checkpoint-600`" in text
    assert "2450.4 s (40.8 min) of training" in text and "2950.7 s" in text and "2 CPU cores" in text
    assert "Shortened schedule: 600 steps instead of the paper's 15,000" in text
    assert "selected on the target language's dev score" in text and "seed 42" in text
    assert "gate" not in text.split("## How to use")[0].lower()  # no picture section without a picture


@pytest.mark.parametrize(
    "target, lowercased, note",
    [
        ("nl", False, ""),
        ("de", True, ""),
        ("de", False, ", characters as written"),
        ("nl", True, ", characters lower-cased"),
    ],
)
def test_card_names_a_character_case_other_than_the_references(target, lowercased, note, tmp_path):
    results = ner_results() | {"target_language": target, "tokenizer": {"lowercase_characters": lowercased}}
    text = build_model_card(write_run(tmp_path / "run", results)).text
    assert f"input: frozen multilingual word vectors + CharCNN{note}; one expert per source language" in text


def test_card_of_an_older_run_reads_the_character_case_from_its_saved_tokenizer(tmp_path):
    """Runs made before all_results.json recorded the tokenizer: the case comes from tokenizer_config.json."""
    results = {key: value for key, value in ner_results().items() if key != "tokenizer"}
    run = write_run(tmp_path / "run", results | {"target_language": "de"})
    assert "CharCNN; one expert per source language" in build_model_card(run).text  # no saved tokenizer: no note
    (run / "tokenizer_config.json").write_text('{"lowercase_characters": false}', encoding="utf-8")
    assert "CharCNN, characters as written; one expert" in build_model_card(run).text
    (run / "tokenizer_config.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"tokenizer_config\.json: expected a JSON object, found list"):
        build_model_card(run)


def test_classification_card_webis_configs_picture_and_no_ner_limitation(tmp_path):
    run = write_run(tmp_path / "cls-de-books", classification_results())
    card = build_model_card(run, picture="gates.png", license="apache-2.0")
    by_key = {(e.dataset_config, e.dataset_split): e for e in card.data.eval_results}
    assert by_key[("de-books", "test")].dataset_type == "webis-cls-10"
    assert by_key[("de-books", "test")].metric_value == 73.05
    assert by_key[("en-books", "validation")].dataset_args == {"held_out_from": "train/en"}
    assert ("de-books", "validation") not in by_key  # the target has no labeled dev set
    assert card.data.license == "apache-2.0" and "sentiment-analysis" in card.data.tags
    text = card.text
    assert "![Mean gate weight per source expert](gates.png)" in text
    assert (
        "| de | **target (zero-shot)** | – | **73.05** |" in text and "| fr | source (labeled) | 75.0 | 75.05 |" in text
    )
    assert 'pipeline("text-classification"' in text and "first 64 words" in text
    assert "Shortened schedule" not in text and "source languages' mean dev score (no target labels used)" in text
    assert "selection score 72.67" in text


def test_ablation_card_says_so(tmp_path):
    results = ner_results()
    results["config"]["use_private_moe"] = False
    results["config"]["use_adversary"] = False
    card = build_model_card(write_run(tmp_path / "run", results))
    assert "ablation" in card.data.tags and "adversarial-training" not in card.data.tags
    assert "This is an ablation (no adversary, no private MoE)" in card.text


def _without(field):
    def change(results):
        del results[field]

    return change


def _set(path, value):
    def change(results):
        *parents, last = path
        for key in parents:
            results = results[key]
        results[last] = value

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (_without("task"), "missing field 'task'"),
        (_without("source_languages"), "missing field 'source_languages'"),
        (_without("target_language"), "missing field 'target_language'"),
        (_without("config"), "missing field 'config'"),
        (_without("command"), "missing field 'command'"),
        (_without("test"), "missing field 'test'"),
        (_set(["task"], "translation"), "field 'task' is 'translation'"),
        (_set(["source_languages"], []), "field 'source_languages' should be"),
        (_set(["command"], ""), "field 'command' should be"),
        (_set(["config"], "{}"), "field 'config' should be"),
        (lambda r: r["test"].pop("nl"), "no test score for the target language: field 'test.nl.f1'"),
        (_set(["test", "nl"], {"precision": 1.0}), "field 'test.nl.f1'"),
        (_set(["test", "en", "f1"], float("nan")), "field 'test.en.f1' is nan, not a finite number"),
        (_set(["dev", "de", "recall"], float("inf")), "field 'dev.de.recall' is inf, not a finite number"),
        (_set(["test", "nl", "f1"], "59.9"), "field 'test.nl.f1' is '59.9', not a finite number"),
        (_set(["dev", "es", "f1"], None), "field 'dev.es.f1' is None, not a finite number"),
        (_set(["dev", "es", "f1"], True), "field 'dev.es.f1' is True, not a finite number"),
        (_set(["dev", "es"], 61.8), "field 'dev.es' should map metrics to numbers"),
    ],
)
def test_incomplete_results_are_refused_naming_file_and_field(change, message, tmp_path):
    results = ner_results()
    change(results)
    run = write_run(tmp_path / "run", results)
    with pytest.raises(DataFormatError, match="all_results.json") as error:
        build_model_card(run)
    assert message in str(error.value)
    assert not (run / "README.md").exists()


def test_missing_and_invalid_results_files_are_refused(tmp_path):
    with pytest.raises(DataFormatError, match=r"empty[/\\]all_results.json: not found") as error:
        build_model_card(tmp_path / "empty")
    assert isinstance(error.value, (ResultsFileNotFoundError, FileNotFoundError))
    run = write_run(tmp_path / "run", '{"task": "token-classification",')
    with pytest.raises(DataFormatError, match=r"run[/\\]all_results.json: not valid JSON"):
        build_model_card(run)
    write_run(run, "[1, 2]")
    with pytest.raises(DataFormatError, match="expected a JSON object, found list"):
        build_model_card(run)


def test_console_script_writes_readme_and_links_the_picture(tmp_path, capsys):
    run = write_run(tmp_path / "run", classification_results())
    (run / "gates.png").write_bytes(b"\x89PNG")
    main([str(run), "--picture", str(run / "gates.png"), "--model_id", "me/cls-de-books"])
    readme = run / "README.md"
    assert f"wrote {readme}" in capsys.readouterr().out
    card = ModelCard.load(readme)
    assert card.data.model_name == "me/cls-de-books" and "](gates.png)" in card.text
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []  # atomic: no temporary file left
    main([str(run), "--output", str(tmp_path / "cards" / "card.md"), "--picture", str(run / "gates.png")])
    assert "](../run/gates.png)" in (tmp_path / "cards" / "card.md").read_text(encoding="utf-8")


def test_console_script_refuses_with_a_message(tmp_path, capsys):
    results = ner_results()
    del results["test"]["nl"]
    run = write_run(tmp_path / "run", results)
    with pytest.raises(SystemExit) as exit_info:
        main([str(run)])
    assert exit_info.value.code == 1
    assert "manmoe-card: error:" in capsys.readouterr().err and not (run / "README.md").exists()


@pytest.mark.parametrize(
    ("layers", "pooling", "text"),
    [([-1], "first", "frozen encoder e5-small (layer -1, first sub-token)"),
     ([6, 8, 10], "mean", "frozen encoder e5-small (layers 6 8 10, mean of sub-tokens)")],
)  # fmt: skip
def test_encoder_card_names_the_layers_and_the_pooling(layers, pooling, text, tmp_path):
    results = ner_results()
    results["config"].update(encoder_config={"hidden_size": 384}, encoder_name_or_path="/models/e5-small", encoder_layers=layers,
                             encoder_pooling=pooling, use_char_cnn=False)  # fmt: skip
    card = build_model_card(write_run(tmp_path / "run", results))
    assert text in card.text and "frozen multilingual word vectors" not in card.text


def test_resumed_run_card_says_its_times_count_only_since_the_resume(tmp_path):
    results = ner_results()
    results["train"].update(resumed_from_checkpoint="/work/runs/ner-nl/checkpoint-300", resumed_at_step=300)
    text = build_model_card(write_run(tmp_path / "run", results)).text
    assert "Resumed from `checkpoint-300` (step 300): 2450.4 s (40.8 min) of training and 2950.7 s" in text
    assert "the time before it is not recorded" in text and "wall time for the whole run" not in text


def test_resumed_run_card_gives_the_from_scratch_command(tmp_path):
    results = ner_results()
    results["command"] = "python examples/run_ner.py --target_language nl --resume_from_checkpoint last --seed 42"
    results["train"].update(resumed_from_checkpoint="/work/runs/ner-nl/checkpoint-300", resumed_at_step=300)
    text = build_model_card(write_run(tmp_path / "run", results)).text
    assert results["command"] in text
    assert "```bash\npython examples/run_ner.py --target_language nl --seed 42\n```" in text


@pytest.mark.parametrize(
    "command, expected",
    [
        ("python run.py --a 1 --resume_from_checkpoint last --b 2", "python run.py --a 1 --b 2"),
        ("python run.py --resume_from_checkpoint=runs/x/checkpoint-9 --b 'two words'", "python run.py --b 'two words'"),
        ("python run.py --b 2", "python run.py --b 2"),
    ],
)
def test_command_without_resume(command, expected):
    assert command_without_resume(command) == expected


def test_cards_describe_known_data_and_inputs_in_the_words_of_the_data_page(tmp_path):
    """A run on ../shared's CoNLL files and conll-use-m3 vectors says so in the sentences docs/data.md gives."""
    from modeling_manmoe.run.model_card import KNOWN_SOURCES

    results = ner_results()
    for key in results["data_and_vector_files"]:
        if key.startswith("word_vectors/"):
            results["data_and_vector_files"][key]["path"] = f"/shared/embeddings/conll-use-m3/{key[-2:]}.vec.gz"
    card = build_model_card(write_run(tmp_path / "run", results)).text
    assert f"- Data: {KNOWN_SOURCES['Data']['conll200']}" in card
    assert f"- Input: {KNOWN_SOURCES['Input']['conll-use-m3']}" in card and "webis" not in card.lower()
    page = " ".join((REPO / "docs" / "data.md").read_text(encoding="utf-8").split())
    for sources in KNOWN_SOURCES.values():
        for text in sources.values():
            assert " ".join(text.split()) in page, text[:60]


def test_a_source_language_evaluated_as_the_target_is_not_called_zero_shot(tmp_path):
    """An evaluation run of the en de es -> nl model given `--target_language en`: the roles come from the model's
    config, so en stays a labeled source in the model-index, the table and the text, and nl stays the zero-shot
    language."""
    results = ner_results()
    results.update(source_languages=["de", "es", "nl"], target_language="en")
    card = build_model_card(write_run(tmp_path / "run", results))
    names = {(e.dataset_config, e.dataset_split, e.metric_type): e.metric_name for e in card.data.eval_results}
    assert names[("en", "test", "f1")] == "F1 (en, labeled source)"
    assert names[("nl", "test", "f1")] == "F1 (nl, zero-shot target)"
    assert card.data.eval_results[0].dataset_config == "nl", "the zero-shot language's test score comes first"
    assert "| en | source (labeled) |" in card.text and "| nl | **target (zero-shot)** |" in card.text
    assert "applied zero-shot to **nl (Dutch)**" in card.text
    assert "- Zero-shot (target) language: nl (Dutch);" in card.text and "zero-shot to **en" not in card.text
    assert "`--target_language` en is a labeled source of this model: its scores are not zero-shot" in card.text


def test_a_folder_whose_model_and_results_come_from_different_runs_is_refused(tmp_path, capsys):
    """A run killed between saving its model and writing its results leaves the model of one run beside the results
    of another: the run ids of config.json and all_results.json differ, and no card is written."""
    results = ner_results()
    results["run_id"] = results["config"]["manmoe_run_id"] = "a" * 32
    run = write_run(tmp_path / "run", results)
    (run / "config.json").write_text(json.dumps({"model_type": "manmoe", "manmoe_run_id": "a" * 32}))
    assert "zero-shot" in build_model_card(run).text  # the same run: a card
    (run / "config.json").write_text(json.dumps({"model_type": "manmoe", "manmoe_run_id": "b" * 32}))
    expected = (
        f"the model in config.json is the model of run '{'b' * 32}', but all_results.json describes the model of run "
        f"'{'a' * 32}': the folder mixes two runs"
    )
    with pytest.raises(DataFormatError, match=expected):
        build_model_card(run)
    with pytest.raises(SystemExit) as exit_info:
        main([str(run)])
    assert exit_info.value.code == 1 and "mixes two runs" in capsys.readouterr().err
    assert not (run / "README.md").exists()
    del results["run_id"], results["config"]["manmoe_run_id"]  # results of a run before run ids
    write_run(run, results)
    with pytest.raises(DataFormatError, match=r"all_results.json describes the model of no run id"):
        build_model_card(run)


@pytest.mark.parametrize(
    "train, text",
    [({"train_loss": 0.4321, "train_loss_steps": [1, 600]}, "- Training loss: 0.4321 (the mean over all 600 steps)"),
     ({"train_loss": 0.4321, "train_loss_steps": [301, 600], "resumed_at_step": 300,
       "resumed_from_checkpoint": "/runs/x/checkpoint-300"},
      "- Training loss: 0.4321, the mean over steps 301–600 only (the steps before the resume are not counted"),
     ({"train_loss": 0.4321, "resumed_at_step": 300, "resumed_from_checkpoint": "/runs/x/checkpoint-300"},
      "- Training loss: 0.4321, the mean over steps 301–600 only")],
    ids=["whole-run", "resumed-without-a-record", "older-results"],
)  # fmt: skip
def test_the_card_says_which_steps_the_training_loss_covers(train, text, tmp_path):
    results = ner_results()
    results["train"].update(train)
    assert text in build_model_card(write_run(tmp_path / "run", results)).text
