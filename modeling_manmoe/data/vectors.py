"""Reader of aligned word-vector files in the MUSE / fastText text format (`.vec`, or gzip-compressed `.vec.gz`).

Format: a header line `N DIM`, then `word v1 ... vDIM` per line, UTF-8. The values of a row are its last DIM
space-separated fields and the word is everything before them, so words may hold spaces, non-breaking spaces or
any other character. Gzip is detected by the file's magic bytes, not by its suffix.
Malformed input raises `VectorFileError` naming the file, the 1-based line where there is one, and what was
expected. Duplicate words keep their first occurrence and are reported by a `logging` warning.

Memory is bounded by the input: a line may hold at most `files.MAX_LINE_BYTES` bytes (read with that bound, so a
compressed line without end is refused as soon as it passes it), and a row beyond the header's word count is
refused as soon as it is read.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Container, Iterator
from contextlib import closing
from dataclasses import dataclass

import numpy as np

from ..errors import VectorFileError
from . import files

logger = logging.getLogger(__name__)
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
MAX_HEADER_NUMBER = 2**31 - 1  # the largest word count or dimension a header may announce


@dataclass(frozen=True)
class WordVectors:
    """Words and their vectors read from `path`: `vectors` is float32 of shape (len(words), dim); `characters`:
    every character of the words of all rows read, kept or not (`read_word_vectors(keep=...)`), in first-seen
    order, so that a character vocabulary built from it does not depend on which words were kept."""

    words: list[str]
    vectors: np.ndarray
    path: str
    characters: str

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.words):
            raise ValueError(f"{self.path}: vectors of shape {self.vectors.shape} != {len(self.words)} words")

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)


def _raw_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, raw bytes) of a plain or gzip file, each line read with the bound
    `files.MAX_LINE_BYTES`; gzip corruption or a longer line -> `VectorFileError`."""
    limit = files.MAX_LINE_BYTES
    with open(path, "rb") as probe:
        compressed = probe.read(2) == files.GZIP_MAGIC
    try:
        with gzip.open(path, "rb") if compressed else open(path, "rb") as handle:
            number = 0
            while line := handle.readline(limit + 1):
                number += 1
                if len(line) - line.endswith(b"\n") > limit:
                    raise VectorFileError(
                        f"{path}:{number}: a line longer than the limit of {limit} bytes per line "
                        "(modeling_manmoe.data.files.MAX_LINE_BYTES); expected a header 'N DIM' and rows "
                        "'word v1 ... vDIM' (a row of 300 values takes about 3 KB)"
                    )
                yield number, line
    except _GZIP_ERRORS as error:
        raise VectorFileError(f"{path}: corrupt or truncated gzip data ({type(error).__name__})") from error


def _decode(path: str, number: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise VectorFileError(
            f"{path}:{number}: not valid UTF-8 (byte {raw[error.start : error.start + 1]!r} at column "
            f"{error.start + 1}: {error.reason}); the file must be UTF-8 text"
        ) from error


def _parse_header(path: str, line: str | None) -> tuple[int, int]:
    """(N, DIM) of the header; numbers above `MAX_HEADER_NUMBER` are refused before `int()` sees them (Python
    refuses to convert more than 4300 digits, numpy to allocate a dimension near 2**61, even with no rows)."""
    fields = line.split() if line is not None else []
    valid = len(fields) == 2 and all(f.isascii() and f.isdigit() and f.strip("0") for f in fields)
    if not valid:
        got = "an empty file" if line is None else repr(line.rstrip("\r\n")[:80])
        raise VectorFileError(
            f"{path}:1: expected a header 'N DIM' (two positive integers: word count and dimension), got {got}"
        )
    numbers = [f.lstrip("0") for f in fields]
    if any(len(n) > len(str(MAX_HEADER_NUMBER)) or int(n) > MAX_HEADER_NUMBER for n in numbers):
        raise VectorFileError(
            f"{path}:1: header {line.strip()[:80]!r} holds a number above {MAX_HEADER_NUMBER}; expected the word "
            "count and dimension of the file"
        )
    return int(numbers[0]), int(numbers[1])


def _split_row(path: str, number: int, line: str, dim: int) -> tuple[str, str]:
    """Split a row into (word, values text): the values are the last `dim` space-separated fields."""
    line = line.rstrip(" \r\n")
    if not line:
        raise VectorFileError(f"{path}:{number}: empty line, expected a word followed by {dim} values")
    if line.startswith(" "):
        raise VectorFileError(f"{path}:{number}: empty word (the line starts with a space)")
    spaces = line.count(" ")
    if spaces < dim:
        raise VectorFileError(
            f"{path}:{number}: expected a word and {dim} values, got {spaces} values; the header (line 1) announces "
            f"dimension {dim}"
        )
    parts = line.split(" ", spaces - dim + 1)
    return " ".join(parts[:-1]), parts[-1]


def _ends_with_a_number(word: str) -> bool:
    """True when `word` holds a space and its last space-separated part reads as a number: such a word may be a
    value that a header with a too small dimension left in the word."""
    if " " not in word:
        return False
    try:
        float(word.rsplit(" ", 1)[1])
    except ValueError:
        return False
    return True


def _load(rows: list[str], columns: int) -> np.ndarray | None:
    """Parse rows of `columns` space-separated numbers into float32, or None if any field is not a number."""
    if not all(row.strip() for row in rows):  # blank rows: loadtxt would skip them (and warn)
        return None
    try:
        array = np.loadtxt(rows, dtype=np.float32, delimiter=" ", comments=None, quotechar=None, ndmin=2)
    except ValueError:
        return None
    return array if array.shape == (len(rows), columns) else None


def _first_failure(items: list[str], columns: int) -> int:
    """Index of the first item that `_load` rejects (bisection: a few whole-block parses, not one per item)."""
    low, high = 0, len(items)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _load(items[low:middle], columns) is not None else (low, middle)
    return low


def _parse_values(path: str, values: list[str], numbers: list[int], dim: int) -> np.ndarray:
    """Parse the rows' value texts (each exactly `dim` space-separated fields) into a float32 matrix."""
    if not values:
        return np.zeros((0, dim), dtype=np.float32)
    vectors = _load(values, dim)
    if vectors is None:
        row = _first_failure(values, dim)
        fields = values[row].split(" ")
        field = fields[_first_failure(fields, 1)]
        raise VectorFileError(f"{path}:{numbers[row]}: expected a number, got {field!r} (one of the {dim} values)")
    return vectors


def read_word_vectors(
    path: str | os.PathLike[str],
    *,
    max_words: int | None = None,
    normalize: bool = False,
    keep: Container[str] | None = None,
) -> WordVectors:
    """Read a MUSE / fastText `.vec` file, plain or gzip-compressed (detected by its magic bytes).

    `max_words` reads only the first rows (files are frequency-ordered; the header's word count is then not
    checked); `keep` returns only the rows whose word it contains (every row's layout is still checked, and the
    header's count against all rows, but only kept rows' values are parsed); `normalize` scales every vector to
    unit L2 norm (computed in float64, so no value is too large or too small). Returns the words in file order,
    duplicates dropped after their first occurrence with a logged warning. Byte-order marks (U+FEFF) inside a row
    (files joined together) are removed from it, with a logged warning naming the lines.

    The header must agree with the rows: a row with fewer values than its dimension is refused, and so is a file
    where every row's word ends with a space and a number (the values of a header whose dimension is too small;
    a word that holds spaces is allowed, but not on every row). Every returned vector must be finite in float32
    and not all zeros (a zero vector cannot be normalised and would read as padding).

    Raises `VectorFileError` (file, line, what was expected) on malformed input, `FileNotFoundError` on a missing
    file.
    """
    path = os.fspath(path)
    if max_words is not None and max_words < 1:
        raise ValueError(f"max_words must be a positive integer or None, got {max_words!r}")
    words: list[str] = []
    values: list[str] = []
    numbers: list[int] = []
    rows = numeric_words = 0  # rows read, and those whose word ends with a space and a number
    first_row = ""
    marked: list[int] = []  # lines of the rows that held byte-order marks
    characters: dict[str, None] = {}
    with closing(_raw_lines(path)) as lines:
        first = next(lines, None)
        header = _decode(path, 1, first[1]).removeprefix("\ufeff") if first is not None else None
        count, dim = _parse_header(path, header)
        for number, raw in lines:
            line = _decode(path, number, raw)
            if "\ufeff" in line:
                line = line.replace("\ufeff", "")
                marked.append(number)
            word, text = _split_row(path, number, line, dim)
            rows += 1
            if max_words is None and rows > count:
                raise VectorFileError(
                    f"{path}:{number}: the header announces {count} words but the file has more rows (this line is "
                    f"row {rows}); expected {count} rows"
                )
            if rows == 1:
                first_row = line.rstrip(" \r\n")
            numeric_words += _ends_with_a_number(word)
            characters.update(dict.fromkeys(word))
            if keep is None or word in keep:
                words.append(word)
                values.append(text)
                numbers.append(number)
            if rows == max_words:
                break
    if max_words is None and rows != count:
        raise VectorFileError(f"{path}: the header announces {count} words but the file has {rows} rows")
    if rows and numeric_words == rows:
        raise VectorFileError(
            f"{path}:2: every row holds more numbers than the header's dimension {dim}: each word ends with a space "
            f"and a number (the first row reads as the word {first_row.rsplit(' ', dim)[0][:40]!r}); expected the "
            "header 'N DIM' to give the number of values per row"
        )
    if marked:
        logger.warning(
            "%s: byte-order marks (U+FEFF) inside %d row(s) (files joined together?), on line(s) %s%s; removed",
            path,
            len(marked),
            ", ".join(map(str, marked[:5])),
            " ..." if len(marked) > 5 else "",
        )
    vectors = _parse_values(path, values, numbers, dim)
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise VectorFileError(
            f"{path}:{numbers[bad]}: the vector of word {words[bad]!r} contains NaN, inf or a value beyond the "
            "float32 range; expected finite numbers"
        )
    nonzero = vectors.any(axis=1)
    if not nonzero.all():
        bad = int(np.argmin(nonzero))
        raise VectorFileError(
            f"{path}:{numbers[bad]}: the vector of word {words[bad]!r} is all zeros (or its values are below the "
            "float32 range, about 1e-45); expected a non-zero vector: a zero vector cannot be normalised and would "
            "read as padding"
        )
    first_index: dict[str, int] = {}
    duplicates = [word for index, word in enumerate(words) if first_index.setdefault(word, index) != index]
    if duplicates:
        logger.warning(
            "%s: %d duplicate word(s) ignored, each keeps the vector of its first occurrence; first ones: %s",
            path,
            len(duplicates),
            duplicates[:5],
        )
        keep = list(first_index.values())
        words, vectors = [words[i] for i in keep], vectors[keep]
    if normalize:  # norms in float64: float32 squares overflow above ~1e19 and underflow below ~1e-19
        norms = np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
        vectors = (vectors / norms).astype(np.float32)
    return WordVectors(words=words, vectors=vectors, path=path, characters="".join(characters))


def check_same_dimension(vector_sets: dict[str, WordVectors]) -> None:
    """Raise `VectorFileError` naming both files and dimensions if the languages' vectors differ in dimension.

    All languages must share one dimension to be stacked into one multilingual embedding table.
    """
    items = list(vector_sets.items())
    for language, vectors in items[1:]:
        reference_language, reference = items[0]
        if vectors.dim != reference.dim:
            raise VectorFileError(
                f"word-vector files of different dimensions: {reference.path} ({reference_language}) has dim "
                f"{reference.dim}, {vectors.path} ({language}) has dim {vectors.dim}; expected one shared dim"
            )
