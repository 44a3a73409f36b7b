#!/usr/bin/env python
"""Zero-shot cross-lingual sentence classification with MAN-MoE: train on labeled texts in the source languages and
classify a target language whose training texts are used without labels (the paper's Amazon-review experiment).

    python examples/run_classification.py --source_languages en de fr --target_language ja --domain books \
        --webis_dir ../shared/data/webis-cls-10 \
        --word_vectors en=../shared/embeddings/webis-use-m3/en.vec.gz de=... fr=... ja=... \
        --output_dir runs/cls-ja-books --do_train --do_eval --do_predict

Runs unchanged under `accelerate launch`. Data: the Webis-CLS-10 folder (`--webis_dir` + `--domain`), or
explicit per-language files (`--train_files en=PATH ...`: Webis `.review`/`.review.gz`, or `.csv`/`.tsv`/`.json`/
`.jsonl` with `--text_column`/`--label_column`), or Hub datasets (`--hub_datasets en=NAME[:CONFIG]`). Texts are
split into words by the tokenizer (lower-cased; the regex `\\w+|[^\\w\\s]`, MeCab for Japanese), as the shared
Webis vectors were made. Dev: a held-out part of each source language's training data (`--validation_fraction`),
unless dev files are given. Outputs in `--output_dir`: the model and tokenizer (`AutoModelForSequenceClassification`,
`pipeline("text-classification")`, remote code), `all_results.json` (per-language dev and test accuracy, the
configuration, the sha256 of every data and vector file, seed, wall time) and `predictions_test_{lang}.jsonl`. With
`--push_to_hub [--hub_model_id USER/NAME]` the run then stages `hub_upload/` (model, tokenizer, code, results, gate
picture, model card) and uploads it (`modeling_manmoe.run.publish`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field

import datasets
import transformers
from transformers import AutoModelForSequenceClassification, HfArgumentParser, set_seed

from modeling_manmoe import ManMoeForSequenceClassification, ManMoeTokenizer
from modeling_manmoe.data import (
    SENTIMENT_LABELS,
    WEBIS_DOMAINS,
    load_text_classification,
    read_webis_reviews,
    webis_file_path,
)
from modeling_manmoe.run.outputs import atomic_write_text, sha256_file
from modeling_manmoe.run.run_folder import RunFolderArguments, check_run_arguments, holds_output_folder
from modeling_manmoe.run.setup import (
    ModelArguments,
    build_model,
    distillation_record,
    distillation_teachers,
    encoder_feature_cache,
    few_shot_target,
    limit,
    load_trained_model,
    parse_pairs,
    take_over_hub_push,
    train_evaluate_predict,
)
from modeling_manmoe.training import EncodedDataset, ManMoeTrainer, PaperScheduleArguments

logger = logging.getLogger("run_classification")
WEBIS_SUFFIXES = (".review", ".review.gz")


@dataclass
class DataArguments:
    """Which languages and where their labeled texts are."""

    source_languages: list[str] = field(metadata={"help": "Labeled source languages, e.g. en de fr."})
    target_language: str = field(metadata={"help": "The zero-resource target, e.g. ja: its training texts are "
                                           "used without labels; its test labels only score."})  # fmt: skip
    webis_dir: str | None = field(
        default=None, metadata={"help": "The Webis-CLS-10 folder ({en,de,fr,jp}/{books,dvd,music}/{train,test})."}
    )
    domain: str | None = field(default=None, metadata={"help": f"Webis-CLS-10 domain: one of {list(WEBIS_DOMAINS)}."})
    train_files: list[str] = field(default_factory=list, metadata={"help": "LANG=PATH training files."})
    validation_files: list[str] = field(default_factory=list, metadata={"help": "LANG=PATH dev files."})
    test_files: list[str] = field(default_factory=list, metadata={"help": "LANG=PATH test files."})
    hub_datasets: list[str] = field(
        default_factory=list, metadata={"help": "LANG=NAME[:CONFIG] Hub datasets with text/label columns."}
    )
    text_column: str = field(default="text", metadata={"help": "Text column of CSV/JSON files and Hub datasets."})
    label_column: str = field(default="label", metadata={"help": "Label column of CSV/JSON files and Hub datasets."})
    validation_fraction: float = field(
        default=0.1,
        metadata={"help": "Without dev files: the part of each source language's training data held out (seeded) "
                  "as its dev set."},
    )  # fmt: skip
    max_words: int = field(
        default=256,
        metadata={"help": "Keep the first N words of each text (0: all). Reviews average ~190 words and reach "
                  "thousands; how many texts were cut is logged and recorded in all_results.json."},
    )  # fmt: skip
    max_train_sentences: int | None = field(
        default=None, metadata={"help": "Keep a seeded random subset of this many training texts per language."}
    )
    max_eval_sentences: int | None = field(
        default=None, metadata={"help": "Keep the first N dev and test texts per language (quick runs)."}
    )

    @property
    def languages(self) -> list[str]:
        return list(self.source_languages) + [self.target_language]


@dataclass
class ClassificationModelArguments(ModelArguments):
    """As `ModelArguments`, without the CharCNN by default (the reference's sentence-classification setting)."""

    use_char_cnn: bool = field(default=False, metadata={"help": "Add the CharCNN word features (reference: off)."})


@dataclass
class ClassificationTrainingArguments(PaperScheduleArguments):
    """The paper's schedule (`PaperScheduleArguments`) with these overrides for review classification: 1,000 steps,
    the dev sets scored (and a checkpoint kept) every 100 steps, and selection on the sources' dev scores (the target
    has no labeled dev set in the zero-resource setting)."""

    max_steps: int = field(default=1000, metadata={"help": "Training steps."})
    eval_strategy: str = field(default="steps", metadata={"help": "Evaluate every eval_steps."})
    eval_steps: float | None = field(default=100, metadata={"help": "Evaluate (and checkpoint) every N steps."})
    logging_steps: float = field(default=50, metadata={"help": "Log every N steps."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Texts per evaluation batch."})
    model_selection: str = field(
        default="source_mean",
        metadata={"help": "'source_mean' (default: mean dev accuracy of the sources) or 'target' (needs a target "
                  "dev file)."},
    )  # fmt: skip


def read_file(path: str, language: str, data_args: DataArguments) -> datasets.Dataset:
    """A Webis review file or a CSV/TSV/JSON/JSONL file with text and label columns."""
    if path.endswith(WEBIS_SUFFIXES):
        return read_webis_reviews(path, language)
    return load_text_classification(
        path, language, text_column=data_args.text_column, label_column=data_args.label_column
    )


def load_split(data_args: DataArguments, language: str, split: str) -> tuple[datasets.Dataset | None, dict]:
    """One language's split from explicit files, a Hub dataset or the Webis folder (in that order); returns the
    dataset (None when that split is not given) and its provenance (file sha256 or Hub fingerprint)."""
    files = parse_pairs(getattr(data_args, f"{split}_files"), f"{split}_files")
    hub = parse_pairs(data_args.hub_datasets, "hub_datasets")
    if language in files:
        path = files[language]
    elif language in hub:
        name, _, config_name = hub[language].partition(":")
        dataset = load_text_classification(
            name,
            language,
            split=split,
            text_column=data_args.text_column,
            label_column=data_args.label_column,
            name=config_name or None,
        )
        return dataset, {"hub_dataset": hub[language], "split": split, "fingerprint": dataset._fingerprint}
    elif data_args.webis_dir is not None and split != "validation":
        if data_args.domain not in WEBIS_DOMAINS:
            raise ValueError(f"--webis_dir needs --domain, one of {list(WEBIS_DOMAINS)}; got {data_args.domain!r}")
        path = str(webis_file_path(data_args.webis_dir, language, data_args.domain, split))
    elif split == "train":
        raise ValueError(f"no training data for language {language!r}: give --webis_dir and --domain, --train_files "
                         f"{language}=PATH or --hub_datasets {language}=NAME")  # fmt: skip
    else:
        return None, {}
    return read_file(path, language, data_args), {"path": os.path.abspath(path), "sha256": sha256_file(path)}


def add_words(dataset: datasets.Dataset, tokenizer, language: str, max_words: int, provenance: dict | None):
    """Add the `tokens` column (the tokenizer's word splitting, the first `max_words` words); record how many texts
    were cut in `provenance`."""
    words = [tokenizer.split_words(text, language) for text in dataset["text"]]
    cut = sum(len(w) > max_words for w in words) if max_words > 0 else 0
    if max_words > 0:
        words = [w[:max_words] for w in words]
    if provenance is not None:
        provenance.update(words=sum(len(w) for w in words), truncated_to_max_words=cut)
    if cut:
        logger.info(
            "%s: %d of %d texts cut to their first %d words (--max_words)", language, cut, len(words), max_words
        )
    return dataset.add_column("tokens", words)


def label_names_of(splits: list[dict[str, datasets.Dataset]]) -> list[str]:
    """The label names shared by every loaded dataset (they must agree: one model predicts one label set)."""
    names = {
        lang: ds.features["label"].names for split in splits for lang, ds in split.items() if "label" in ds.features
    }
    distinct = {tuple(n) for n in names.values()}
    if len(distinct) > 1:
        raise ValueError(f"the datasets have different label names: {names}; give every language the same labels")
    return list(distinct.pop()) if distinct else list(SENTIMENT_LABELS)


def predict_language(trainer: ManMoeTrainer, tokenizer, dataset: datasets.Dataset, language: str, path: str):
    """Classify `dataset`, write one JSON line per text (gold and predicted label, probability) to `path`
    atomically and return the metrics."""
    encoded = EncodedDataset(trainer.encode_dataset(dataset, tokenizer, language, "label"), language)
    output = trainer.predict(encoded, metric_key_prefix=f"test_{language}")
    id2label = trainer.model.config.id2label
    lines = []
    for gold, log_probs in zip(output.label_ids, output.predictions, strict=True):
        predicted = int(log_probs.argmax())
        lines.append(json.dumps({"label": id2label[int(gold)], "prediction": id2label[predicted],
                                 "probability": round(float(math.exp(log_probs[predicted])), 4)}))  # fmt: skip
    if trainer.is_world_process_zero():
        atomic_write_text(path, "\n".join(lines) + "\n")
    return output.metrics


@holds_output_folder
def main(argv: list[str] | None = None) -> dict:
    started = time.time()
    parser = HfArgumentParser(
        (DataArguments, ClassificationModelArguments, ClassificationTrainingArguments, RunFolderArguments)
    )
    data_args, model_args, training_args, folder_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    check_run_arguments(model_args, data_args, training_args, folder_args)  # before any data or vectors are loaded
    target = data_args.target_language
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        raise ValueError("nothing to do: give --do_train, --do_eval and/or --do_predict")
    if not 0 <= data_args.validation_fraction < 1:
        raise ValueError(f"--validation_fraction must be in [0, 1), got {data_args.validation_fraction}")
    push_to_hub = take_over_hub_push(training_args)  # checked before training; pushed once, at the end
    set_seed(training_args.seed)
    languages = data_args.languages
    provenance: dict[str, dict] = {}

    def load(split: str) -> dict[str, datasets.Dataset]:
        loaded = {}
        for lang in languages:
            dataset, source = load_split(data_args, lang, split)
            if dataset is not None:
                loaded[lang] = dataset
                provenance[f"{split}/{lang}"] = source | {"texts": len(dataset)}
        return loaded

    train = load("train") if training_args.do_train else {}
    dev = load("validation")
    test = load("test") if training_args.do_predict else {}
    for lang in data_args.source_languages:  # dev = a held-out part of the source's training data
        if lang in train and lang not in dev and data_args.validation_fraction > 0:
            parts = train[lang].train_test_split(test_size=data_args.validation_fraction, seed=training_args.seed)
            train[lang], dev[lang] = parts["train"], parts["test"]
            provenance[f"validation/{lang}"] = {"held_out_from": f"train/{lang}", "texts": len(dev[lang])}
    for name, split, count, seed in (("train", train, data_args.max_train_sentences, training_args.seed),
                                     ("validation", dev, data_args.max_eval_sentences, None),
                                     ("test", test, data_args.max_eval_sentences, None)):  # fmt: skip
        for lang in split:
            split[lang] = limit(split[lang], count, seed)
            provenance[f"{name}/{lang}"]["texts"] = len(split[lang])
    # few-shot: N labeled target texts (--target_train_size); the rest of the target is used without labels
    target_labeled, target_record = few_shot_target(train.get(target), model_args, training_args.seed)
    if train:  # the target's training labels are removed before anything sees them (but the few-shot subset's)
        train[target] = train[target].remove_columns([c for c in ("label", "rating") if c in train[target].features])
        logger.info("target %s: %d training texts used without labels, %d with", target, len(train[target]),
                    0 if target_labeled is None else len(target_labeled))  # fmt: skip
    if training_args.do_train and training_args.model_selection == "target" and target not in dev:
        raise ValueError(f"--model_selection target needs a {target!r} dev file (--validation_files {target}=PATH)")

    if model_args.model_name_or_path is not None:
        model, tokenizer = load_trained_model(AutoModelForSequenceClassification, model_args, training_args, provenance)
    else:
        if not training_args.do_train:
            raise ValueError("--do_eval/--do_predict without --do_train need --model_name_or_path")
        texts = (text for dataset in train.values() for text in dataset["text"])
        mecab = [lang for lang in languages if lang == "ja"]
        splitter = ManMoeTokenizer(vocabularies={}, characters=[], languages=languages, do_lower_case=True,
                                   mecab_languages=mecab)  # fmt: skip

        def text_words(lang: str):  # the data's words as the tokenizer splits them, for the vectors' coverage
            for split in (train, dev, test):
                for text in split[lang]["text"] if lang in split else ():
                    yield from splitter.split_words(text, lang)

        model, tokenizer = build_model(ManMoeForSequenceClassification, model_args, data_args.source_languages,
                                       target, label_names_of([train, dev, test]), texts, provenance,
                                       do_lower_case=True, mecab_languages=mecab,
                                       coverage_corpus={lang: text_words(lang) for lang in languages})  # fmt: skip
    for split_name, split in (("train", train), ("validation", dev), ("test", test)):
        for lang in split:
            split[lang] = add_words(
                split[lang], tokenizer, lang, data_args.max_words, provenance.get(f"{split_name}/{lang}")
            )
    if target_labeled is not None:
        target_labeled = add_words(target_labeled, tokenizer, target, data_args.max_words, None)
    feature_cache = encoder_feature_cache(model, tokenizer, model_args, not training_args.disable_tqdm, provenance)
    teachers, teacher_cache = distillation_teachers(model, model_args, training_args)
    trainer = ManMoeTrainer(
        model=model,
        args=training_args,
        train_dataset=train or None,
        eval_dataset=dev or None,
        processing_class=tokenizer,
        feature_cache=feature_cache,
        teachers=teachers,
        teacher_cache=teacher_cache,
        target_train_dataset=None if target_labeled is None else {target: target_labeled},
    )
    results = {"task": "text-classification", "source_languages": list(data_args.source_languages),
               "target_language": target, "domain": data_args.domain, "seed": training_args.seed,
               "max_words": data_args.max_words, "target_train": target_record}  # fmt: skip
    if teachers:
        results["distillation"] = distillation_record(trainer, test, "label")
    return train_evaluate_predict(
        trainer, tokenizer, results, dev=dev, test=test, predict_language=predict_language,
        prediction_suffix=".jsonl", score_names=("accuracy",), provenance=provenance,
        script="examples/run_classification.py", argv=argv, started=started,
        push_to_hub=push_to_hub,
    )  # fmt: skip


if __name__ == "__main__":
    main()
