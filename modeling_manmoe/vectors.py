"""Reader of aligned word-vector files in the MUSE / fastText text format (`.vec`, or gzip-compressed `.vec.gz`).

Format: a header line `N DIM`, then `word v1 ... vDIM` per line, UTF-8. Errors (`VectorFileError`) name the file,
the 1-based line and what was expected; duplicate words keep their first vector and are reported in the log.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from dataclasses import dataclass

import numpy as np

from .errors import VectorFileError

logger = logging.getLogger(__name__)
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class WordVectors:
    """Words and their vectors (float32, shape (len(words), dim)) read from `path`."""

    words: list[str]
    vectors: np.ndarray
    path: str

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)


def _read_lines(path: str) -> list[str]:
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise VectorFileError(f"{path}: corrupt or truncated gzip data ({error})") from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise VectorFileError(f"{path}:{line}: not valid UTF-8 ({error.reason})") from error
    return text.splitlines()


def read_word_vectors(path: str | os.PathLike, *, max_words: int | None = None, normalize: bool = False) -> WordVectors:
    """Read a `.vec` / `.vec.gz` file. `max_words` keeps the first rows only (files are frequency-ordered);
    `normalize` scales rows to unit length."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"word-vector file not found: {path}")
    lines = _read_lines(path)
    header = lines[0].split() if lines else []
    if len(header) != 2 or not all(part.isdigit() and int(part) > 0 for part in header):
        raise VectorFileError(f"{path}:1: expected a header 'N DIM' (two positive integers), got {lines[:1]}")
    count, dim = int(header[0]), int(header[1])
    rows = [line for line in lines[1:] if line.strip()]
    if max_words is not None:
        rows = rows[:max_words]
    elif len(rows) != count:
        raise VectorFileError(f"{path}: the header announces {count} words but the file has {len(rows)} rows")
    words, values, seen, duplicates = [], [], set(), []
    for number, line in enumerate(rows, start=2):
        parts = line.rstrip().rsplit(" ", dim)
        if len(parts) != dim + 1 or not parts[0]:
            got = len(line.split()) - 1
            raise VectorFileError(f"{path}:{number}: expected a word and {dim} values, got {got} values")
        word = parts[0]
        if word in seen:
            duplicates.append(word)
            continue
        seen.add(word)
        words.append(word)
        values.append(parts[1:])
    try:
        vectors = np.array(values, dtype=np.float32).reshape(len(words), dim)
    except ValueError as error:
        bad = next(i for i, row in enumerate(values) if not _floats(row))
        raise VectorFileError(f"{path}: word {words[bad]!r} has a value that is not a number ({error})") from error
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise VectorFileError(f"{path}: the vector of word {words[bad]!r} contains NaN or inf")
    if duplicates:
        logger.warning(
            "%s: %d duplicate word(s) kept with their first vector, e.g. %s", path, len(duplicates), duplicates[:5]
        )
    if normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms == 0, 1, norms)
    return WordVectors(words=words, vectors=vectors, path=path)


def _floats(values: list[str]) -> bool:
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return True


def check_same_dimension(vector_sets: dict[str, WordVectors]) -> None:
    """All languages' vectors must share one dimension to form one table."""
    items = list(vector_sets.items())
    for language, vectors in items[1:]:
        if vectors.dim != items[0][1].dim:
            raise VectorFileError(
                f"vector files of different dimensions: {items[0][1].path} ({items[0][0]}) has {items[0][1].dim}, "
                f"{vectors.path} ({language}) has {vectors.dim}"
            )
