"""Reading a data file's bytes, gunzipped when needed, within the size limits every reader of `modeling_manmoe.data`
shares: `MAX_DATA_BYTES` per file (after decompression) and `MAX_LINE_BYTES` per line.

The limits are read when a file is read, so a program (or a test) can change them by assigning the module's
constants, e.g. `modeling_manmoe.data.files.MAX_DATA_BYTES = 16 * 2**30`.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataFormatError

MAX_DATA_BYTES = 4 * 2**30  # the largest data file read whole, in bytes after decompression (4 GiB)
MAX_LINE_BYTES = 2**20  # the longest line of a data or word-vector file, in bytes without its newline (1 MiB)
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK_BYTES = 16 * 2**20  # decompression and line scanning work on pieces of this size


def _gunzip(path: Path, limit: int) -> bytes:
    """The decompressed bytes of the gzip file `path`, read piece by piece and refused beyond `limit` bytes."""
    pieces, total = [], 0
    try:
        with gzip.open(path, "rb") as handle:
            while piece := handle.read(_CHUNK_BYTES):
                total += len(piece)
                if total > limit:
                    raise DataFormatError(
                        f"{path}: decompresses to more than {limit} bytes, the limit of a data file "
                        "(modeling_manmoe.data.files.MAX_DATA_BYTES); expected a smaller file: split it, or raise "
                        "the limit if the machine has the memory"
                    )
                pieces.append(piece)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFormatError(
            f"{path}: truncated or corrupt gzip data ({error}); expected a complete gzip file"
        ) from error
    return b"".join(pieces)


def check_line_lengths(path: Path, data: bytes, limit: int | None = None) -> None:
    """Raise `DataFormatError` naming the file, the 1-based line and its length when a line of `data` (newline
    excluded) is longer than `limit` bytes (default `MAX_LINE_BYTES`)."""
    limit = MAX_LINE_BYTES if limit is None else limit
    if len(data) <= limit:
        return
    view = np.frombuffer(data, dtype=np.uint8)
    previous, lines_before = -1, 0  # the offset of the last newline seen, the number of lines it ends
    for start in range(0, len(view), _CHUNK_BYTES):
        newlines = np.flatnonzero(view[start : start + _CHUNK_BYTES] == 0x0A) + start
        lengths = np.diff(newlines, prepend=previous) - 1
        if len(lengths) and lengths.max() > limit:
            index = int(np.argmax(lengths > limit))
            _refuse_long_line(path, lines_before + index + 1, int(lengths[index]), limit)
        if len(newlines):
            previous, lines_before = int(newlines[-1]), lines_before + len(newlines)
    if len(data) - previous - 1 > limit:
        _refuse_long_line(path, lines_before + 1, len(data) - previous - 1, limit)


def _refuse_long_line(path: Path, number: int, length: int, limit: int) -> None:
    raise DataFormatError(
        f"{path}:{number}: a line of {length} bytes, longer than the limit of {limit} bytes per line "
        "(modeling_manmoe.data.files.MAX_LINE_BYTES); expected a text file of short lines (a token, or an XML "
        "field, per line)"
    )


def read_data_bytes(path: Path) -> bytes:
    """The bytes of `path`, gunzipped when it is named `.gz` or starts with the gzip magic bytes.

    Raises `FileNotFoundError` for a missing file and `DataFormatError` (naming the file, and the line where there is
    one) for truncated or corrupt gzip data, a file larger than `MAX_DATA_BYTES` (after decompression: a gzip file is
    decompressed piece by piece and refused as soon as it passes the limit) or a line longer than `MAX_LINE_BYTES`.
    """
    limit = MAX_DATA_BYTES
    with open(path, "rb") as handle:
        compressed = path.suffix == ".gz" or handle.read(2) == GZIP_MAGIC
    if compressed:
        raw = _gunzip(path, limit)
    else:
        size = path.stat().st_size
        if size > limit:
            raise DataFormatError(
                f"{path}: {size} bytes, more than the limit of {limit} bytes of a data file "
                "(modeling_manmoe.data.files.MAX_DATA_BYTES); expected a smaller file: split it, or raise the "
                "limit if the machine has the memory"
            )
        raw = path.read_bytes()
    check_line_lengths(path, raw)
    return raw
