"""Error classes raised by `modeling_manmoe`.

Every error subclasses both `ManMoeError` (so callers can catch everything the package raises on bad input)
and `ValueError`, so generic handlers keep working (a missing file is Python's own `FileNotFoundError`).
Messages always name the culprit: the file and line, the field, the language or the value.
"""

from __future__ import annotations


class ManMoeError(Exception):
    """Base class of every error `modeling_manmoe` raises on bad input."""


class ManMoeConfigError(ManMoeError, ValueError):
    """An invalid `ManMoeConfig` field or combination of fields."""


class DataFormatError(ManMoeError, ValueError):
    """A data file (CoNLL, Webis XML, ...) that does not follow its format; names the file and line."""


class VectorFileError(ManMoeError, ValueError):
    """A word-vector file (`.vec` / `.vec.gz`) that does not follow the MUSE/fastText text format."""


class LabelError(DataFormatError):
    """A dataset whose labels are not the model's (`config.id2label`): other label names, or ids out of range."""


class LanguageError(ManMoeError, ValueError):
    """A language code that the model or the data does not know."""


class CheckpointError(ManMoeError, ValueError):
    """A training checkpoint that cannot be resumed from (missing, or left incomplete by a killed run)."""
