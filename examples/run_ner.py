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
data and vector file, seed, wall time) and `predictions_test_{lang}.conll` (`word gold predicted`).
"""

from __future__ import annotations

import logging
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field

import datasets
import torch
import transformers
from transformers import AutoModelForTokenClassification, AutoTokenizer, HfArgumentParser, set_seed

import modeling_manmoe
from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification
from modeling_manmoe.data import CONLL_NER_LABELS, conll_file_path, load_hub_ner, read_conll
from modeling_manmoe.feature_cache import EncoderFeatureCache, tensors_sha256
from modeling_manmoe.inputs import build_encoder_inputs, build_word_vector_inputs
from modeling_manmoe.run_outputs import atomic_write_text, conll_prediction_lines, sha256_file, write_json
from modeling_manmoe.training import EncodedDataset, ManMoeTrainer, ManMoeTrainingArguments

logger = logging.getLogger("run_ner")
SPLITS = ("train", "validation", "test")


@dataclass
class DataArguments:
    """Which languages and where their NER data is."""

    source_languages: list[str] = field(metadata={"help": "Labeled source languages, e.g. en de es."})
    target_language: str = field(metadata={"help": "The zero-resource target, e.g. nl: its training sentences "
                                           "are used without labels; its dev/test labels only score."})  # fmt: skip
    conll_dir: str | None = field(
        default=None, metadata={"help": "Folder with the standard CoNLL-2002/2003 files (or conll2002/ conll2003/)."}
    )
    train_files: list[str] = field(default_factory=list, metadata={"help": "LANG=PATH CoNLL training files."})
    validation_files: list[str] = field(default_factory=list, metadata={"help": "LANG=PATH CoNLL dev files."})
    test_files: list[str] = field(default_factory=list, metadata={"help": "LANG=PATH CoNLL test files."})
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


@dataclass
class ModelArguments:
    """The input representation and the model's ablation switches."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A trained MAN-MoE folder or Hub name (for --do_eval/--do_predict)."}
    )
    word_vectors: list[str] = field(
        default_factory=list, metadata={"help": "LANG=PATH aligned vectors (.vec/.vec.gz), one per language."}
    )
    max_vectors_per_language: int | None = field(default=None, metadata={"help": "Read only the first N vectors."})
    encoder_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A frozen multilingual encoder instead of word vectors: a Hub name (e.g. "
                  "bert-base-multilingual-cased) or a local folder."},
    )  # fmt: skip
    encoder_layers: list[int] = field(
        default_factory=lambda: [-1],
        metadata={"help": "Encoder hidden states to use (0 = embeddings, -1 = last); several are mixed by learned "
                  "softmax weights."},
    )  # fmt: skip
    encoder_pooling: str = field(default="first", metadata={"help": "Word feature: 'first' sub-token or 'mean'."})
    feature_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where encoder features are cached (default $MANMOE_FEATURE_CACHE or "
                  "$HF_HOME/modeling_manmoe/features)."},
    )  # fmt: skip
    no_feature_cache: bool = field(
        default=False, metadata={"help": "Run the frozen encoder at every step instead of reading cached features."}
    )
    use_char_cnn: bool = field(default=True, metadata={"help": "Add the CharCNN word features (paper: on)."})
    lowercase_characters: str = field(
        default="auto", metadata={"help": "'auto' (the reference: only for a German target), 'yes' or 'no'."}
    )
    no_adversary: bool = field(default=False, metadata={"help": "Ablation: no language discriminator."})
    no_private_moe: bool = field(default=False, metadata={"help": "Ablation: one shared private expert, no gate."})
    no_predictor_moe: bool = field(default=False, metadata={"help": "Ablation: one shared tagger, no gate."})


@dataclass
class NerTrainingArguments(ManMoeTrainingArguments):
    """The paper's schedule: 15,000 steps, dev F1 after every epoch, the best checkpoint kept."""

    max_steps: int = field(default=15000, metadata={"help": "Training steps (paper: 15,000)."})
    eval_strategy: str = field(default="epoch", metadata={"help": "Evaluate after every epoch (paper)."})
    save_strategy: str = field(default="epoch", metadata={"help": "Checkpoint after every epoch."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Keep the best dev checkpoint (paper)."})
    save_total_limit: int | None = field(default=1, metadata={"help": "Checkpoints kept besides the best one."})
    logging_steps: float = field(default=100, metadata={"help": "Log every N steps."})
    per_device_eval_batch_size: int = field(default=128, metadata={"help": "Sentences per evaluation batch."})

    def __post_init__(self):
        # `--eval_strategy steps --eval_steps N` alone: checkpoint on the same steps, which keeping the best needs
        if self.load_best_model_at_end and self.save_strategy == "epoch" and self.eval_strategy == "steps":
            self.save_strategy, self.save_steps = "steps", self.eval_steps or self.save_steps
        super().__post_init__()


def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    """['en=PATH', ...] -> {'en': 'PATH'}; errors name the option and the bad item."""
    parsed = {}
    for item in pairs:
        language, sep, value = item.partition("=")
        if not sep or not language or not value:
            raise ValueError(f"--{option}: expected LANG=VALUE items, got {item!r}")
        if language in parsed:
            raise ValueError(f"--{option}: language {language!r} given twice")
        parsed[language] = value
    return parsed


def load_split(data_args: DataArguments, language: str, split: str) -> tuple[datasets.Dataset | None, dict]:
    """One language's split from explicit files, a Hub dataset or the CoNLL folder (in that order); returns the
    dataset (None when that split is not given) and its provenance (file sha256 or Hub fingerprint)."""
    files = parse_pairs(getattr(data_args, f"{split}_files"), f"{split}_files")
    hub = parse_pairs(data_args.hub_datasets, "hub_datasets")
    if language in files:
        path = files[language]
    elif language in hub:
        name, _, config_name = hub[language].partition(":")
        dataset = load_hub_ner(name, language, split, config_name=config_name or None)
        return dataset, {"hub_dataset": hub[language], "split": split, "fingerprint": dataset._fingerprint}
    elif data_args.conll_dir is not None:
        try:
            path = str(conll_file_path(data_args.conll_dir, language, split))
        except FileNotFoundError:
            if split == "train":
                raise
            return None, {}
    else:
        if split == "train":
            raise ValueError(f"no training data for language {language!r}: give --conll_dir, --train_files "
                             f"{language}=PATH or --hub_datasets {language}=NAME")  # fmt: skip
        return None, {}
    return read_conll(path, language), {"path": os.path.abspath(path), "sha256": sha256_file(path)}


def limit(dataset: datasets.Dataset, count: int | None, seed: int | None) -> datasets.Dataset:
    """The first `count` rows (or a seeded random subset when `seed` is given); all rows for None."""
    if count is None or count >= len(dataset):
        return dataset
    return (dataset.shuffle(seed=seed) if seed is not None else dataset).select(range(count))


def build_model(model_args: ModelArguments, data_args: DataArguments, train: dict, provenance: dict):
    """A new MAN-MoE tagger and its tokenizer for `data_args.languages`, with word vectors or a frozen encoder as
    input (records the vector files' provenance)."""
    languages = data_args.languages
    lowercase = {"auto": data_args.target_language == "de", "yes": True, "no": False}.get(
        model_args.lowercase_characters
    )
    if lowercase is None:
        raise ValueError(f"--lowercase_characters: expected auto, yes or no, got {model_args.lowercase_characters!r}")
    corpus_words = (word for dataset in train.values() for sentence in dataset["tokens"] for word in sentence)
    common = dict(
        source_languages=list(data_args.source_languages),
        unlabeled_languages=[data_args.target_language],
        use_char_cnn=model_args.use_char_cnn,
        use_adversary=not model_args.no_adversary,
        use_private_moe=not model_args.no_private_moe,
        use_predictor_moe=not model_args.no_predictor_moe,
        id2label=dict(enumerate(CONLL_NER_LABELS)),
        label2id={label: i for i, label in enumerate(CONLL_NER_LABELS)},
    )
    if model_args.encoder_name_or_path is not None:
        if model_args.word_vectors:
            raise ValueError("give either --word_vectors or --encoder_name_or_path, not both")
        tokenizer, encoder_config = build_encoder_inputs(
            model_args.encoder_name_or_path,
            languages,
            characters=corpus_words,
            language=data_args.target_language,
            lowercase_characters=lowercase,
        )
        config = ManMoeConfig(
            input_mode="encoder",
            encoder_config=encoder_config,
            encoder_name_or_path=model_args.encoder_name_or_path,
            encoder_layers=list(model_args.encoder_layers),
            encoder_pooling=model_args.encoder_pooling,
            char_vocab_size=tokenizer.char_vocab_size,
            **common,
        )
        model = ManMoeForTokenClassification(config)
        model.load_pretrained_encoder(model_args.encoder_name_or_path)
        return model, tokenizer
    vector_files = parse_pairs(model_args.word_vectors, "word_vectors")
    missing = [lang for lang in languages if lang not in vector_files]
    if missing:
        raise ValueError(f"--word_vectors: no vector file for language(s) {missing}; give LANG=PATH for each of "
                         f"{languages}, or use --encoder_name_or_path")  # fmt: skip
    tokenizer, table = build_word_vector_inputs(
        {lang: vector_files[lang] for lang in languages},
        languages,
        max_words=model_args.max_vectors_per_language,
        extra_characters=corpus_words,
        language=data_args.target_language,
        lowercase_characters=lowercase,
    )
    for lang in languages:
        provenance[f"word_vectors/{lang}"] = {"path": os.path.abspath(vector_files[lang]),
                                              "sha256": sha256_file(vector_files[lang])}  # fmt: skip
    config = ManMoeConfig(
        word_vocab_size=table.shape[0],
        word_embedding_dim=table.shape[1],
        char_vocab_size=tokenizer.char_vocab_size,
        **common,
    )
    model = ManMoeForTokenClassification(config)
    model.set_word_vectors(table)
    return model, tokenizer


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


def split_scores(metrics: dict, prefix: str, languages: list[str]) -> dict[str, dict[str, float]]:
    """{'nl': {'precision': .., 'recall': .., 'f1': ..}, ...} from the Trainer's flat `{prefix}_{lang}_f1` keys."""
    return {
        lang: {name: round(metrics[f"{prefix}_{lang}_{name}"], 4) for name in ("precision", "recall", "f1")}
        for lang in languages
        if f"{prefix}_{lang}_f1" in metrics
    }


def main(argv: list[str] | None = None) -> dict:
    started = time.time()
    parser = HfArgumentParser((DataArguments, ModelArguments, NerTrainingArguments))
    data_args, model_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    if data_args.target_language in data_args.source_languages:
        raise ValueError(f"--target_language {data_args.target_language!r} is also a source language; the target "
                         "must be zero-resource")  # fmt: skip
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        raise ValueError("nothing to do: give --do_train, --do_eval and/or --do_predict")
    set_seed(training_args.seed)
    languages = data_args.languages
    provenance: dict[str, dict] = {}

    def load(split: str, count: int | None, seed: int | None) -> dict[str, datasets.Dataset]:
        loaded = {}
        for lang in languages:
            dataset, source = load_split(data_args, lang, split)
            if dataset is not None:
                loaded[lang] = limit(dataset, count, seed)
                provenance[f"{split}/{lang}"] = source | {"sentences": len(loaded[lang])}
        return loaded

    train = load("train", data_args.max_train_sentences, training_args.seed) if training_args.do_train else {}
    if train:  # the target is zero-resource: its training labels are removed before anything sees them
        target = data_args.target_language
        train[target] = train[target].remove_columns("ner_tags")
        logger.info("target %s: %d training sentences used without labels", target, len(train[target]))
    dev = load("validation", data_args.max_eval_sentences, None)
    test = load("test", data_args.max_eval_sentences, None) if training_args.do_predict else {}
    if training_args.do_train and data_args.target_language not in dev and training_args.model_selection == "target":
        raise ValueError(f"model selection on the target needs a {data_args.target_language!r} dev set; give one or "
                         "--model_selection source_mean")  # fmt: skip

    if model_args.model_name_or_path is not None:
        tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path, trust_remote_code=True)
        model = AutoModelForTokenClassification.from_pretrained(model_args.model_name_or_path, trust_remote_code=True)
    else:
        if not training_args.do_train:
            raise ValueError("--do_eval/--do_predict without --do_train need --model_name_or_path")
        model, tokenizer = build_model(model_args, data_args, train, provenance)

    feature_cache = None
    if model.config.input_mode == "encoder":
        encoder = model.manmoe.inputs.encoder_features.encoder
        if not model_args.no_feature_cache:
            feature_cache = EncoderFeatureCache.for_model(
                model, tokenizer, cache_dir=model_args.feature_cache_dir, show_progress=not training_args.disable_tqdm
            )
        provenance["encoder"] = {
            "name_or_path": model.config.encoder_name_or_path,
            "weights_sha256": feature_cache.encoder_weights_sha256 if feature_cache else tensors_sha256(encoder),
        }
    trainer = ManMoeTrainer(
        model=model,
        args=training_args,
        train_dataset=train or None,
        eval_dataset=dev or None,
        processing_class=tokenizer,
        feature_cache=feature_cache,
    )
    results: dict = {"task": "token-classification", "source_languages": list(data_args.source_languages),
                     "target_language": data_args.target_language, "seed": training_args.seed}  # fmt: skip
    if training_args.do_train:
        train_output = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        trainer.save_model()
        trainer.save_state()  # trainer_state.json: the log history (losses, D accuracy, gate accuracy per language)
        steps_per_epoch = math.ceil(len(trainer.train_dataset) / training_args.world_size)
        results["train"] = {
            "global_step": trainer.state.global_step,
            "steps_per_epoch": steps_per_epoch,
            "epochs": round(trainer.state.epoch, 3),
            "train_runtime_s": round(train_output.metrics["train_runtime"], 1),
            "train_loss": round(train_output.training_loss, 4),
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_selection_score": trainer.state.best_metric,
            "model_selection": training_args.model_selection,
        }
    if training_args.do_eval and dev:
        results["dev"] = split_scores(trainer.evaluate(), "eval", languages)
    if training_args.do_predict:
        metrics = {}
        for lang, dataset in test.items():
            path = os.path.join(training_args.output_dir, f"predictions_test_{lang}.conll")
            metrics.update(predict_language(trainer, tokenizer, dataset, lang, path))
        results["test"] = split_scores(metrics, "test", languages)
    results.update(
        config=trainer.model.config.to_dict(),
        training_arguments=training_args.to_dict(),
        data_and_vector_files=provenance,
        command=" ".join(["python"] + sys.argv if argv is None else ["python", "examples/run_ner.py"] + argv),
        wall_time_s=round(time.time() - started, 1),
        hardware={
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "processes": training_args.world_size,
        },  # fmt: skip
        versions={
            "modeling_manmoe": modeling_manmoe.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },  # fmt: skip
    )
    if trainer.is_world_process_zero():
        write_json(os.path.join(training_args.output_dir, "all_results.json"), results)
        for split in ("dev", "test"):
            for lang, scores in results.get(split, {}).items():
                role = "target" if lang == data_args.target_language else "source"
                logger.info("%s %s (%s): P %.2f R %.2f F1 %.2f", split, lang, role, scores["precision"],
                            scores["recall"], scores["f1"])  # fmt: skip
    if not math.isfinite(results.get("train", {}).get("train_loss", 0.0)):
        raise RuntimeError("training diverged: the training loss is not finite")
    return results


if __name__ == "__main__":
    main()
