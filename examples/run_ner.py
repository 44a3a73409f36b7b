#!/usr/bin/env python
"""Zero-shot cross-lingual NER with MAN-MoE: train on labeled NER data in the source languages and tag a target
language whose training sentences are used without labels (the paper's CoNLL experiment).

    python examples/run_ner.py --source_languages en de es --target_language nl --conll_dir ../shared/data \
        --word_vectors en=../shared/embeddings/conll-use-m3/en.vec.gz de=... es=... nl=... \
        --output_dir runs/ner-nl --do_train --do_eval --do_predict

Runs unchanged under `accelerate launch`. Data: a CoNLL folder with the standard names (`eng|deu|esp|ned` .
`train|testa|testb`), or explicit per-language files (`--train_files en=PATH ...`), or Hub datasets
(`--hub_datasets en=NAME[:CONFIG]`). Outputs in `--output_dir`: the model and tokenizer (Auto classes, remote
code), `all_results.json` (per-language dev and test precision/recall/F1, the configuration, the sha256 of every
data and vector file, seed, wall time) and `predictions_test_{lang}.conll` (`word gold predicted`). With
`--push_to_hub [--hub_model_id USER/NAME]` the run then stages `hub_upload/` (model, tokenizer, code, results, gate
picture, model card) and uploads it (`modeling_manmoe.run.publish`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import datasets
import transformers
from transformers import AutoConfig, AutoModelForTokenClassification, HfArgumentParser, set_seed

from modeling_manmoe import ManMoeForTokenClassification
from modeling_manmoe.data import CONLL_NER_LABELS, load_hub_ner, read_conll
from modeling_manmoe.run.outputs import atomic_write_text, conll_prediction_lines, sha256_file
from modeling_manmoe.run.run_folder import RunFolderArguments, check_run_arguments, holds_output_folder
from modeling_manmoe.run.setup import (
    ConllFileArguments,
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

logger = logging.getLogger("run_ner")
SPLITS = ("train", "validation", "test")


@dataclass
class DataArguments(ConllFileArguments):
    """Which languages and where their NER data is."""

    source_languages: list[str] = field(metadata={"help": "Labeled source languages, e.g. en de es."})
    target_language: str = field(metadata={"help": "The zero-resource target, e.g. nl: its training sentences "
                                           "are used without labels; its dev/test labels only score."})  # fmt: skip
    hub_datasets: list[str] = field(
        default_factory=list, metadata={"help": "LANG=NAME[:CONFIG] Hub datasets with tokens/ner_tags columns."}
    )
    max_train_sentences: int | None = field(
        default=None, metadata={"help": "Keep a seeded random subset of this many training sentences per language."}
    )
    max_eval_sentences: int | None = field(
        default=None, metadata={"help": "Keep the first N dev and test sentences per language (quick runs)."}
    )

    @property
    def languages(self) -> list[str]:
        return list(self.source_languages) + [self.target_language]


def load_split(
    data_args: DataArguments, language: str, split: str, label_names: list[str]
) -> tuple[datasets.Dataset | None, dict]:
    """One language's split from explicit files, a Hub dataset or the CoNLL folder (in that order), its tags mapped
    onto `label_names`; returns the dataset (None when that split is not given) and its provenance (file sha256 or
    Hub fingerprint)."""
    hub = parse_pairs(data_args.hub_datasets, "hub_datasets")
    path = data_args.conll_path(language, split, folder=language not in hub)
    if path is None and language in hub:
        name, _, config_name = hub[language].partition(":")
        dataset = load_hub_ner(name, language, split, config_name=config_name or None, label_names=label_names)
        return dataset, {"hub_dataset": hub[language], "split": split, "fingerprint": dataset._fingerprint}
    if path is None:
        if split == "train":
            raise ValueError(f"no training data for language {language!r}: give --conll_dir, --train_files "
                             f"{language}=PATH or --hub_datasets {language}=NAME")  # fmt: skip
        return None, {}
    return read_conll(path, language, label_names=label_names), {"path": os.path.abspath(path),
                                                                  "sha256": sha256_file(path)}  # fmt: skip


def run_label_names(data_args: DataArguments, model_args: ModelArguments, splits: list[str]) -> list[str]:
    """The run's NER tag set: a trained model's own (`--model_name_or_path`; `--ner_labels`, when given, must be
    the same), else `--ner_labels`, else the one `ConllFileArguments.resolve_label_names` infers from the CoNLL
    files of `splits` (Hub datasets are mapped onto it)."""
    if model_args.model_name_or_path is not None:
        config = AutoConfig.from_pretrained(model_args.model_name_or_path, trust_remote_code=True)
        names = [config.id2label[i] for i in range(len(config.id2label))]
        if data_args.ner_labels and list(data_args.ner_labels) != names:
            raise ValueError(f"--ner_labels {list(data_args.ner_labels)} are not the labels of --model_name_or_path "
                             f"{model_args.model_name_or_path!r} {names} (config.id2label); leave --ner_labels out")  # fmt: skip
        return names
    hub = parse_pairs(data_args.hub_datasets, "hub_datasets")
    paths = (
        data_args.conll_path(lang, split, folder=lang not in hub) for split in splits for lang in data_args.languages
    )
    return data_args.resolve_label_names(path for path in paths if path is not None)


def predict_language(trainer: ManMoeTrainer, tokenizer, dataset: datasets.Dataset, language: str, path: str):
    """Tag `dataset`, write `word gold predicted` lines to `path` (atomically) and return the metrics."""
    encoded = EncodedDataset(trainer.encode_dataset(dataset, tokenizer, language, "ner_tags"), language)
    output = trainer.predict(encoded, metric_key_prefix=f"test_{language}")
    id2label = trainer.model.config.id2label
    sentences = []
    for row, words in enumerate(dataset["tokens"]):
        gold_ids, predicted_ids = output.label_ids[row], output.predictions[row]
        keep = gold_ids != -100
        gold = [id2label[int(i)] for i in gold_ids[keep]]
        predicted = [id2label[int(i)] for i in predicted_ids[keep]]
        sentences.append((words, gold, predicted))
    if trainer.is_world_process_zero():
        atomic_write_text(path, conll_prediction_lines(sentences))
    return output.metrics


@holds_output_folder
def main(argv: list[str] | None = None) -> dict:
    started = time.time()
    parser = HfArgumentParser((DataArguments, ModelArguments, PaperScheduleArguments, RunFolderArguments))
    data_args, model_args, training_args, folder_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    check_run_arguments(model_args, data_args, training_args, folder_args)  # before any data or vectors are loaded
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        raise ValueError("nothing to do: give --do_train, --do_eval and/or --do_predict")
    push_to_hub = take_over_hub_push(training_args)  # checked before training; pushed once, at the end
    set_seed(training_args.seed)
    languages = data_args.languages
    provenance: dict[str, dict] = {}

    splits = ["train"] * training_args.do_train + ["validation"] + ["test"] * training_args.do_predict
    label_names = run_label_names(data_args, model_args, splits)
    if label_names != CONLL_NER_LABELS:
        logger.info("NER tag set: %s", label_names)

    def load(split: str, count: int | None, seed: int | None) -> dict[str, datasets.Dataset]:
        loaded = {}
        for lang in languages:
            dataset, source = load_split(data_args, lang, split, label_names)
            if dataset is not None:
                loaded[lang] = limit(dataset, count, seed)
                provenance[f"{split}/{lang}"] = source | {"sentences": len(loaded[lang])}
        return loaded

    train = load("train", data_args.max_train_sentences, training_args.seed) if training_args.do_train else {}
    # few-shot: N labeled target sentences (--target_train_size); the rest of the target is used without labels
    target_labeled, target_record = few_shot_target(train.get(data_args.target_language), model_args,
                                                    training_args.seed)  # fmt: skip
    if train:  # the target's training labels are removed before anything sees them (but the few-shot subset's)
        target = data_args.target_language
        train[target] = train[target].remove_columns("ner_tags")
        logger.info("target %s: %d training sentences used without labels, %d with", target, len(train[target]),
                    0 if target_labeled is None else len(target_labeled))  # fmt: skip
    dev = load("validation", data_args.max_eval_sentences, None)
    test = load("test", data_args.max_eval_sentences, None) if training_args.do_predict else {}
    if training_args.do_train and data_args.target_language not in dev and training_args.model_selection == "target":
        raise ValueError(f"model selection on the target needs a {data_args.target_language!r} dev set; give one or "
                         "--model_selection source_mean")  # fmt: skip

    if model_args.model_name_or_path is not None:
        model, tokenizer = load_trained_model(AutoModelForTokenClassification, model_args, training_args, provenance)
    else:
        if not training_args.do_train:
            raise ValueError("--do_eval/--do_predict without --do_train need --model_name_or_path")
        corpus_words = (word for dataset in train.values() for sentence in dataset["tokens"] for word in sentence)
        oov_corpus = {
            lang: (word for sentence in dataset["tokens"] for word in sentence) for lang, dataset in train.items()
        }

        def data_words(lang: str):  # the reference's vocabulary: the words of every split (no labels are read)
            for split in (train, dev, test):
                for sentence in split[lang]["tokens"] if lang in split else ():
                    yield from sentence

        vocabulary_corpus = {lang: data_words(lang) for lang in languages}
        model, tokenizer = build_model(ManMoeForTokenClassification, model_args, data_args.source_languages,
                                       data_args.target_language, label_names, corpus_words, provenance,
                                       oov_corpus=oov_corpus, vocabulary_corpus=vocabulary_corpus,
                                       coverage_corpus={lang: data_words(lang) for lang in languages})  # fmt: skip
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
        target_train_dataset=None if target_labeled is None else {data_args.target_language: target_labeled},
    )
    results = {"task": "token-classification", "source_languages": list(data_args.source_languages),
               "target_language": data_args.target_language, "seed": training_args.seed,
               "target_train": target_record}  # fmt: skip
    if teachers:
        results["distillation"] = distillation_record(trainer, test, "ner_tags")
    return train_evaluate_predict(
        trainer, tokenizer, results, dev=dev, test=test, predict_language=predict_language,
        prediction_suffix=".conll", score_names=("precision", "recall", "f1"), provenance=provenance,
        script="examples/run_ner.py", argv=argv, started=started, push_to_hub=push_to_hub,
        tag_column="ner_tags",
    )  # fmt: skip


if __name__ == "__main__":
    main()
