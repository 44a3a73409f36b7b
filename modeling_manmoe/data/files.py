"""Reading a data file's bytes, gunzipped when needed: what every reader of `modeling_manmoe.data` starts with."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from ..errors import DataFormatError


def read_data_bytes(path: Path) -> bytes:
    """The bytes of `path`, gunzipped when it is named `.gz` or starts with the gzip magic bytes.

    Raises `FileNotFoundError` for a missing file and `DataFormatError` (naming the file) for truncated or corrupt
    gzip data.
    """
    raw = path.read_bytes()
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(
                f"{path}: truncated or corrupt gzip data ({error}); expected a complete gzip file"
            ) from error
    return raw
