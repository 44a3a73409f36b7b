#!/usr/bin/env python
"""Fine-tune a (multilingual) transformer encoder on CoNLL NER data: a teacher for distillation
(`run_ner.py --teacher_models LANG=OUTPUT_DIR`, or `all=OUTPUT_DIR`).

    python examples/finetune_teacher.py --languages en --conll_dir ../shared/data \
        --model_name_or_path ../shared/models/multilingual-e5-small-trimmed --output_dir runs/teacher-en \
        --num_train_epochs 3 --learning_rate 5e-5

The model is an `AutoModelForTokenClassification` trained with the `transformers` `Trainer` on the training files of
`--languages` (one language: a monolingual teacher; several: one multi-source teacher for all of them), each word
labeled at its first sub-token (the other sub-tokens are ignored, as `Teacher` reads them). `--frozen_layers N` keeps
the embeddings and the lowest N transformer layers at their pretrained weights. Outputs in `--output_dir`: the model
(safetensors) and tokenizer, and `all_results.json` (dev and test precision / recall / F1 of the final model on each
of `--eval_languages`, e.g. a target scored zero-shot, the sha256 of every data file, the sub-token limit and how many
words it cut, seed and wall time). Data: per-language CoNLL files (`--train_files en=PATH de=PATH ...` and its
siblings), else the files of `--conll_dir` (`conll_file_path`'s names), as `run_ner.py` reads them. The tag set:
`--ner_labels`, else CoNLL's when the files' entity types are PER, ORG, LOC, MISC or fewer, else O and B-/I- of
every type in the files, as `run_ner.py` decides it, so that a student of the same files accepts the teacher.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from dataclasses import dataclass, field

import transformers
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    set_seed,
)

from modeling_manmoe.data import read_conll
from modeling_manmoe.run.outputs import atomic_write_text, sha256_file
from modeling_manmoe.run.run_folder import RunFolderArguments, remove_run_outputs, run_outputs
from modeling_manmoe.run.setup import ConllFileArguments, parse_pairs
from modeling_manmoe.training.metrics import seqeval_metrics

logger = logging.getLogger("finetune_teacher")
SPLITS = ("train", "validation", "test")


@dataclass
class TeacherArguments(ConllFileArguments):
    """The teacher's language, data and encoder."""

    languages: list[str] = field(
        metadata={"help": "The language(s) the teacher learns, e.g. en (monolingual) or en de es (multi-source)."}
    )
    model_name_or_path: str = field(metadata={"help": "A transformer encoder (local folder or Hub name)."})
    eval_languages: list[str] | None = field(
        default=None, metadata={"help": "Languages whose dev and test files are scored (default: --languages)."}
    )
    max_length: int = field(
        default=256, metadata={"help": "Sub-tokens per sentence; words beyond it get no label in training."}
    )
    frozen_layers: int = field(
        default=0,
        metadata={"help": "Keep the embeddings and the lowest N transformer layers at their pretrained weights "
                  "(0: every weight trains)."},
    )  # fmt: skip


def data_files(args: TeacherArguments) -> dict[str, dict[str, str]]:
    """{split: {language: path}}: the training files of `args.languages`, and the dev and test files of
    `args.eval_languages` (default: `args.languages`) that exist. For each language and split the explicit file
    (`--train_files LANG=PATH`, ...) comes first, then the CoNLL folder."""
    eval_languages = args.eval_languages or args.languages
    explicit = {split: parse_pairs(getattr(args, f"{split}_files"), f"{split}_files") for split in SPLITS}
    files: dict[str, dict[str, str]] = {split: {} for split in SPLITS}
    for split in SPLITS:
        wanted = args.languages if split == "train" else eval_languages
        unused = sorted(set(explicit[split]) - set(wanted))
        if unused:
            raise ValueError(f"--{split}_files: {unused} are not among the languages read for {split} {list(wanted)}")
        for lang in wanted:
            path = args.conll_path(lang, split)
            if path is not None:
                files[split][lang] = path
    missing = [lang for lang in args.languages if lang not in files["train"]]
    if missing:
        raise ValueError(f"no training data for {missing}: give --conll_dir or --train_files LANG=PATH")
    return {split: paths for split, paths in files.items() if paths}


def freeze_lower_layers(model, layers: int) -> None:
    """Keep the embeddings and the lowest `layers` transformer layers of `model` (a BERT-like encoder with a head) at
    their pretrained weights."""
    if layers <= 0:
        return
    base = model.base_model
    stack = getattr(getattr(base, "encoder", None), "layer", None)
    if not hasattr(base, "embeddings") or stack is None:
        raise ValueError(f"--frozen_layers {layers}: {type(base).__name__} has no `embeddings` and `encoder.layer`")
    if layers > len(stack):
        raise ValueError(f"--frozen_layers {layers}: the encoder has only {len(stack)} layers")
    for module in (base.embeddings, *stack[:layers]):
        module.requires_grad_(False)


def encode(tokenizer, words: list[list[str]], tags: list[list[int]], max_length: int) -> tuple[list[dict], int]:
    """Sub-token ids with each word's tag at its first sub-token (-100 elsewhere); also the number of words cut."""
    encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    rows, cut = [], 0
    for row, sentence_tags in enumerate(tags):
        labels, seen = [], set()
        for word in encoded.word_ids(row):
            labels.append(sentence_tags[word] if word is not None and word not in seen else -100)
            if word is not None:
                seen.add(word)
        cut += len(sentence_tags) - len(seen)
        rows.append({"input_ids": encoded["input_ids"][row], "attention_mask": encoded["attention_mask"][row],
                     "labels": labels})  # fmt: skip
    return rows, cut


def main(argv: list[str] | None = None) -> dict:
    started = time.time()
    parser = HfArgumentParser((TeacherArguments, TrainingArguments, RunFolderArguments))
    args, training_args, folder_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    outputs = run_outputs(training_args.output_dir)
    if outputs and not folder_args.overwrite_output_dir:
        raise ValueError(f"--output_dir: {training_args.output_dir!r} holds the outputs of another run "
                         f"({', '.join(outputs[:6])}); give a new folder or --overwrite_output_dir")  # fmt: skip
    files = data_files(args)
    if outputs and training_args.should_save:
        remove_run_outputs(training_args.output_dir)
    set_seed(training_args.seed)
    names = args.resolve_label_names(path for paths in files.values() for path in paths.values())
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    if not tokenizer.is_fast:
        raise ValueError(f"--model_name_or_path {args.model_name_or_path!r}: a teacher needs a fast tokenizer "
                         "(word_ids maps sub-tokens to words)")  # fmt: skip
    encoded: dict[str, dict[str, list[dict]]] = {split: {} for split in files}
    cut: dict[str, dict[str, int]] = {split: {} for split in files}
    for split, paths in files.items():
        for lang, path in paths.items():
            dataset = read_conll(path, lang, label_names=names)
            encoded[split][lang], cut[split][lang] = encode(
                tokenizer, list(dataset["tokens"]), list(dataset["ner_tags"]), args.max_length
            )
            if cut[split][lang]:
                logger.warning("%s %s: %d words lie beyond --max_length %d sub-tokens and are not scored or learned",
                               lang, split, cut[split][lang], args.max_length)  # fmt: skip
    model = AutoModelForTokenClassification.from_pretrained(
        args.model_name_or_path, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
    )  # fmt: skip
    freeze_lower_layers(model, args.frozen_layers)
    trainer = Trainer(
        model=model, args=training_args, train_dataset=[row for rows in encoded["train"].values() for row in rows],
        eval_dataset=encoded.get("validation"), data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer, preprocess_logits_for_metrics=lambda logits, labels: logits.argmax(-1),
        compute_metrics=functools.partial(seqeval_metrics, id2label=dict(enumerate(names))),
    )  # fmt: skip
    train = trainer.train().metrics
    results = {"languages": args.languages, "model_name_or_path": args.model_name_or_path,
               "frozen_layers": args.frozen_layers, "train": train, "max_length": args.max_length,
               "words_beyond_max_length": cut, "seed": training_args.seed,
               "data_files": {split: {lang: {"path": os.path.abspath(path), "sha256": sha256_file(path)}
                                      for lang, path in paths.items()} for split, paths in files.items()}}  # fmt: skip
    for split, name in (("validation", "dev"), ("test", "test")):
        for lang, rows in encoded.get(split, {}).items():
            metrics = trainer.evaluate(rows, metric_key_prefix=name)
            results.setdefault(name, {})[lang] = {
                key: metrics[f"{name}_{key}"] for key in ("precision", "recall", "f1")
            }
            logger.info("%s %s: precision %.2f recall %.2f f1 %.2f", name, lang, *results[name][lang].values())
    if trainer.is_world_process_zero():
        trainer.save_model()  # safetensors, with the tokenizer
        results["wall_time_s"] = round(time.time() - started, 1)
        atomic_write_text(os.path.join(training_args.output_dir, "all_results.json"), json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
