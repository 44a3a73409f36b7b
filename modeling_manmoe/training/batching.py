"""Multi-source batching: per-language streams combined into one training step, as the reference draws them.

Each optimizer step consumes one labeled batch from every source language, one unlabeled batch from every
language (sources and the unlabeled target) for the adversarial term (`target_batches` from a language without
labels, for its distillation term), and `n_critic` more unlabeled batches per language for the discriminator's own
updates, each from its own stream. A stream walks its language's sentences in a fresh random order on every pass;
the batch at any position of any stream is a pure function of (seed, stream, language, position), so a resumed run
sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset

from ..errors import DataFormatError
from ..tokenization_manmoe import ManMoeTokenizer, collate_word_features


def encode_sentences(
    dataset, tokenizer: ManMoeTokenizer, language: str, label_column: str | None, encoder_inputs: bool = True
) -> list[dict]:
    """Encode a `datasets.Dataset` with a `tokens` column (and `label_column` unless None) into model features
    (`encoder_inputs=False`: without the live encoder's sub-tokens, see `ManMoeTokenizer.encode_words`).

    A missing column or an empty sentence raises `DataFormatError` naming the language (and the row). The
    occurrences of a word share one `char_ids` list (the items are read, never modified): on real CoNLL's training
    sets about 80 MiB less than a list per occurrence.
    """
    columns = set(dataset.column_names)
    if "tokens" not in columns:
        raise DataFormatError(f"the {language!r} dataset has no 'tokens' column (columns: {sorted(columns)})")
    if label_column is not None and label_column not in columns:
        raise DataFormatError(f"the {language!r} dataset has no {label_column!r} column (columns: {sorted(columns)})")
    encoded = []
    labels = dataset[label_column] if label_column is not None else None
    word_chars: dict[str, list[int]] = {}  # one character-id list per distinct word, shared by its occurrences
    for row, words in enumerate(dataset["tokens"]):
        if not words:
            raise DataFormatError(f"the {language!r} dataset has an empty sentence at row {row}")
        item = tokenizer.encode_words(words, language, encoder_inputs=encoder_inputs)
        item["char_ids"] = [
            word_chars.setdefault(word, chars) for word, chars in zip(words, item["char_ids"], strict=True)
        ]
        if labels is not None:
            item["labels"] = labels[row]
        encoded.append(item)
    return encoded


class EncodedDataset(Dataset):
    """A list of encoded sentences (one language), e.g. an evaluation set for the Trainer's own loop."""

    def __init__(self, items: list[dict], language: str):
        self.items, self.language = items, language

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


class MultiSourceStepDataset(Dataset):
    """Map-style dataset whose item `i` is the whole input of training step `i` of the current epoch.

    Item: one collated batch holding the labeled rows of every source language followed by the unlabeled rows of
    every language (`is_labeled` tells them apart, `lang_ids` the language of each row), plus `critic`: a list of
    `n_critic` collated unlabeled batches for the discriminator. A language that is unlabeled only (the target) gives
    `target_batches` consecutive batches of its unlabeled stream per step (more rows for its distillation term; the
    adversarial term averages per language, so its weight there is unchanged). One epoch is the geometric mean over
    source languages of their number of batches (the reference's definition).
    """

    def __init__(
        self,
        labeled: dict[str, list[dict]],
        unlabeled: dict[str, list[dict]],
        batch_size: int,
        n_critic: int,
        seed: int,
        collate: Callable[[list[dict]], dict] = collate_word_features,
        target_batches: int = 1,
    ):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if target_batches <= 0:
            raise ValueError(f"target_batches must be positive, got {target_batches}")
        for role, sets in (("labeled", labeled), ("unlabeled", unlabeled)):
            for language, items in sets.items():
                if not items:
                    raise ValueError(f"the {role} training data of language {language!r} is empty")
        if not labeled:
            raise ValueError("at least one labeled source language is needed")
        self.labeled, self.unlabeled = labeled, unlabeled
        self.batch_size, self.n_critic, self.seed, self.collate = batch_size, n_critic, seed, collate
        self.target_batches = target_batches
        counts = [math.ceil(len(items) / batch_size) for items in labeled.values()]
        self.steps_per_epoch = max(1, round(math.exp(sum(math.log(c) for c in counts) / len(counts))))
        self.epoch = 0
        self._orders: dict[tuple[str, str], tuple[int, list[int]]] = {}  # (stream, language) -> (pass, order)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def stream_batch(self, stream: str, language: str, items: Sequence[dict], position: int) -> list[dict]:
        """The batch at `position` of a stream: pass p = position // batches_per_pass in a seeded order."""
        per_pass = math.ceil(len(items) / self.batch_size)
        passes, index = divmod(position, per_pass)
        cached = self._orders.get((stream, language))
        if cached is None or cached[0] != passes:  # one shuffle per pass, not one per batch
            order = list(range(len(items)))
            random.Random(f"{self.seed}/{stream}/{language}/{passes}").shuffle(order)
            cached = self._orders[(stream, language)] = (passes, order)
        return [items[i] for i in cached[1][index * self.batch_size : (index + 1) * self.batch_size]]

    def __getitem__(self, index: int) -> dict:
        step = self.epoch * self.steps_per_epoch + index
        rows = []
        for language, items in self.labeled.items():
            rows += [dict(item, is_labeled=True) for item in self.stream_batch("labeled", language, items, step)]
        for language, items in self.unlabeled.items():
            # a labeled language's unlabeled rows serve D only; another language's keep its teachers' logits (if any)
            dropped = ("labels", "teacher_logits") if language in self.labeled else ("labels",)
            batches = 1 if language in self.labeled else self.target_batches
            for position in range(step * batches, (step + 1) * batches):
                for item in self.stream_batch("unlabeled", language, items, position):
                    rows.append(
                        {key: value for key, value in item.items() if key not in dropped} | {"is_labeled": False}
                    )
        batch = self.collate_rows(rows)
        batch["critic"] = [
            self.collate_rows(
                [
                    {key: value for key, value in item.items() if key != "teacher_logits"}
                    for language, items in self.unlabeled.items()
                    for item in self.stream_batch("critic", language, items, step * self.n_critic + c)
                ]
            )
            for c in range(self.n_critic)
        ]
        return batch

    def collate_rows(self, rows: list[dict]) -> dict:
        example = next((row["labels"] for row in rows if "labels" in row), None)
        if example is not None:  # unlabeled rows get ignored labels: per word for tagging, one for classification
            rows = [
                row
                if "labels" in row
                else dict(row, labels=[-100] * len(row["input_ids"]) if isinstance(example, list) else -100)
                for row in rows
            ]
        batch = self.collate(
            [{k: v for k, v in row.items() if k not in ("is_labeled", "teacher_logits")} for row in rows]
        )
        if any("is_labeled" in row for row in rows):
            batch["is_labeled"] = torch.tensor([row.get("is_labeled", False) for row in rows])
        if any("teacher_logits" in row for row in rows):
            batch["teacher_logits"], batch["teacher_mask"] = pad_teacher_logits(
                [row.get("teacher_logits") for row in rows], batch["attention_mask"].shape[1]
            )
        return batch


def pad_teacher_logits(values: list[torch.Tensor | None], words: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows' teacher logits, each (teachers, words_i, labels) or (teachers, labels) or None, -> (batch, teachers,
    words, labels) or (batch, teachers, labels) float32, zero-padded, and the (batch, teachers) mask of the teachers
    each row has."""
    example = next(value for value in values if value is not None)
    teachers = max(value.shape[0] for value in values if value is not None)
    tagging = example.dim() == 3
    shape = (len(values), teachers, words, example.shape[-1]) if tagging else (len(values), teachers, example.shape[-1])
    logits, mask = torch.zeros(shape), torch.zeros(len(values), teachers, dtype=torch.bool)
    for row, value in enumerate(values):
        if value is None:
            continue
        if tagging:
            logits[row, : value.shape[0], : value.shape[1]] = value
        else:
            logits[row, : value.shape[0]] = value
        mask[row, : value.shape[0]] = True
    return logits, mask


def first_item(items: list[dict]) -> dict:
    """DataLoader collate for `MultiSourceStepDataset` (batch size 1: each item already is a whole step)."""
    return items[0]
