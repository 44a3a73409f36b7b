"""A Hugging Face model card (`README.md`) for a finished run folder of `examples/run_ner.py` or
`examples/run_classification.py`, built from its `all_results.json` alone, so that no number is ever typed by hand.

The card's metadata holds a `model-index` with one `EvalResult` per evaluated language, split and metric (dev is the
split "validation", test is "test"), the languages, licence, tags and data sets; its body says what the model is,
which languages were labeled and which was zero-shot, the per-language scores, the exact command, the sha256 of every
data and vector file, the schedule, the training time and hardware, how to load it, its limitations and the paper's
citation.

    manmoe-card runs/ner-nl                                   # writes runs/ner-nl/README.md
    python -m modeling_manmoe.run.model_card runs/cls-de-books --picture gates.png --output /tmp/card.md
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..errors import ManMoeError
from ..input_embeddings import describe_input, saved_input_embeddings_class
from .outputs import atomic_write_text
from .results import (
    RESULTS_FILE,
    ROLES,
    SPLITS,
    TARGET_ROLES,
    TASKS,
    describe_character_case,
    describe_variant,
    is_finite_number,
    language_roles,
    load_run_results,
    target_languages,
    zero_shot_languages,
)

METRIC_NAMES = {"precision": "Precision", "recall": "Recall", "f1": "F1", "accuracy": "Accuracy"}
LANGUAGE_NAMES = {"en": "English", "de": "German", "es": "Spanish", "nl": "Dutch", "fr": "French", "ja": "Japanese"}
PAPER_NER_STEPS = 15000  # the paper's NER schedule (the default --max_steps of examples/run_ner.py)

CONLL_FILE = re.compile(r"(?P<prefix>eng|deu|esp|ned)\.(?:train|testa|testb)(?:\.gz)?\Z")
CONLL_CORPORA = {"eng": "2003", "deu": "2003", "esp": "2002", "ned": "2002"}
WEBIS_FILE = re.compile(r"(?:train|test)\.review(?:\.gz)?\Z")
WEBIS_FOLDERS = {"en", "de", "fr", "jp"}
WEBIS_DOMAINS = {"books", "dvd", "music"}

EXAMPLE_WORDS = {
    "en": "Peter lives in Berlin .",
    "de": "Angela wohnt in Berlin .",
    "es": "Juan vive en Madrid .",
    "nl": "Piet woont in Amsterdam .",
}
EXAMPLE_TEXTS = {
    "en": "A wonderful book, I could not put it down.",
    "de": "Ein wunderbares Buch, ich konnte es nicht aus der Hand legen.",
    "fr": "Un livre merveilleux, je n'ai pas pu le lâcher.",
    "ja": "素晴らしい本でした。",
}

CITATION = """@inproceedings{chen-etal-2019-multi-source,
    title = "Multi-Source Cross-Lingual Model Transfer: Learning What to Share",
    author = "Chen, Xilun and Awadallah, Ahmed Hassan and Hassan, Hany and Wang, Wei and Cardie, Claire",
    booktitle = "Proceedings of the 57th Annual Meeting of the Association for Computational Linguistics",
    month = jul,
    year = "2019",
    address = "Florence, Italy",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/P19-1299",
    doi = "10.18653/v1/P19-1299",
    pages = "3098--3112",
}"""


def language_name(lang: str) -> str:
    return f"{lang} ({LANGUAGE_NAMES[lang]})" if lang in LANGUAGE_NAMES else lang


def _number(value: Any, digits: int = 4) -> str:
    """A number as written in the results (rounded to `digits` decimals at most, no trailing zeros)."""
    if not is_finite_number(value):
        return "–" if value is None else str(value)
    if isinstance(value, int) or round(value, digits) == value:
        return repr(value)
    return f"{round(value, digits):.{digits}f}".rstrip("0").rstrip(".")


def _seconds(value: Any) -> str:
    if not is_finite_number(value):
        return "not recorded"
    return f"{_number(value, 1)} s ({value / 60:.1f} min)" if value >= 60 else f"{_number(value, 1)} s"


def dataset_of(results: dict, split: str, lang: str) -> dict:
    """`EvalResult` dataset fields (dataset_type, dataset_name, dataset_config, dataset_split, dataset_args) of the
    `split` ("train", "validation", "test") data of `lang`, from the run's provenance (`data_and_vector_files`)."""
    provenance = results.get("data_and_vector_files") or {}
    entry = provenance.get(f"{split}/{lang}")
    args = None
    if isinstance(entry, dict) and isinstance(entry.get("held_out_from"), str):
        args = {"held_out_from": entry["held_out_from"]}
        entry = provenance.get(entry["held_out_from"])
    fields = {"dataset_split": split, "dataset_args": args}
    if not isinstance(entry, dict):
        return fields | {"dataset_type": "unknown", "dataset_name": f"unrecorded {split} data", "dataset_config": lang}
    if isinstance(entry.get("hub_dataset"), str):
        name, _, config = entry["hub_dataset"].partition(":")
        return fields | {"dataset_type": name, "dataset_name": name, "dataset_config": config or None}
    path = Path(str(entry.get("path", "")))
    conll = CONLL_FILE.match(path.name)
    if conll:
        year = CONLL_CORPORA[conll["prefix"]]
        return fields | {"dataset_type": f"conll{year}", "dataset_name": f"CoNLL-{year}", "dataset_config": lang}
    if WEBIS_FILE.match(path.name) and len(path.parts) >= 3:
        folder, domain = path.parts[-3], path.parts[-2]
        if folder in WEBIS_FOLDERS and domain in WEBIS_DOMAINS:
            config = f"{lang}-{domain}"
            return fields | {"dataset_type": "webis-cls-10", "dataset_name": "Webis-CLS-10", "dataset_config": config}
    return fields | {"dataset_type": "custom", "dataset_name": path.name or "unrecorded", "dataset_config": lang}


def ordered_languages(results: dict) -> list[str]:
    """The targets (zero-shot or few-shot) first, then the sources, then any other language (`language_roles`)."""
    return list(language_roles(results))


def eval_results(results: dict) -> list[EvalResult]:
    """One `EvalResult` per language, split and metric, test before dev, the target's headline metric first."""
    task = results["task"]
    headline, metrics, task_name = TASKS[task]
    order = [headline, *(m for m in metrics if m != headline)]
    found, roles = [], language_roles(results)
    for key in ("test", "dev"):
        for lang in ordered_languages(results):
            scores = results.get(key, {}).get(lang, {})
            dataset = dataset_of(results, SPLITS[key], lang)
            for metric in [*order, *sorted(set(scores) - set(order))]:
                if metric in scores:
                    role = roles[lang]
                    found.append(
                        EvalResult(
                            task_type=task,
                            task_name=task_name,
                            metric_type=metric,
                            metric_name=f"{METRIC_NAMES.get(metric, metric)} ({lang}, {role})",
                            metric_value=scores[metric],
                            **dataset,
                        )
                    )
    return found


# --- the card ----------------------------------------------------------------------------------------------------------


def build_model_card(
    run_dir: str | os.PathLike[str],
    *,
    picture: str | None = None,
    license: str = "mit",
    model_id: str | None = None,
) -> ModelCard:
    """The model card of a finished run folder, from its `all_results.json`.

    Args:
        run_dir: the run's output folder (model, tokenizer and `all_results.json`).
        picture: a gate picture (e.g. from `manmoe-gates`) to embed, as a path relative to where the card is written.
        license: the card's licence identifier.
        model_id: the Hub repository id used in the card's title and loading code (default: the folder's name for
            the title, its path for the code).

    Raises:
        ResultsFileNotFoundError, DataFormatError: see `load_run_results`.
    """
    results = load_run_results(run_dir)
    task, config = results["task"], results["config"]
    name = model_id or Path(os.path.abspath(run_dir)).name
    evaluations = eval_results(results)
    types = [e.dataset_type for e in evaluations] + [
        dataset_of(results, "train", lang)["dataset_type"] for lang in ordered_languages(results)
    ]
    hub_datasets = [t for t in dict.fromkeys(types) if t not in ("unknown", "custom")]
    few_shot = bool(config.get("few_shot_sizes"))
    tags = ["manmoe", "cross-lingual", "few-shot" if few_shot else "zero-shot", "mixture-of-experts", "multilingual"]
    tags += ["metaxl"] if config.get("rtn_bottleneck") else []
    tags += ["knowledge-distillation"] if (results.get("distillation") or {}).get("teachers") else []
    tags += ["ner"] if task == "token-classification" else ["sentiment-analysis"]
    tags += ["adversarial-training"] if config.get("use_adversary", True) else []
    tags += ["ablation"] if describe_variant(config) != "MAN-MoE" else []
    encoder = saved_input_embeddings_class(config).base_model(config)
    base_model = encoder if encoder and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", encoder) else None
    data = ModelCardData(
        model_name=name,
        language=list(dict.fromkeys([*results["source_languages"], results["target_language"]])),
        license=license,
        library_name="transformers",
        pipeline_tag=task,
        tags=tags,
        datasets=hub_datasets or None,
        metrics=list(TASKS[task][1]),
        base_model=base_model,
        eval_results=evaluations,
    )
    sections = [
        _intro(results, name),
        _results_section(results),
        _picture_section(results, picture),
        _usage_section(results, model_id or str(run_dir)),
        _training_section(results),
        _provenance_section(results),
        _limitations_section(results),
        f"## Licence\n\n`{license}` (the licence of this card and the model weights). The data sets the model was "
        "trained and evaluated on keep their own terms of use.\n",
        f"## Citation\n\n```bibtex\n{CITATION}\n```\n",
    ]
    body = "\n".join(section for section in sections if section)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _intro(results: dict, name: str) -> str:
    task, config = results["task"], results["config"]
    roles = language_roles(results)  # from the model's config: which languages it was trained on with labels
    targets = target_languages(results)
    few_shot = {lang: size for lang, size in (config.get("few_shot_sizes") or {}).items() if lang in targets}
    sources = [lang for lang, role in roles.items() if role == ROLES["source"]]
    kind = "named-entity tagger" if task == "token-classification" else "sentence classifier"
    selection = (results.get("train") or {}).get("model_selection")
    labels = list((config.get("id2label") or {}).values())
    target_names = ", ".join(language_name(lang) for lang in targets) or "no language (all its languages were labeled)"
    train_entry = (results.get("data_and_vector_files") or {}).get(f"train/{targets[0]}") if targets else None
    if few_shot:
        unlabeled = ("of its training data, only " + ", ".join(f"{size} sentences ({lang})" for lang, size in
                     few_shot.items()) + " were used **with labels**; the rest without labels")  # fmt: skip
    elif isinstance(train_entry, dict) and config.get("use_adversary", True):
        unlabeled = "its training data was used **without labels**, read by the language discriminator only"
    elif isinstance(train_entry, dict):
        unlabeled = "this variant has no language discriminator, the only part of MAN-MoE that reads unlabeled data"
    else:
        unlabeled = "no training data of it is recorded"
    lines = [
        f"# {name}",
        "",
        f"A **MAN-MoE** {kind} (Chen et al., ACL 2019, *Multi-Source Cross-Lingual Model Transfer: Learning What to "
        "Share*) for "
        + (
            f"few-shot cross-lingual transfer, trained with `modeling_manmoe`: it learned from labeled data in "
            f"{len(sources)} source language(s) and from a few labeled sentences of **{target_names}**"
            if few_shot
            else "zero-resource cross-lingual transfer, trained with `modeling_manmoe`: it learned from labeled data "
            f"in {len(sources)} source language(s) and is applied zero-shot to **{target_names}**, whose "
            "training labels were never used"
        )
        + (" (its dev labels chose the checkpoint: see Limitations)." if selection == "target" else "."),
        "",
        f"- Labeled (source) languages: {', '.join(language_name(lang) for lang in sources)}",
        f"- {'Few-shot' if few_shot else 'Zero-shot'} (target) language: {target_names}; {unlabeled}",
    ]
    if config.get("rtn_bottleneck"):
        lines.append(
            f"- MetaXL (Xia et al., NAACL 2021): a representation transformation network (bottleneck "
            f"{config['rtn_bottleneck']}) was added to the source languages' input features in training and learned by "
            "a look-ahead meta-gradient on the labeled target sentences; it is part of the weights and is not used in "
            "prediction"
        )
    distillation = results.get("distillation") or {}
    teachers = distillation.get("teachers") if isinstance(distillation, dict) else None
    if isinstance(teachers, dict) and teachers:
        shown = ", ".join(f"{lang} (`{(entry or {}).get('path', '?')}`)" if isinstance(entry, dict) else lang
                          for lang, entry in teachers.items())  # fmt: skip
        lines.append(f"- Distilled from teachers: {shown}; α {config.get('distillation_alpha')}, β "
                     f"{config.get('target_distillation_weight')}, T {config.get('distillation_temperature')}, "
                     f"mixture {config.get('teacher_mixture')}")  # fmt: skip
    scored_sources = [lang for lang in (results.get("test") or {}) if roles.get(lang) == ROLES["source"]]
    if results["target_language"] in scored_sources:
        lines.append(f"- The run's `--target_language` {results['target_language']} is a labeled source of this model: "
                     "its scores are not zero-shot")  # fmt: skip
    if results.get("domain"):
        lines.append(f"- Domain: {results['domain']}")
    lines += [
        f"- Model: {describe_variant(config)}; input: {describe_input(config)}{describe_character_case(results)}; one "
        f"expert per source language ({', '.join(sources)}) in the private feature extractor F_p and the predictor C"
        + (" (ablated mixtures use one shared expert)" if describe_variant(config) != "MAN-MoE" else ""),
    ]
    if labels:
        lines.append(f"- Labels: {', '.join(f'`{label}`' for label in labels)}")
    if is_finite_number(results.get("max_words")) and results["max_words"] > 0:
        lines.append(f"- Texts are cut to their first {results['max_words']} words (`--max_words`)")
    return "\n".join(lines) + "\n"


def _results_section(results: dict) -> str:
    headline, metrics, _ = TASKS[results["task"]]
    splits = [key for key in ("dev", "test") if results.get(key)]
    header = ["language", "role"] + [f"{key} {METRIC_NAMES[metric]}" for key in splits for metric in metrics]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    shown = {ROLES["target"]: "**target (zero-shot)**", ROLES["few_shot"]: "**target (few-shot)**",
             ROLES["source"]: "source (labeled)"}  # fmt: skip
    for lang, role in language_roles(results).items():
        cells = [_number(results.get(key, {}).get(lang, {}).get(metric)) for key in splits for metric in metrics]
        target, role = role in TARGET_ROLES, shown.get(role, "other")
        if target:
            cells = [f"**{cell}**" if cell != "–" else cell for cell in cells]
        rows.append("| " + " | ".join([lang, role, *cells]) + " |")
    measure = (
        "Entity-level precision, recall and F1 (seqeval, conlleval mode)"
        if results["task"] == "token-classification"
        else "Accuracy"
    )
    dev_note = ""
    provenance = results.get("data_and_vector_files") or {}
    held_out = sorted(key for key, entry in provenance.items() if isinstance(entry, dict) and "held_out_from" in entry)
    if held_out:
        dev_note = (
            " The dev sets of "
            + ", ".join(key.split("/", 1)[1] for key in held_out)
            + " were held out from their training data."
        )
    return (
        "## Results\n\n"
        f"{measure} in percent, as recorded in `{RESULTS_FILE}`, of the selected checkpoint on the dev sets (used "
        f"to select it, see Training) and on the test sets.{dev_note}\n\n" + "\n".join(rows) + "\n"
    )


def _picture_section(results: dict, picture: str | None) -> str:
    if not picture:
        return ""
    sources = results["source_languages"]
    per_type = " and per entity type" if results["task"] == "token-classification" else ""
    return (
        "## What the gates share\n\n"
        f"![Mean gate weight per source expert]({picture})\n\n"
        "The mean softmax weight that the private-feature gate (F_p) and the predictor gate (C) give each "
        f"source-language expert ({', '.join(sources)}), per evaluated language{per_type}: how much of each "
        f"language's input is routed to each source language's expert (a uniform gate gives 1/{len(sources)} each).\n"
    )


def _usage_section(results: dict, repo: str) -> str:
    target = results["target_language"]
    if results["task"] == "token-classification":
        text = " ".join(EXAMPLE_WORDS.get(target, "the words of one sentence").split())
        code = f"""from transformers import pipeline

tagger = pipeline("token-classification", model="{repo}", trust_remote_code=True, aggregation_strategy="simple")
print(tagger({text!r}))"""
        note = (
            "One token is one word: the pipeline splits raw text into words (the regex `\\w+|[^\\w\\s]`) and returns "
            f"each entity with its words as written and their `start`/`end`. The text's language is the tokenizer's "
            f"default, the target `{target}`; give another with `tagger(text, language=...)`."
        )
    else:
        text = EXAMPLE_TEXTS.get(target, "a text in the target language")
        code = f"""from transformers import pipeline

classifier = pipeline("text-classification", model="{repo}", trust_remote_code=True)
print(classifier({text!r}))"""
        note = (
            "The tokenizer splits raw text into words as in training (its default language is the target, "
            f"`{target}`); for another language encode with `tokenizer(text, language=...)` and call the model "
            "(`AutoModelForSequenceClassification`, `trust_remote_code=True`)."
        )
        if "ja" in results.get("tokenizer", {}).get("mecab_languages", []):
            note += " Japanese text is split with MeCab: `pip install fugashi ipadic`."
    return (
        "## How to use\n\n"
        "The folder holds the model's code, so it loads with `trust_remote_code=True`; with the `modeling_manmoe` "
        "package installed, `import modeling_manmoe` registers the classes instead.\n\n"
        f"```python\n{code}\n```\n\n{note}\n"
    )


def command_without_resume(command: str) -> str:
    """`command` without its `--resume_from_checkpoint VALUE` (or `=VALUE`) argument: the from-scratch command."""
    words, kept, skip = shlex.split(command), [], False
    for word in words:
        if skip:
            skip = False
        elif word == "--resume_from_checkpoint":
            skip = True
        elif not word.startswith("--resume_from_checkpoint="):
            kept.append(word)
    return shlex.join(kept)


def _training_section(results: dict) -> str:
    train, hardware = results.get("train") or {}, results.get("hardware") or {}
    arguments, versions = results.get("training_arguments") or {}, results.get("versions") or {}
    lines = [
        "## Training",
        "",
        f"Command (`{RESULTS_FILE}` field `command`):",
        "",
        "```bash",
        results["command"],
        "```",
    ]
    if train.get("resumed_from_checkpoint"):
        lines += [
            "",
            "The run was interrupted and resumed from a checkpoint, with the command above. Resuming restores the "
            "weights, the optimizers, the random states and the place in the data, so the same command without "
            "`--resume_from_checkpoint`, in an empty output folder, trains the same model from scratch (on CPU, with the "
            "same number of torch threads as under Hardware below: float sums depend on it):",
            "",
            "```bash",
            command_without_resume(results["command"]),
            "```",
        ]
    lines.append("")
    if "seed" in results:
        lines.append(f"- Seed: {results['seed']}")
    schedule = f"- Schedule: {_number(train.get('global_step'))} optimizer steps"
    if "epochs" in train:
        schedule += f" ({_number(train['epochs'])} epochs"
        schedule += f", {train['steps_per_epoch']} steps per epoch)" if "steps_per_epoch" in train else ")"
    if "per_device_train_batch_size" in arguments:
        schedule += f"; batch size {arguments['per_device_train_batch_size']} per device"
    if "learning_rate" in arguments:
        schedule += f", learning rate {arguments['learning_rate']} ({arguments.get('lr_scheduler_type', '?')})"
    if "eval_steps" in arguments and arguments.get("eval_strategy") == "steps":
        schedule += f"; dev evaluation every {arguments['eval_steps']} steps"
    lines.append(schedule)
    loss_line = _training_loss_line(train)
    if loss_line:
        lines.append(loss_line)
    selection = train.get("model_selection")
    meaning = {
        "target": "the target language's dev score (its dev labels were used for model selection)",
        "source_mean": "the source languages' mean dev score (no target labels used)",
    }.get(selection, str(selection))
    if train.get("best_checkpoint"):
        lines.append(
            f"- Best checkpoint: `{Path(str(train['best_checkpoint'])).name}`, selection score "
            f"{_number(train.get('best_selection_score'), 2)}, selected on {meaning}"
        )
    if train.get("resumed_from_checkpoint"):
        lines.append(
            f"- Resumed from `{Path(str(train['resumed_from_checkpoint'])).name}` (step {train.get('resumed_at_step', '?')}):"
            f" {_seconds(train.get('train_runtime_s'))} of training and {_seconds(results.get('wall_time_s'))} wall time"
            " since the resume; the time before it is not recorded"
        )
    else:
        lines.append(
            f"- Training time: {_seconds(train.get('train_runtime_s'))} of training; "
            f"{_seconds(results.get('wall_time_s'))} wall time for the whole run (data, training, evaluation)"
        )
    if hardware:
        accelerator = hardware.get("cuda") or "none (CPU)"
        lines.append(
            f"- Hardware: {hardware.get('cpu_count', '?')} CPU cores, {hardware.get('torch_threads', '?')} torch "
            f"thread(s), {hardware.get('processes', '?')} process(es), GPU: {accelerator}; "
            f"`{hardware.get('platform', '?')}`"
        )
    if versions:
        lines.append("- Versions: " + ", ".join(f"{key} {value}" for key, value in sorted(versions.items())))
    return "\n".join(lines) + "\n"


def _training_loss_line(train: dict) -> str:
    """'- Training loss: ...' with the steps the recorded mean covers (`train_loss_steps`; for results without it,
    a resumed run's loss covers the resumed steps only); "" without a loss."""
    loss, steps, last = train.get("train_loss"), train.get("train_loss_steps"), train.get("global_step")
    if not is_finite_number(loss):
        return ""
    if steps is None and is_finite_number(train.get("resumed_at_step")) and is_finite_number(last):
        steps = [train["resumed_at_step"] + 1, last]
    if isinstance(steps, list) and len(steps) == 2 and steps[0] != 1:
        return (f"- Training loss: {_number(loss)}, the mean over steps {steps[0]}–{steps[1]} only (the steps before "
                "the resume are not counted: the checkpoint resumed from recorded no loss)")  # fmt: skip
    return f"- Training loss: {_number(loss)} (the mean over all {_number(last)} steps)"


def _provenance_rows(results: dict) -> list[str]:
    provenance = results.get("data_and_vector_files") or {}
    unlabeled = {f"train/{lang}" for lang in zero_shot_languages(results)}
    few_shot = (results.get("config") or {}).get("few_shot_sizes") or {}
    order = {"train": 0, "validation": 1, "test": 2, "word_vectors": 3, "encoder": 4}
    rows = []
    for key in sorted(provenance, key=lambda k: (order.get(k.split("/", 1)[0], 5), k)):
        entry = provenance[key]
        if not isinstance(entry, dict):
            continue
        counts = ", ".join(
            f"{entry[field]} {label}"
            for field, label in (("sentences", "sentences"), ("texts", "texts"), ("words", "words"))
            if field in entry
        )
        if "truncated_to_max_words" in entry:
            counts += f" ({entry['truncated_to_max_words']} texts cut)"
        if key in unlabeled:
            counts += (", " if counts else "") + "labels not used"
        elif key.startswith("train/") and key.removeprefix("train/") in few_shot:
            counts += (", " if counts else "") + f"labels of {few_shot[key.removeprefix('train/')]} sentences used"
        if "held_out_from" in entry:
            file, digest = f"held out from `{entry['held_out_from']}`", "–"
        elif "hub_dataset" in entry:
            file = f"Hub dataset `{entry['hub_dataset']}` (split {entry.get('split', '?')})"
            digest = f"fingerprint `{entry.get('fingerprint', '?')}`"
        elif "name_or_path" in entry:
            file, digest = f"`{entry['name_or_path']}`", f"`{entry.get('weights_sha256', '?')}` (weights)"
        else:
            file, digest = f"`{entry.get('path', '?')}`", f"`{entry.get('sha256', '?')}`"
        rows.append(f"| {key} | {file} | {digest} | {counts or '–'} |")
    return rows


KNOWN_SOURCES = {
    "Data": {
        "conll200": "CoNLL-2003 (English, German) and CoNLL-2002 (Spanish, Dutch) named-entity data, public copies of "
        "the shared tasks' files, with PER, ORG, LOC and MISC entities.",
        "webis-cls-10": "Webis-CLS-10 (Prettenhofer and Stein, 2010), Amazon reviews of books, DVDs and music in "
        "English, German, French and Japanese, positive (4–5 stars) or negative (1–2 stars), 2,000 training and 2,000 "
        "test reviews per language and domain.",
    },
    "Input": {
        "conll-use-m3": "the `conll-use-m3` aligned word vectors, 300 dimensions, the 20,000 most frequent CoNLL words "
        "of each of en, de, es and nl (case preserved), each word encoded alone by the Universal Sentence Encoder "
        "multilingual v3 and reduced from 512 dimensions by one PCA fitted over all four languages; a stand-in for "
        "the paper's MUSE / UMWE vectors.",
        "webis-use-m3": "the `webis-use-m3` aligned word vectors, 300 dimensions, the 15,000 most frequent "
        "Webis-CLS-10 words of each of en, de, fr and ja (lower-cased), each word encoded alone by the Universal "
        "Sentence Encoder multilingual v3 and reduced from 512 dimensions by one PCA fitted over all four languages; "
        "a stand-in for the paper's MUSE / UMWE vectors.",
        "multilingual-e5-small-trimmed": "`multilingual-e5-small-trimmed`, the multilingual-e5-small encoder (MIT "
        "licence; 12 layers, hidden 384, XLM-R vocabulary) converted from a 4-bit copy and trimmed to the 62,026 "
        "vocabulary pieces the corpora need; a stand-in for mBERT.",
    },
}
"""What a card says of the data and inputs of this project's `../shared` folder (the words of `docs/data.md`), keyed
by a part of the recorded file path or encoder name."""


def _known_source_lines(results: dict) -> list[str]:
    """`- Data: ...` / `- Input: ...` for each known source among the files the run read."""
    entries = [entry for entry in (results.get("data_and_vector_files") or {}).values() if isinstance(entry, dict)]
    names = " ".join(str(entry.get("path") or entry.get("name_or_path") or "") for entry in entries)
    return [f"- {kind}: {text}" for kind, sources in KNOWN_SOURCES.items() for key, text in sources.items()
            if key in names]  # fmt: skip


def _provenance_section(results: dict) -> str:
    rows = _provenance_rows(results)
    if not rows:
        return f"## Data and vectors\n\n`{RESULTS_FILE}` records no data or vector files.\n"
    known = _known_source_lines(results)
    described = (
        "\n".join(known)
        + "\n\n(These descriptions are those of `docs/data.md` in the `modeling_manmoe` repository.)\n\n"
    )
    return (
        "## Data and vectors\n\n"
        + (described if known else "")
        + f"Every file the run read, with its sha256 as stored (`{RESULTS_FILE}` field `data_and_vector_files`):\n\n"
        "| what | file | sha256 | size |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def _limitations_section(results: dict) -> str:
    task, config, train = results["task"], results["config"], results.get("train") or {}
    items = []
    if "seed" in results:
        items.append(f"One training run (seed {results['seed']}): how much the scores vary over seeds is not measured.")
    steps = train.get("global_step")
    if task == "token-classification" and is_finite_number(steps) and steps < PAPER_NER_STEPS:
        items.append(
            f"Shortened schedule: {_number(steps)} steps instead of the paper's {PAPER_NER_STEPS:,}; the scores are "
            "not those of a fully trained model."
        )
    if train.get("model_selection") == "target":
        items.append(
            "The checkpoint was selected on the target language's dev score, so target labels were used for model "
            "selection: the target dev scores are optimistic and the setting is not strictly zero-resource."
        )
    if describe_variant(config) != "MAN-MoE":
        items.append(f"This is an ablation ({describe_variant(config)}), not the full MAN-MoE model.")
    data = sorted({dataset_of(results, "test", lang)["dataset_name"] for lang in results["test"]})
    items.append(
        f"The scores were measured only on the test data listed above ({', '.join(data)}); other domains, genres or "
        "languages are not measured."
    )
    items += saved_input_embeddings_class(config).limitations(config)
    if is_finite_number(results.get("max_words")) and results["max_words"] > 0:
        items.append(f"Trained and evaluated on the first {results['max_words']} words of each text only.")
    return "## Limitations\n\n" + "\n".join(f"- {item}" for item in items) + "\n"


def write_model_card(run_dir: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, **kwargs) -> Path:
    """Build the card of `run_dir` (keyword arguments as `build_model_card`) and write it atomically to `output`
    (default `run_dir/README.md`). Returns the path written."""
    card = build_model_card(run_dir, **kwargs)
    return atomic_write_text(Path(output) if output is not None else Path(run_dir) / "README.md", str(card))


def main(argv: Sequence[str] | None = None) -> None:
    """`manmoe-card RUN_DIR [--picture PNG] [--output PATH] [--model_id ID] [--license L]`."""
    parser = argparse.ArgumentParser(
        prog="manmoe-card", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path, help="a finished run folder holding all_results.json")
    parser.add_argument("--picture", help="a gate picture (PNG) to embed; linked relative to the card's folder")
    parser.add_argument("--output", type=Path, help="where to write the card (default: RUN_DIR/README.md)")
    parser.add_argument("--model_id", help="the Hub repository id used in the title and the loading code")
    parser.add_argument("--license", default="mit", help="the card's licence identifier (default: mit)")
    options = parser.parse_args(argv)
    output = options.output or options.run_dir / "README.md"
    picture = options.picture
    if picture and not re.match(r"[a-z]+://", picture):
        picture = Path(os.path.relpath(os.path.abspath(picture), os.path.abspath(output.parent))).as_posix()
    try:
        path = write_model_card(
            options.run_dir, output, picture=picture, license=options.license, model_id=options.model_id
        )
    except ManMoeError as error:
        parser.exit(1, f"manmoe-card: error: {error}\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
