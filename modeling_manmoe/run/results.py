"""A finished run's `all_results.json` (written by `examples/run_ner.py` and `examples/run_classification.py`), read
and checked, and what it says in words: the model variant, the input, the character case. The model card
(`model_card.py`) and `examples/summarize_runs.py` are built from these, so that no published number is typed by hand.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..errors import DataFormatError
from ..tokenization_manmoe import reference_lowercases_characters

RESULTS_FILE = "all_results.json"
TASKS = {
    # task -> (headline metric, every metric in the order of the results table, model-index task name)
    "token-classification": ("f1", ("precision", "recall", "f1"), "Named Entity Recognition"),
    "text-classification": ("accuracy", ("accuracy",), "Sentiment Classification"),
}
SPLITS = {"dev": "validation", "test": "test"}  # results key -> model-index split


class ResultsFileNotFoundError(DataFormatError, FileNotFoundError):
    """The run folder has no `all_results.json` (a `DataFormatError` and a `FileNotFoundError`)."""


def is_finite_number(value: Any) -> bool:
    """An int or float (not a bool) that is neither NaN nor infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_json_object(path: Path) -> dict:
    """The JSON object in `path`; `DataFormatError` naming the file when it is not valid JSON or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataFormatError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(value, dict):
        raise DataFormatError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def load_run_results(run_dir: str | os.PathLike[str]) -> dict:
    """The run's `all_results.json`, checked: it must name the task, sources, target, config and command, and hold
    finite test scores for the target (every dev/test score present must be a finite number).

    Raises:
        ResultsFileNotFoundError: no `all_results.json` in `run_dir`.
        DataFormatError: invalid JSON, a missing or malformed field, no test score for the target, a score that is
            not a finite number; the message names the file and the field.
    """
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise ResultsFileNotFoundError(f"{path}: not found (is {run_dir} a finished run folder?)")
    results = _read_json_object(path)

    def require(field: str, kind: type | tuple[type, ...], what: str) -> Any:
        if field not in results:
            raise DataFormatError(f"{path}: missing field {field!r} ({what})")
        value = results[field]
        if not isinstance(value, kind) or (isinstance(value, (str, list, dict)) and not value):
            raise DataFormatError(f"{path}: field {field!r} should be {what}, found {value!r}"[:400])
        return value

    task = require("task", str, f"one of {sorted(TASKS)}")
    if task not in TASKS:
        raise DataFormatError(f"{path}: field 'task' is {task!r}, expected one of {sorted(TASKS)}")
    sources = require("source_languages", list, "a non-empty list of language codes")
    if not all(isinstance(lang, str) and lang for lang in sources):
        raise DataFormatError(f"{path}: field 'source_languages' should hold language codes, found {sources!r}")
    target = require("target_language", str, "a language code")
    require("config", dict, "the model's ManMoeConfig as a JSON object")
    require("command", str, "the command line of the run")
    require("test", dict, "per-language test scores")
    for split in SPLITS:
        scores = results.get(split, {})
        if not isinstance(scores, dict):
            raise DataFormatError(f"{path}: field {split!r} should map languages to scores, found {scores!r}"[:400])
        for lang, metrics in scores.items():
            if not isinstance(metrics, dict):
                raise DataFormatError(
                    f"{path}: field '{split}.{lang}' should map metrics to numbers, found {metrics!r}"
                )
            for metric, value in metrics.items():
                if not is_finite_number(value):
                    raise DataFormatError(f"{path}: field '{split}.{lang}.{metric}' is {value!r}, not a finite number")
    headline = TASKS[task][0]
    if headline not in results["test"].get(target, {}):
        raise DataFormatError(f"{path}: no test score for the target language: field 'test.{target}.{headline}'")
    for field in ("train", "tokenizer", "hardware", "data_and_vector_files", "training_arguments", "versions"):
        if not isinstance(results.get(field, {}), dict):
            raise DataFormatError(f"{path}: field {field!r} should be a JSON object, found {results[field]!r}"[:400])
    if "tokenizer" not in results:
        results["tokenizer"] = saved_tokenizer_settings(run_dir)
    check_run_ids(run_dir, results)
    return results


def check_run_ids(run_dir: str | os.PathLike[str], results: dict) -> None:
    """Refuse a run folder whose model and results come from different runs: the run id of its `config.json`
    (`manmoe_run_id`, written when the model was trained) must be the one of the model that `results` describe
    (their `config.manmoe_run_id`, else their `run_id`). A folder without a `config.json`, and one whose files both
    record no run id, pass.

    Raises:
        DataFormatError: the ids differ, or only one of the two files has one; the message names both files.
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return
    model_id = _read_json_object(path).get("manmoe_run_id")
    described = results["config"].get("manmoe_run_id", results.get("run_id"))
    if model_id == described:
        return
    model_text = f"run {model_id!r}" if model_id else "no run (it records no manmoe_run_id)"
    results_text = f"run {described!r}" if described else "no run id (field 'run_id')"
    raise DataFormatError(
        f"{run_dir}: the model in {path.name} is the model of {model_text}, but {RESULTS_FILE} describes the model "
        f"of {results_text}: the folder mixes two runs (a run stopped between saving its model and writing its "
        "results?). Evaluate the model again into this folder (--model_name_or_path with --do_eval / --do_predict), "
        "or train again with --overwrite_output_dir"
    )


ROLES = {"source": "labeled source", "target": "zero-shot target", "few_shot": "few-shot target", "other": "other"}
TARGET_ROLES = (ROLES["target"], ROLES["few_shot"])
"""The roles of a model's target languages: trained without labels, or with a few."""


def language_roles(results: dict) -> dict[str, str]:
    """The role each language of a run had in training its model, read from the model's config (the results'
    `config`, not the command line): "labeled source" (`source_languages`), "zero-shot target"
    (`unlabeled_languages`: trained without labels), "few-shot target" (an unlabeled language of which a few labeled
    sentences were used, `few_shot_sizes`) or "other" (not a training language). Every language of the config, the
    command line and the scores, targets first, then sources, then the others. A config that records no languages
    falls back on the command line's `source_languages` and `target_language`."""
    config = results.get("config") or {}
    if isinstance(config.get("source_languages"), list):
        sources, targets = config["source_languages"], list(config.get("unlabeled_languages") or [])
    else:
        sources, targets = results.get("source_languages") or [], [results.get("target_language")]
    few_shot = config.get("few_shot_sizes") if isinstance(config.get("few_shot_sizes"), dict) else {}
    roles = {lang: ROLES["few_shot" if lang in few_shot else "target"] for lang in targets if isinstance(lang, str)}
    roles |= {lang: ROLES["source"] for lang in sources if isinstance(lang, str)}
    named = [results.get("target_language"), *(results.get("source_languages") or [])]
    for lang in [*named, *(lang for split in SPLITS for lang in sorted(results.get(split) or {}))]:
        if isinstance(lang, str):
            roles.setdefault(lang, ROLES["other"])
    return roles


def zero_shot_languages(results: dict) -> list[str]:
    """The languages the run's model was trained on without labels (`language_roles`)."""
    return [lang for lang, role in language_roles(results).items() if role == ROLES["target"]]


def target_languages(results: dict) -> list[str]:
    """The run's model's target languages, zero-shot or few-shot (`language_roles`)."""
    return [lang for lang, role in language_roles(results).items() if role in TARGET_ROLES]


def saved_tokenizer_settings(run_dir: str | os.PathLike[str]) -> dict:
    """The character case from the run's saved `tokenizer_config.json`, as `{"lowercase_characters": bool}`, for runs
    made before `all_results.json` recorded the tokenizer's settings; `{}` when the run saved no tokenizer.

    Raises:
        DataFormatError: the file is not a JSON object; the message names the file.
    """
    path = Path(run_dir) / "tokenizer_config.json"
    if not path.is_file():
        return {}
    settings = _read_json_object(path)
    return {"lowercase_characters": settings["lowercase_characters"]} if "lowercase_characters" in settings else {}


def describe_variant(config: dict) -> str:
    """The model variant: full MAN-MoE or the ablation(s) its config names (also the "model" column of `examples/summarize_runs.py`)."""
    flags = {
        "use_adversary": "no adversary",
        "use_private_moe": "no private MoE",
        "use_predictor_moe": "no predictor MoE",
    }
    off = [name for flag, name in flags.items() if not config.get(flag, True)]
    return ", ".join(off) if off else "MAN-MoE"


def describe_character_case(results: dict) -> str:
    """A note for a run whose CharCNN read characters otherwise than the reference's rule (lower-cased for a German
    target only): ", characters as written" or ", characters lower-cased". Else "", also for a run without a CharCNN
    or one whose results record no character case (see `saved_tokenizer_settings` for older runs)."""
    lowercased = (results.get("tokenizer") or {}).get("lowercase_characters")
    if lowercased is None or not results.get("config", {}).get("use_char_cnn", True):
        return ""
    if lowercased == reference_lowercases_characters(results.get("target_language", "")):
        return ""
    return ", characters lower-cased" if lowercased else ", characters as written"
