"""What a run writes: results JSON, CoNLL predictions and file fingerprints. Every write is atomic (a temporary
file in the same folder, then `os.replace`), so an interrupted run never leaves a partial file that looks whole."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` (UTF-8) to `path` through a temporary file in the same folder and a rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def write_json(path: str | os.PathLike[str], data: dict) -> Path:
    """Atomically write `data` as indented, key-sorted JSON."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (as stored: a `.gz` file is hashed compressed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def conll_prediction_lines(
    sentences: Iterable[tuple[Sequence[str], Sequence[str], Sequence[str]]],
) -> str:
    """CoNLL text `word gold predicted`, one word a line, a blank line after each sentence (conlleval's input).

    `sentences`: (words, gold tags, predicted tags) per sentence, all three of the same length.
    """
    lines = []
    for index, (words, gold, predicted) in enumerate(sentences):
        if not len(words) == len(gold) == len(predicted):
            raise ValueError(
                f"sentence {index}: {len(words)} words, {len(gold)} gold and {len(predicted)} predicted tags"
            )
        lines.extend(f"{word} {g} {p}" for word, g, p in zip(words, gold, predicted, strict=True))
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


__all__ = ["atomic_write_text", "conll_prediction_lines", "sha256_file", "write_json"]
