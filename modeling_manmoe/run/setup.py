"""What the example scripts (`examples/run_ner.py`, `examples/run_classification.py`) share: the input and ablation
arguments, building a new model with its tokenizer (word vectors or a frozen encoder), the encoder feature cache,
the record of how a run was made (command, wall time, hardware, versions) and publishing it on the Hub."""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import datasets
import torch
import transformers

from ..configuration_manmoe import ManMoeConfig
from ..data.conll import check_ner_label_names, conll_entity_types, conll_file_path, ner_label_names
from ..data.download import is_url, resolve_vector_source
from ..data.feature_cache import EncoderFeatureCache, tensors_sha256
from ..data.inputs import MIN_TOKEN_COVERAGE, build_encoder_inputs, build_word_vector_inputs
from ..tokenization_manmoe import reference_lowercases_characters
from .gate_picture import gate_sentences
from .outputs import sha256_file, write_json
from .publish import hub_token_or_raise, push_hub_folder, stage_hub_folder
from .results import ROLES, TARGET_ROLES, language_roles
from .run_folder import current_run_id
from .secrets import known_secrets, redact, redact_data

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class ConllFileArguments:
    """Where a script's CoNLL NER files are: per-language files, else a folder (`conll_file_path`'s names)."""

    conll_dir: str | None = field(
        default=None,
        metadata={"help": "Folder with CoNLL files, named as the shared task names them (eng|deu|esp|ned . train|testa|"
                  "testb) or by language code (fi.train, fi.testa, fi.testb), or in conll2002/ conll2003/ beneath it."},
    )  # fmt: skip
    train_files: list[str] = field(default_factory=list, metadata={"help": "LANG=PATH CoNLL training files."})
    validation_files: list[str] = field(default_factory=list, metadata={"help": "LANG=PATH CoNLL dev files."})
    test_files: list[str] = field(default_factory=list, metadata={"help": "LANG=PATH CoNLL test files."})
    ner_labels: list[str] | None = field(
        default=None,
        metadata={"help": "The NER tag set, IOB2: O B-TYPE I-TYPE ... (default: CoNLL's nine, O and B-/I- of PER ORG "
                  "LOC MISC, when the files' entity types are among these four; else O and B-/I- of every type in the "
                  "files, sorted)."},
    )  # fmt: skip

    def conll_path(self, language: str, split: str, *, folder: bool = True) -> str | None:
        """The CoNLL file of `language`'s `split` (`train`, `validation`, `test`): the explicit file
        (`--{split}_files LANG=PATH`), else, when `folder`, the one `conll_file_path` finds in `--conll_dir`; None
        when there is neither. A training file missing from `--conll_dir` raises `FileNotFoundError` (listing the
        paths tried); a missing dev or test file is None."""
        explicit = parse_pairs(getattr(self, f"{split}_files"), f"{split}_files")
        if language in explicit:
            return explicit[language]
        if not folder or self.conll_dir is None:
            return None
        try:
            return str(conll_file_path(self.conll_dir, language, split))
        except FileNotFoundError:
            if split == "train":
                raise
            return None

    def resolve_label_names(self, paths: Iterable[str]) -> list[str]:
        """`--ner_labels`, checked as an IOB2 tag set; without it, `ner_label_names` of the entity types found in
        the CoNLL files `paths`."""
        if self.ner_labels:
            return check_ner_label_names(self.ner_labels, "--ner_labels")
        types = {kind for path in dict.fromkeys(paths) for kind in conll_entity_types(path)}
        return ner_label_names(types)


@dataclass
class ModelArguments:
    """The input representation and the model's ablation switches."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "A trained MAN-MoE folder or Hub name: evaluated (--do_eval/--do_predict) or, with "
            "--do_train, trained further from its weights (same languages; e.g. a distillation student that "
            "starts from its MAN-MoE teacher)."
        },
    )
    word_vectors: list[str] = field(
        default_factory=list,
        metadata={"help": "Aligned vectors (.vec/.vec.gz), one per language: LANG=PATH or LANG=URL (http(s), "
                  "downloaded once into the HF cache; optional #sha256=...)."},
    )  # fmt: skip
    max_vectors_per_language: int | None = field(default=None, metadata={"help": "Read only the first N vectors."})
    min_vector_coverage: float = field(
        default=MIN_TOKEN_COVERAGE,
        metadata={"help": "Refuse a language whose word vectors hold less than this share of its data's tokens (as "
                  "written or lower-cased); 0 accepts any."},
    )  # fmt: skip
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
    oov_words: str = field(
        default="unknown",
        metadata={"help": "Corpus words the vector file lacks: 'unknown' (all share the unknown vector) or 'random' "
                  "(the reference: each gets its own frozen random unit vector; token classification only)."},
    )  # fmt: skip
    word_vocabulary: str = field(
        default="file",
        metadata={"help": "Which vector-file words the model keeps: 'file' (all: it reads any text) or 'corpus' (the "
                  "reference: only those of the given train/dev/test data; far less memory with large files, but the "
                  "model knows no other word; token classification only)."},
    )  # fmt: skip
    use_char_cnn: bool = field(default=True, metadata={"help": "Add the CharCNN word features (paper: on)."})
    kernels: str = field(
        default="fast",
        metadata={"help": "'fast' (the hand-written CPU kernels) or 'torch' (plain nn.LSTM, nn.Dropout, nn.Conv1d): "
                  "the same model, computed differently (ManMoeConfig.kernels)."},
    )  # fmt: skip
    lowercase_characters: str = field(
        default="auto", metadata={"help": "'auto' (the reference: only for a German target), 'yes' or 'no'."}
    )
    teacher_models: list[str] = field(
        default_factory=list,
        metadata={"help": "Distillation teachers: LANG=PATH per source language, or all=PATH (one for all): saved token "
                  "or sequence classification folders (a run folder of this package or any AutoModelFor* model); "
                  "PATH_A,PATH_B,... gives an ensemble whose predictions are mixed (--teacher_mixture). Used with "
                  "--distillation_alpha and/or --target_distillation_weight."},
    )  # fmt: skip
    teacher_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where the teachers' logits are cached (default $HF_HOME/modeling_manmoe/teachers)."},
    )
    transfer_method: str = field(
        default="zero_shot",
        metadata={"help": "'zero_shot' (no target labels), 'joint' (the --target_train_size labeled target "
                  "sentences join the sources' labeled batches) or 'metaxl' (joint, plus MetaXL's representation "
                  "transformation of the sources' inputs, learned by the look-ahead meta-gradient)."},
    )  # fmt: skip
    target_train_size: int = field(
        default=0,
        metadata={"help": "Few-shot: label a seeded subset of N target training sentences (the rest stays unlabeled);"
                  " 0: zero-resource. Needs --transfer_method joint or metaxl."},
    )  # fmt: skip
    target_subset_seed: int | None = field(
        default=None, metadata={"help": "Seed of the labeled target subset (default: --seed)."}
    )
    rtn_bottleneck: int = field(
        default=192, metadata={"help": "MetaXL: bottleneck size of the representation transformation network."}
    )
    no_adversary: bool = field(default=False, metadata={"help": "Ablation: no language discriminator."})
    no_private_moe: bool = field(default=False, metadata={"help": "Ablation: one shared private expert, no gate."})
    no_predictor_moe: bool = field(default=False, metadata={"help": "Ablation: one shared predictor, no gate."})


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


def limit(dataset: datasets.Dataset, count: int | None, seed: int | None) -> datasets.Dataset:
    """The first `count` rows (or a seeded random subset when `seed` is given); all rows for None."""
    if count is None or count >= len(dataset):
        return dataset
    return (dataset.shuffle(seed=seed) if seed is not None else dataset).select(range(count))


def build_model(
    model_class: type,
    model_args: ModelArguments,
    source_languages: list[str],
    target_language: str,
    label_names: list[str],
    corpus_words: Iterable[str],
    provenance: dict,
    oov_corpus: dict[str, Iterable[str]] | None = None,
    vocabulary_corpus: dict[str, Iterable[str]] | None = None,
    coverage_corpus: dict[str, Iterable[str]] | None = None,
    **tokenizer_kwargs,
):
    """A new `model_class` (a MAN-MoE head) and its tokenizer for the sources + target, with word vectors or a
    frozen encoder as input; `corpus_words` give the CharCNN's characters. A vector file given as a URL is read from
    its downloaded copy (`resolve_vector_source`). Records the vector files' sha256 (and URL) in `provenance`.
    `oov_corpus` ({language: its training words}) is read with `--oov_words random`,
    `vocabulary_corpus` ({language: all its data's words}) with `--word_vocabulary corpus`; `coverage_corpus`
    ({language: its data's words}): the vectors' coverage of each language, recorded in `provenance` and checked
    against `--min_vector_coverage`. Returns (model, tokenizer)."""
    languages = list(source_languages) + [target_language]
    lowercase = {"auto": reference_lowercases_characters(target_language), "yes": True, "no": False}.get(
        model_args.lowercase_characters
    )
    if lowercase is None:
        raise ValueError(f"--lowercase_characters: expected auto, yes or no, got {model_args.lowercase_characters!r}")
    tokenizer_kwargs = dict(language=target_language, lowercase_characters=lowercase, **tokenizer_kwargs)
    common = dict(
        source_languages=list(source_languages),
        unlabeled_languages=[target_language],
        use_char_cnn=model_args.use_char_cnn,
        kernels=model_args.kernels,
        use_adversary=not model_args.no_adversary,
        use_private_moe=not model_args.no_private_moe,
        use_predictor_moe=not model_args.no_predictor_moe,
        rtn_bottleneck=model_args.rtn_bottleneck if model_args.transfer_method == "metaxl" else None,
        few_shot_sizes={target_language: model_args.target_train_size} if model_args.target_train_size > 0 else {},
        id2label=dict(enumerate(label_names)),
        label2id={label: i for i, label in enumerate(label_names)},
    )
    if model_args.encoder_name_or_path is not None:
        if model_args.word_vectors:
            raise ValueError("give either --word_vectors or --encoder_name_or_path, not both")
        tokenizer, encoder_config = build_encoder_inputs(
            model_args.encoder_name_or_path, languages, characters=corpus_words, **tokenizer_kwargs
        )
        config = ManMoeConfig(
            encoder_config=encoder_config,
            encoder_name_or_path=model_args.encoder_name_or_path,
            encoder_layers=list(model_args.encoder_layers),
            encoder_pooling=model_args.encoder_pooling,
            char_vocab_size=tokenizer.char_vocab_size,
            **common,
        )
        model = model_class(config)
        model.load_pretrained_encoder(model_args.encoder_name_or_path)
        return model, tokenizer
    vector_files = parse_pairs(model_args.word_vectors, "word_vectors")
    missing = [lang for lang in languages if lang not in vector_files]
    if missing:
        raise ValueError(f"--word_vectors: no vector file for language(s) {missing}; give LANG=PATH for each of "
                         f"{languages}, or use --encoder_name_or_path")  # fmt: skip
    if model_args.oov_words not in ("unknown", "random"):
        raise ValueError(f"--oov_words: expected unknown or random, got {model_args.oov_words!r}")
    if model_args.oov_words == "random" and oov_corpus is None:
        raise ValueError("--oov_words random needs the corpus' words per language, which only examples/run_ner.py "
                         "gives; use --oov_words unknown here")  # fmt: skip
    if model_args.word_vocabulary not in ("file", "corpus"):
        raise ValueError(f"--word_vocabulary: expected file or corpus, got {model_args.word_vocabulary!r}")
    if model_args.word_vocabulary == "corpus" and vocabulary_corpus is None:
        raise ValueError("--word_vocabulary corpus needs the data's words per language, which only examples/run_ner.py "
                         "gives; use --word_vocabulary file here")  # fmt: skip
    local_files = {lang: resolve_vector_source(vector_files[lang]) for lang in languages}  # a URL: its cached copy
    tokenizer, table = build_word_vector_inputs(
        local_files,
        languages,
        max_words=model_args.max_vectors_per_language,
        extra_characters=corpus_words if model_args.use_char_cnn else (),
        oov_corpus=oov_corpus if model_args.oov_words == "random" else None,
        vocabulary_corpus=vocabulary_corpus if model_args.word_vocabulary == "corpus" else None,
        coverage_corpus=coverage_corpus,
        min_token_coverage=model_args.min_vector_coverage,
        **tokenizer_kwargs,
    )
    for lang in languages:
        source = {"url": vector_files[lang]} if is_url(vector_files[lang]) else {}
        provenance[f"word_vectors/{lang}"] = source | {"path": os.path.abspath(local_files[lang]),
                                                       "sha256": sha256_file(local_files[lang])}  # fmt: skip
        if lang in getattr(tokenizer, "vector_coverage", {}):
            provenance[f"word_vectors/{lang}"]["coverage"] = tokenizer.vector_coverage[lang]
    config = ManMoeConfig(
        word_vocab_size=table.shape[0],
        word_embedding_dim=table.shape[1],
        char_vocab_size=tokenizer.char_vocab_size,
        **common,
    )
    model = model_class(config)
    model.set_word_vectors(table)
    return model, tokenizer


def load_trained_model(
    auto_class, model_args: ModelArguments, training_args, provenance: dict
) -> tuple[object, object]:
    """The model and tokenizer of `--model_name_or_path`, loaded by `auto_class` (an `AutoModelFor*` class).

    With `--do_train` the model is trained further from its weights (a student that starts from its teacher, say;
    `run_folder.check_run_arguments` has checked that it is a MAN-MoE model of the run's languages), and
    `provenance["initial_model"]` records its path and weights' sha256 (`tensors_sha256`, as a teacher's). Its
    architecture (input representation, sizes) is the model's own; the training options of the command line apply."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_args.model_name_or_path, trust_remote_code=True)
    model = auto_class.from_pretrained(model_args.model_name_or_path, trust_remote_code=True)
    if training_args.do_train:
        provenance["initial_model"] = {"name_or_path": model_args.model_name_or_path,
                                       "weights_sha256": tensors_sha256(model)}  # fmt: skip
    return model, tokenizer


def encoder_feature_cache(model, tokenizer, model_args: ModelArguments, show_progress: bool, provenance: dict):
    """The `EncoderFeatureCache` the trainer reads features from, for an input component whose features can be cached
    (`InputEmbeddings.cacheable`: the frozen encoder); None otherwise or with --no_feature_cache. Records the
    encoder's name and weight hash in `provenance`."""
    if not model.manmoe.inputs.cacheable:
        return None
    cache = None
    if not model_args.no_feature_cache:
        cache = EncoderFeatureCache.for_model(
            model, tokenizer, cache_dir=model_args.feature_cache_dir, show_progress=show_progress
        )
    encoder = model.manmoe.inputs.encoder_features.encoder
    provenance["encoder"] = {
        "name_or_path": model.config.encoder_name_or_path,
        "weights_sha256": cache.encoder_weights_sha256 if cache else tensors_sha256(encoder),
    }
    return cache


TRANSFER_METHODS = ("zero_shot", "joint", "metaxl")


def few_shot_target(dataset, model_args: ModelArguments, seed: int) -> tuple[object | None, dict]:
    """The labeled target sentences of `--target_train_size N` (a seeded subset of the target's training data, which
    keeps its labels) and the record `all_results.json` keeps of them (method, size, seed, row ids); (None, record)
    for zero-shot transfer. The method and the size must agree."""
    method, size = model_args.transfer_method, model_args.target_train_size
    if method not in TRANSFER_METHODS:
        raise ValueError(f"--transfer_method: expected one of {list(TRANSFER_METHODS)}, got {method!r}")
    if size < 0:
        raise ValueError(f"--target_train_size must be >= 0, got {size}")
    if (method == "zero_shot") != (size == 0):
        raise ValueError(f"--transfer_method {method} with --target_train_size {size}: zero_shot uses no target labels"
                         " (size 0); joint and metaxl need some (size > 0)")  # fmt: skip
    record = {"transfer_method": method, "size": size}
    if size == 0 or dataset is None:
        return None, record
    if size > len(dataset):
        raise ValueError(f"--target_train_size {size}: the target's training data has only {len(dataset)} sentences")
    subset_seed = seed if model_args.target_subset_seed is None else model_args.target_subset_seed
    ids = sorted(random.Random(subset_seed).sample(range(len(dataset)), size))
    return dataset.select(ids), record | {"subset_seed": subset_seed, "ids": ids}


def distillation_teachers(model, model_args: ModelArguments, training_args) -> tuple[dict | None, object | None]:
    """The teachers (`training.teachers.load_teachers`) and their cache for `--teacher_models`, or (None, None)
    without them. Distillation weights without teachers, or teachers without a distillation weight, are refused
    before any training."""
    from ..training.teachers import TeacherCache, load_teachers

    weights = [value for value in (training_args.distillation_alpha, training_args.target_distillation_weight)
               if value is not None]  # fmt: skip
    distilling = any(value > 0 for value in weights)
    if not model_args.teacher_models:
        if distilling:
            raise ValueError("--distillation_alpha / --target_distillation_weight need --teacher_models LANG=PATH ... "
                             "(or all=PATH)")  # fmt: skip
        return None, None
    if not distilling:
        raise ValueError("--teacher_models given without a distillation weight: add --distillation_alpha A (source "
                         "rows) and/or --target_distillation_weight B (target rows), > 0")  # fmt: skip
    config = model.config
    label_names = [config.id2label[i] for i in range(len(config.id2label))]
    from ..modeling_manmoe import ManMoeForTokenClassification

    teachers = load_teachers(parse_pairs(model_args.teacher_models, "teacher_models"), config.source_languages,
                             label_names, isinstance(model, ManMoeForTokenClassification),
                             feature_cache_dir=model_args.feature_cache_dir,
                             show_progress=not training_args.disable_tqdm)  # fmt: skip
    return teachers, TeacherCache(model_args.teacher_cache_dir)


def distillation_record(trainer, test: dict, label_column: str) -> dict:
    """The `distillation` entry of `all_results.json`: the objective's distillation settings (from the model's
    config, and the target batches per step from the training arguments), each source language's teacher (path,
    weights sha256) and its test score on its own language and on the target (zero-shot), where those test sets
    are given."""
    from ..training.teachers import teacher_scores

    config = trainer.model.config
    record = {name: getattr(config, name) for name in ("distillation_alpha", "distillation_temperature",
                                                       "target_distillation_weight", "teacher_mixture")}  # fmt: skip
    record["target_distillation_batches"] = trainer.args.target_distillation_batches
    record["teachers"] = {}
    for lang, teacher in trainer.teachers.items():
        entry = teacher.describe()
        entry["test"] = {
            test_lang: round(
                teacher_scores(teacher, trainer.teacher_cache, test[test_lang], test_lang, label_column), 4
            )
            for test_lang in dict.fromkeys([lang, *config.unlabeled_languages])
            if test_lang in test
        }
        record["teachers"][lang] = entry
    return record


def redact_secrets(command: list[str]) -> list[str]:
    """The command line with the value of every `--*_token` option (e.g. `--hub_token`, `--hub-token=...`) replaced by
    `<HUB_TOKEN>` and the like, as `TrainingArguments.to_dict` does: the command is written into `all_results.json`
    and the card. A first pass by name only: `run_record` then scrubs every known secret by value
    (`modeling_manmoe.run.secrets`), which also catches the abbreviations argparse accepts (`--hub_tok`)."""
    redacted, hide_next = [], None
    for part in command:
        option, equals, _ = part.partition("=")
        option_name = option.replace("-", "_")
        if hide_next:
            redacted.append(hide_next)
            hide_next = None
        elif option.startswith("--") and option_name.endswith("_token"):
            placeholder = f"<{option_name[2:].upper()}>"
            redacted.append(f"{option}={placeholder}" if equals else option)
            hide_next = None if equals else placeholder
        else:
            redacted.append(part)
    return redacted


def run_record(
    script: str, argv: list[str] | None, started: float, world_size: int, secrets: Sequence[str] = ()
) -> dict:
    """How the run was made: the command line (with `redact_secrets`, then every value of `secrets` replaced by
    `<SECRET>`), wall time since `started`, hardware and library versions."""
    from .. import __version__

    command = ["python"] + sys.argv if argv is None else ["python", script] + list(argv)
    return {
        "command": redact(" ".join(redact_secrets(command)), secrets),
        "wall_time_s": round(time.time() - started, 1),
        "hardware": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "processes": world_size,
        },
        "versions": {
            "modeling_manmoe": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
    }


def tokenizer_settings(tokenizer) -> dict:
    """The `tokenizer` entry of `all_results.json`: what decides how a word is read (its vocabulary, one list per
    language, is saved with the model): the default language, word and character lower-casing, the languages split
    by MeCab, and the vocabulary sizes."""
    return {
        "language": tokenizer.language,
        "do_lower_case": tokenizer.do_lower_case,
        "lowercase_characters": tokenizer.lowercase_characters,
        "mecab_languages": list(tokenizer.mecab_languages),
        "max_word_characters": tokenizer.max_word_characters,
        "words": {lang: len(words) for lang, words in tokenizer.vocabularies.items()},
        "characters": len(tokenizer.characters),
    }


def training_record_kept(output_dir: str, config) -> dict:
    """An evaluation-only run in the folder of the model it evaluates keeps the training record of that model: the
    `train` entry of the folder's `all_results.json` when those results describe the same model (the same
    `manmoe_run_id`), with `train_recorded_by_run` naming the run that wrote it. Otherwise nothing."""
    model_id = getattr(config, "manmoe_run_id", None)
    path = os.path.join(output_dir, "all_results.json")
    if model_id is None or not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as stream:
            previous = json.load(stream)
    except (OSError, ValueError):
        return {}
    if not isinstance(previous, dict) or (previous.get("config") or {}).get("manmoe_run_id") != model_id:
        return {}
    if "train" not in previous:
        return {}
    return {"train": previous["train"], "train_recorded_by_run": previous.get("run_id")}


def train_summary(trainer, train_output) -> dict:
    """The `train` entry of `all_results.json`: steps, epochs, time, loss and the selected checkpoint. `train_loss` is
    the mean training loss of the steps `train_loss_steps` ([first, last]): the whole run, also after a resume,
    unless the checkpoint resumed from recorded no loss (then the resumed steps only). A resumed run also records
    the checkpoint and step it resumed from: its `train_runtime_s` counts only the time since then."""
    args = trainer.args
    record = getattr(trainer, "train_loss_record", None) or {
        "train_loss": train_output.training_loss, "train_loss_steps": [1, trainer.state.global_step]
    }  # fmt: skip
    loss = record["train_loss"]
    summary = {
        "global_step": trainer.state.global_step,
        "steps_per_epoch": math.ceil(len(trainer.train_dataset) / args.world_size),
        "epochs": round(trainer.state.epoch, 3),
        "train_runtime_s": round(train_output.metrics["train_runtime"], 1),
        "train_loss": loss if loss is None or not math.isfinite(loss) else round(loss, 4),
        "train_loss_steps": record["train_loss_steps"],
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_selection_score": trainer.state.best_metric,
        "model_selection": args.model_selection,
    }
    if getattr(trainer, "resumed_from_checkpoint", None):
        summary.update(resumed_from_checkpoint=str(trainer.resumed_from_checkpoint),
                       resumed_at_step=trainer.resumed_at_step)  # fmt: skip
    return summary


def take_over_hub_push(training_args) -> bool:
    """`--push_to_hub`: True when asked. A token must exist before training starts (checked now, not after a long
    run), and the Trainer's own pushing is switched off: it would push every checkpoint with its generic card,
    while the scripts push once at the end, with `publish_run`."""
    push = bool(training_args.push_to_hub)
    if push:
        hub_token_or_raise(training_args.hub_token)
        training_args.push_to_hub = False
    return push


def publish_run(
    trainer,
    tokenizer,
    datasets_by_language: dict,
    tag_column: str | None = None,
    token: str | None = None,
    secrets: Sequence[str] = (),
):
    """Stage `OUTPUT_DIR/hub_upload/` (model, tokenizer, code, `all_results.json`, the gate picture on the first
    500 sentences of each of `datasets_by_language`, the card) and push it to `--hub_model_id` (default: the
    output folder's name in the token owner's namespace). Returns the `CommitInfo`.

    `token` is the Hub token to push with (default: `--hub_token`, else the stored one); it, `secrets` and every other
    known secret (`known_secrets`) are kept out of the staged folder, which is refused if one is still found there."""
    args = trainer.args
    token = hub_token_or_raise(token or args.hub_token)
    secrets = known_secrets(args, extra=[token, *secrets])
    repo_id = args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir))
    if "/" not in repo_id:
        from huggingface_hub import HfApi

        repo_id = f"{HfApi(token=token).whoami()['name']}/{repo_id}"
    sentences, tags = gate_sentences(datasets_by_language, 500, tag_column)
    folder = stage_hub_folder(
        args.output_dir,
        trainer.model,
        tokenizer,
        model_id=repo_id,
        sentences=sentences,
        tags=tags,
        picture_title=f"{repo_id}: gate weights (first 500 sentences per language)",
        secrets=secrets,
    )
    return push_hub_folder(folder, repo_id, token=token, private=args.hub_private_repo, revision=args.hub_revision,
                           secrets=secrets)  # fmt: skip


def split_scores(metrics: dict, prefix: str, languages: Iterable[str], names: Sequence[str]) -> dict[str, dict]:
    """Per-language scores from the Trainer's flat `{prefix}_{lang}_{name}` keys, rounded to 4 decimals, e.g.
    `{'nl': {'precision': 64.5, 'recall': 55.32, 'f1': 59.55}}`; languages without them are left out."""
    return {
        lang: {name: round(metrics[f"{prefix}_{lang}_{name}"], 4) for name in names}
        for lang in languages
        if all(f"{prefix}_{lang}_{name}" in metrics for name in names)
    }


def train_evaluate_predict(
    trainer,
    tokenizer,
    results: dict,
    *,
    dev: dict,
    test: dict,
    predict_language: Callable[..., dict],
    prediction_suffix: str,
    score_names: Sequence[str],
    provenance: dict,
    script: str,
    argv: list[str] | None,
    started: float,
    push_to_hub: bool,
    tag_column: str | None = None,
) -> dict:
    """The second half of `examples/run_ner.py` and `examples/run_classification.py`.

    Trains when `--do_train` (then saves the model and `trainer_state.json`), scores the `dev` sets when `--do_eval`,
    and when `--do_predict` calls `predict_language(trainer, tokenizer, dataset, lang, path)` for each `test` set,
    writing `OUTPUT_DIR/predictions_test_{lang}{prediction_suffix}`. Then writes `all_results.json`: `results` (the
    script's own entries) with the `score_names` per split and language, the configuration, the tokenizer's settings
    (`tokenizer_settings`), the training arguments, `provenance` (the data and vector files) and the run's record
    (`run_record` of `script`, `argv` and `started`, taken at the end so that its wall time covers the whole run).
    An evaluation-only run in its model's folder keeps that model's `train` entry (`training_record_kept`).
    Logs the scores, raises if the training loss is not finite, and publishes the run (`publish_run`) when
    `push_to_hub`. Returns the results.

    The run's id (`run_folder.current_run_id`) is recorded as `run_id`; a trained model carries it in its config
    (`manmoe_run_id`, in `config.json` and in the results' `config`), so that a folder whose model and results come
    from different runs is refused (`results.check_run_ids`). Training checkpoints record the run fingerprint
    (`run_checkpoint_fingerprint`), and a resume under another one is refused. Each language's role (`language_roles`:
    labeled source, zero-shot target or other) comes from the model's config, not from the command line.

    No secret reaches the output folder: the Hub token is taken off the training arguments before anything is saved
    (the Trainer pickles them into `training_args.bin` with the model and every checkpoint) and kept for the final
    push only, and every known secret (`known_secrets`) is replaced by `<SECRET>` throughout the results.
    """
    args = trainer.args
    secrets = known_secrets(args)
    hub_token, args.hub_token = args.hub_token, None  # kept out of training_args.bin; used by the final push only
    config = trainer.model.config
    run_id = current_run_id()
    languages = list(dict.fromkeys([*results["source_languages"], results["target_language"], *config.all_languages]))
    if args.do_train:
        config.manmoe_run_id = run_id  # in config.json of the model and of every checkpoint
        trainer.set_run_fingerprint(run_checkpoint_fingerprint(config, tokenizer, provenance))
        train_output = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
        trainer.save_model()
        trainer.save_state()  # trainer_state.json: the log history (losses, D accuracy, gate accuracy per language)
        results["train"] = train_summary(trainer, train_output)
    if args.do_eval and dev:
        results["dev"] = split_scores(trainer.evaluate(), "eval", languages, score_names)
    if args.do_predict:
        metrics = {}
        for lang, dataset in test.items():
            path = os.path.join(args.output_dir, f"predictions_test_{lang}{prediction_suffix}")
            metrics.update(predict_language(trainer, tokenizer, dataset, lang, path))
        results["test"] = split_scores(metrics, "test", languages, score_names)
    if not args.do_train:
        results.update(training_record_kept(args.output_dir, config))
    args.push_to_hub = push_to_hub  # recorded as given
    results.update(run_id=run_id, config=config.to_dict(), tokenizer=tokenizer_settings(tokenizer),
                   training_arguments=args.to_dict(), data_and_vector_files=provenance,
                   **run_record(script, argv, started, args.world_size, secrets))  # fmt: skip
    results["language_roles"] = language_roles(results)
    results["char_cnn_truncated_words"] = dict(getattr(tokenizer, "truncated_words", {}))  # words cut to their start
    redacted = redact_data(results, secrets)
    results.clear()
    results.update(redacted)
    if trainer.is_world_process_zero():
        write_json(os.path.join(args.output_dir, "all_results.json"), results)
        target, roles = results["target_language"], results["language_roles"]
        if roles.get(target) not in TARGET_ROLES:
            logger.warning("--target_language %s is not a zero-shot language of the model (%s; its config's "
                           "unlabeled_languages are %s): its scores are not zero-shot", target,
                           roles.get(target), list(config.unlabeled_languages))  # fmt: skip
        for split in ("dev", "test"):
            for lang, scores in results.get(split, {}).items():
                shown = " ".join(f"{name} {value:.2f}" for name, value in scores.items())
                logger.info("%s %s (%s): %s", split, lang, roles.get(lang, ROLES["other"]), shown)
    train_loss = results.get("train", {}).get("train_loss")
    if train_loss is not None and not math.isfinite(train_loss):
        raise RuntimeError("training diverged: the training loss is not finite")
    if push_to_hub and trainer.is_world_process_zero():
        publish_run(trainer, tokenizer, test or dev, tag_column, token=hub_token, secrets=secrets)
    return results


def run_checkpoint_fingerprint(config, tokenizer, provenance: dict) -> dict:
    """The run fingerprint a run's checkpoints record (`training.checkpoints.run_fingerprint`): the config's part,
    the tokenizer's settings (`tokenizer_settings`) and the sha256 of each vector file and of the encoder's weights
    (from `provenance`)."""
    from ..training.checkpoints import run_fingerprint

    inputs = {}
    for key, entry in provenance.items():
        if key.startswith("word_vectors/") and isinstance(entry, dict):
            inputs[key] = entry.get("sha256")
        elif key == "encoder" and isinstance(entry, dict):
            inputs[key] = entry.get("weights_sha256")
    return run_fingerprint(config, tokenizer_settings(tokenizer), inputs)
