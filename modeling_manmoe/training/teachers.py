"""Teachers for distillation: saved classification models whose soft predictions a MAN-MoE student learns from.

A teacher is any saved token- or sequence-classification folder: a run folder of this package or any `AutoModelFor*`
model (e.g. a monolingual BERT fine-tuned on one source language). Teachers never train: their logits on a dataset
are computed once and cached on disk (`TeacherCache`), keyed by the teacher's weights and the dataset's words, like
the encoder feature cache. A sub-word teacher is read at each word's first sub-token. Several models for one language
(`--teacher_models all=RUN_A,RUN_B`, e.g. MAN-MoE runs of different seeds) form a `TeacherEnsemble`: each of its rows
learns the mixture of their predictions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..data.feature_cache import EncoderFeatureCache, default_cache_dir, tensors_sha256
from ..errors import LabelError, LanguageError
from ..modeling_manmoe import ManMoePreTrainedModel
from ..tokenization_manmoe import ManMoeTokenizer, collate_word_features

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
ALL_LANGUAGES = "all"  # `--teacher_models all=PATH`: one teacher for every labeled language
ENSEMBLE_SEPARATOR = ","  # `--teacher_models LANG=PATH_A,PATH_B`: an ensemble of teachers for LANG


class Teacher:
    """A frozen classification model and its tokenizer, giving logits per word (tagging) or per text.

    `path`: a saved folder (or Hub name); `label_names`: the student's labels, in its order: the teacher's must be the
    same set (its columns are reordered to the student's); `token_classification`: tagging (a row per word) or
    sentence classification (a row per text); `show_progress`: a progress bar while computing logits.
    """

    def __init__(self, path: str, label_names: Sequence[str], token_classification: bool, batch_size: int = 64,
                 show_progress: bool = True):  # fmt: skip
        from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

        if not os.path.exists(path) and (os.path.isabs(path) or path.startswith(".")):
            raise FileNotFoundError(f"teacher {path!r}: no such folder")
        auto = AutoModelForTokenClassification if token_classification else AutoModelForSequenceClassification
        self.path = path
        self.model = auto.from_pretrained(path, use_safetensors=True).eval()
        self.model.requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.token_classification = token_classification
        self.batch_size = batch_size
        self.show_progress = show_progress
        id2label = {int(k): v for k, v in self.model.config.id2label.items()}
        teacher_labels = [id2label[i] for i in range(len(id2label))]
        if sorted(teacher_labels) != sorted(label_names):
            raise LabelError(
                f"teacher {path!r} predicts the labels {teacher_labels}, the student {list(label_names)}: a teacher "
                "needs the student's label set (train both on one tag set: --ner_labels, or NER_LABELS for "
                "examples/distill_conll.sh)"
            )
        self.columns = torch.tensor([teacher_labels.index(label) for label in label_names])  # student order
        self.weights_sha256 = tensors_sha256(self.model)
        self.is_manmoe = isinstance(self.model, ManMoePreTrainedModel)

    def describe(self) -> dict:
        """The teacher as `all_results.json` records it."""
        return {"path": os.path.abspath(self.path) if os.path.exists(self.path) else self.path,
                "weights_sha256": self.weights_sha256, "model_type": self.model.config.model_type}  # fmt: skip

    @torch.no_grad()
    def logits(self, sentences: list[list[str]], language: str, description: str = "") -> list[torch.Tensor]:
        """The teacher's logits (words, labels) per sentence for tagging, (labels,) per text for classification, in
        the student's label order; float32 on the CPU."""
        # a frozen-encoder teacher of this package: the whole dataset's encoder features at once, from the cache
        cache = getattr(self, "feature_cache", None)
        features = cache.features(sentences, description) if cache is not None else None
        progress = tqdm(total=len(sentences), unit="sent", desc=f"teacher {description}".strip(), leave=False,
                        disable=not self.show_progress)  # fmt: skip
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        results: list[torch.Tensor | None] = [None] * len(sentences)
        try:
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                words = [sentences[i] for i in batch]
                if self.is_manmoe:
                    values = self._manmoe_logits(words, language, features and [features[i] for i in batch])
                else:
                    values = self._subword_logits(words, language)
                for index, value in zip(batch, values, strict=True):
                    results[index] = value.float().index_select(-1, self.columns)
                progress.update(len(batch))
        finally:
            progress.close()
        return results

    def _manmoe_language(self, language: str) -> str:
        """A language the teacher's tokenizer knows: `language`, else its default (a teacher applied zero-shot)."""
        tokenizer: ManMoeTokenizer = self.tokenizer
        return language if language in tokenizer.languages else tokenizer.language

    def _manmoe_logits(self, sentences: list[list[str]], language: str,
                       features: list[torch.Tensor] | None = None) -> list[torch.Tensor]:  # fmt: skip
        """A batch through a teacher of this package; `features`: its sentences' cached encoder features, if any."""
        language = self._manmoe_language(language)
        items = [self.tokenizer.encode_words(words, language, encoder_inputs=features is None) for words in sentences]
        if features is not None:
            for item, feature in zip(items, features, strict=True):
                item["input_features"] = feature
        batch = collate_word_features(items)
        batch.pop("lang_ids")
        logits = self.model(**batch).logits
        if self.token_classification:
            return [logits[row, : len(words)] for row, words in enumerate(sentences)]
        return list(logits)

    def _subword_logits(self, sentences: list[list[str]], language: str) -> list[torch.Tensor]:
        encoded = self.tokenizer(sentences, is_split_into_words=True, truncation=True, padding=True,
                                 return_tensors="pt")  # fmt: skip
        logits = self.model(**encoded).logits
        if not self.token_classification:
            return list(logits)
        rows = []
        for row, words in enumerate(sentences):
            first = torch.zeros(len(words), logits.shape[-1])  # a word truncated away: uniform (all-zero logits)
            seen = set()
            for position, word in enumerate(encoded.word_ids(row)):
                if word is not None and word not in seen:
                    seen.add(word)
                    first[word] = logits[row, position]
            if len(seen) < len(words):
                logger.warning("teacher %s: %d words of a sentence had no sub-token (truncated); their soft labels "
                               "are uniform", self.path, len(words) - len(seen))  # fmt: skip
            rows.append(first)
        return rows


class TeacherEnsemble:
    """Several frozen teachers of one language (e.g. MAN-MoE runs of different seeds). A row distilled from it gets
    every member's logits, and learns their mixture at the distillation temperature (`teacher_mixture`; uniform: the
    mean of the members' softened predictions), exactly as a target row learns the mixture of several languages'
    teachers. Each member's logits are cached on their own."""

    def __init__(self, members: Sequence[Teacher]):
        if len(members) < 2:
            raise ValueError("a TeacherEnsemble needs at least two teachers")
        self.members = list(members)
        self.path = ENSEMBLE_SEPARATOR.join(member.path for member in self.members)
        self.token_classification = self.members[0].token_classification
        self.is_manmoe = all(member.is_manmoe for member in self.members)
        self.weights_sha256 = hashlib.sha256(
            " ".join(member.weights_sha256 for member in self.members).encode()
        ).hexdigest()

    def describe(self) -> dict:
        """The ensemble as `all_results.json` records it: its members' paths, weights sha256 and model types."""
        members = [member.describe() for member in self.members]
        return {"path": ENSEMBLE_SEPARATOR.join(member["path"] for member in members),
                "weights_sha256": self.weights_sha256, "model_type": "ensemble", "members": members}  # fmt: skip


def ensemble_paths(language: str, spec: str) -> tuple[str, ...]:
    """The model paths of `--teacher_models LANGUAGE=SPEC`: one path, or an ensemble's `PATH_A,PATH_B,...`, each
    named once and none empty."""
    paths = tuple(spec.split(ENSEMBLE_SEPARATOR))
    if not all(paths) or len(set(paths)) < len(paths):
        raise ValueError(f"--teacher_models {language}={spec}: expected distinct paths separated by "
                         f"{ENSEMBLE_SEPARATOR!r}")  # fmt: skip
    return paths


def members(teacher: Teacher | TeacherEnsemble) -> list[Teacher]:
    """The teachers a row of this language learns from: an ensemble's members, or the one teacher."""
    return list(teacher.members) if isinstance(teacher, TeacherEnsemble) else [teacher]


class TeacherCache:
    """Teachers' logits per dataset on disk: `cache_dir/<key hash>.safetensors`, keyed by the teacher's weights, the
    language and the dataset's words, so a changed teacher or dataset is computed anew and an unchanged one never."""

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        base = cache_dir or os.path.join(os.path.dirname(default_cache_dir()), "teachers")
        self.cache_dir = str(base)
        self.last_built: str | None = None

    def key(self, teacher: Teacher, sentences: list[list[str]], language: str) -> dict:
        data = hashlib.sha256(json.dumps(sentences, ensure_ascii=False).encode("utf-8")).hexdigest()
        return {"format": FORMAT_VERSION, "teacher_weights_sha256": teacher.weights_sha256, "language": language,
                "columns": teacher.columns.tolist(), "per_word": teacher.token_classification, "data_sha256": data,
                "sentences": len(sentences)}  # fmt: skip

    def member_logits(self, teacher: Teacher | TeacherEnsemble, sentences: list[list[str]], language: str,
                      description: str = "") -> list[list[torch.Tensor]]:  # fmt: skip
        """One list of per-sentence logits (`logits`) for each of `teacher`'s members (`members`)."""
        return [self.logits(member, sentences, language, description) for member in members(teacher)]

    def logits(self, teacher: Teacher, sentences: list[list[str]], language: str, description: str = ""):
        """`Teacher.logits`, read from the cache or computed and stored."""
        sentences = [list(words) for words in sentences]
        key = self.key(teacher, sentences, language)
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:40]
        path = os.path.join(self.cache_dir, f"{name}.safetensors")
        if os.path.exists(path):
            stored = self._read(path, key)
            if stored is not None:
                return stored
        values = teacher.logits(sentences, language, description)
        lengths = torch.tensor([value.shape[0] if value.dim() == 2 else 1 for value in values])
        flat = torch.cat([value.reshape(-1, value.shape[-1]) for value in values]) if values else torch.zeros(0, 0)
        os.makedirs(self.cache_dir, exist_ok=True)
        temporary = f"{path}.tmp-{os.getpid()}"
        save_file({"logits": flat.contiguous(), "lengths": lengths}, temporary, metadata={"key": json.dumps(key)})
        os.replace(temporary, path)  # atomic: an interrupted build never looks complete
        self.last_built = path
        return values

    @staticmethod
    def _read(path: str, key: dict) -> list[torch.Tensor] | None:
        try:
            with safe_open(path, framework="pt") as handle:
                if json.loads((handle.metadata() or {}).get("key", "null")) != key:
                    return None
                flat, lengths = handle.get_tensor("logits"), handle.get_tensor("lengths")
        except Exception as error:  # a damaged file is recomputed, never trusted
            logger.warning("teacher cache %s is unreadable (%s); recomputing it", path, error)
            return None
        values = list(flat.split(lengths.tolist()))
        if not key["per_word"]:  # one row per text
            values = [value[0] for value in values]
        return values if key.get("sentences") == len(values) else None


def load_teachers(
    teacher_paths: dict[str, str],
    source_languages: Sequence[str],
    label_names: Sequence[str],
    token_classification: bool,
    feature_cache_dir: str | None = None,
    show_progress: bool = True,
) -> dict[str, Teacher | TeacherEnsemble]:
    """{source language: its `Teacher`} from `--teacher_models LANG=PATH ...` (or `all=PATH`: one teacher for every
    source language). `PATH_A,PATH_B,...` gives a language a `TeacherEnsemble` of those models. Every source language
    needs a teacher; a language that is not a source is refused. A teacher of this package with a frozen-encoder input
    reads its features from the encoder feature cache. `show_progress`: progress bars while teachers compute logits
    or encoder features."""
    if ALL_LANGUAGES in teacher_paths:
        if len(teacher_paths) > 1:
            raise LanguageError(f"--teacher_models: 'all=PATH' gives one teacher for every language; got also "
                                f"{sorted(set(teacher_paths) - {ALL_LANGUAGES})}")  # fmt: skip
        teacher_paths = dict.fromkeys(source_languages, teacher_paths[ALL_LANGUAGES])
    unknown = sorted(set(teacher_paths) - set(source_languages))
    if unknown:
        raise LanguageError(f"--teacher_models: {unknown} are not labeled source languages {list(source_languages)}")
    missing = [lang for lang in source_languages if lang not in teacher_paths]
    if missing:
        raise LanguageError(f"--teacher_models: no teacher for the source language(s) {missing}; give LANG=PATH for "
                            f"each of {list(source_languages)}, or all=PATH")  # fmt: skip
    loaded: dict[str, Teacher] = {}

    def load(path: str) -> Teacher:
        if path not in loaded:
            teacher = loaded[path] = Teacher(path, label_names, token_classification, show_progress=show_progress)
            if teacher.is_manmoe and teacher.model.manmoe.inputs.cacheable:
                teacher.feature_cache = EncoderFeatureCache.for_model(
                    teacher.model, teacher.tokenizer, cache_dir=feature_cache_dir, show_progress=show_progress
                )
        return loaded[path]

    teachers: dict[str, Teacher | TeacherEnsemble] = {}
    ensembles: dict[tuple[str, ...], TeacherEnsemble] = {}
    for lang in source_languages:
        paths = ensemble_paths(lang, teacher_paths[lang])
        if len(paths) == 1:
            teachers[lang] = load(paths[0])
        else:
            if paths not in ensembles:
                ensembles[paths] = TeacherEnsemble([load(path) for path in paths])
            teachers[lang] = ensembles[paths]
    return teachers


def teacher_scores(teacher: Teacher | TeacherEnsemble, cache: TeacherCache, dataset, language: str,
                   label_column: str) -> float:  # fmt: skip
    """The teacher's score on a labeled dataset: entity F1 (tagging) or accuracy (classification), in percent. An
    ensemble predicts the arg max of its members' mean probabilities."""
    from .metrics import entity_scores

    per_member = cache.member_logits(teacher, dataset["tokens"], language, f"{language} test")
    probabilities = [sum(values[row].softmax(-1) for values in per_member) for row in range(len(dataset))]
    predicted = [value.argmax(-1) for value in probabilities]
    gold = dataset[label_column]
    if not teacher.token_classification:
        return 100.0 * sum(int(p) == g for p, g in zip(predicted, gold, strict=True)) / max(len(gold), 1)
    names = dataset.features[label_column].feature.names
    return entity_scores([[names[t] for t in tags] for tags in gold],
                         [[names[int(t)] for t in tags] for tags in predicted])["f1"]  # fmt: skip


def encode_with_teachers(items: list[dict], logits: list[list[torch.Tensor]]) -> None:
    """Attach `teacher_logits` (teachers, words, labels) or (teachers, labels) to each encoded item, from one list
    of per-sentence logits per teacher."""
    for row, item in enumerate(items):
        item["teacher_logits"] = torch.stack([values[row] for values in logits])


__all__ = [
    "Teacher",
    "TeacherCache",
    "TeacherEnsemble",
    "encode_with_teachers",
    "ensemble_paths",
    "load_teachers",
    "members",
    "teacher_scores",
]
