"""The secrets a run knows (its Hub tokens) and their removal, by value, from everything a run writes or uploads.

A Hub token reaches a run under many spellings: `--hub_token T`, `--hub-token=T`, an abbreviation argparse accepts
(`--hub_tok T`), or the environment (`HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, the token `hf auth login` stored).
Recognising the spelling is fragile, so the example scripts scrub the token's **value**: `known_secrets` lists every
token the run could use, `redact` / `redact_data` replace each occurrence by `<SECRET>`, and `find_secrets_in_files`
checks a folder byte by byte before it is uploaded.

A value shorter than `MIN_SECRET_LENGTH` (8) characters is not treated as a secret: scrubbing it would garble common
words and numbers of the results, and no Hub token is that short.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SECRET_PLACEHOLDER = "<SECRET>"
MIN_SECRET_LENGTH = 8
SECRET_ENVIRONMENT_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
TEXT_SUFFIXES = (".json", ".md", ".txt", ".py")


def known_secrets(training_args=None, extra: Iterable[str | None] = ()) -> list[str]:
    """Every secret the run knows, longest first: the `hub_token` of the parsed `training_args` (whatever spelling
    the command line used), the values of `HF_TOKEN` and `HUGGING_FACE_HUB_TOKEN`, the token stored by
    `hf auth login`, and `extra` values (e.g. a token already taken off the arguments). Values shorter than
    `MIN_SECRET_LENGTH` characters are left out."""
    candidates = [getattr(training_args, "hub_token", None), *extra]
    candidates += [os.environ.get(name) for name in SECRET_ENVIRONMENT_VARIABLES]
    try:
        from huggingface_hub import get_token

        candidates.append(get_token())
    except Exception:  # an unreadable token file: the environment's tokens are still known
        pass
    secrets = {value.strip() for value in candidates if isinstance(value, str)}
    return sorted((value for value in secrets if len(value) >= MIN_SECRET_LENGTH), key=lambda s: (-len(s), s))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by `<SECRET>`, in one pass that tries the longest secret
    first (so that a secret containing another is replaced whole, and no placeholder is rewritten)."""
    ordered = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    if not ordered:
        return text
    return re.sub("|".join(map(re.escape, ordered)), SECRET_PLACEHOLDER, text)


def redact_data(data: Any, secrets: Sequence[str]) -> Any:
    """A copy of JSON-like `data` (dicts, lists, tuples, strings, numbers) with `redact` applied to every string, keys
    included."""
    if isinstance(data, str):
        return redact(data, secrets)
    if isinstance(data, dict):
        return {redact_data(key, secrets): redact_data(value, secrets) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(redact_data(item, secrets) for item in data)
    return data


def secret_forms(secret: str) -> set[bytes]:
    """The byte strings under which `secret` can appear in a file: UTF-8 as written, and escaped as JSON writes it."""
    return {secret.encode("utf-8"), json.dumps(secret)[1:-1].encode("utf-8")}


def redact_files(
    folder: str | os.PathLike[str], secrets: Sequence[str], suffixes: Sequence[str] = TEXT_SUFFIXES
) -> list[Path]:
    """Apply `redact` to every UTF-8 text file under `folder` (recursively) named with one of `suffixes`, rewriting
    (atomically) those that held a secret. Returns the rewritten files."""
    from .outputs import atomic_write_text

    rewritten = []
    for path in sorted(Path(folder).rglob("*")):
        if not (path.is_file() and path.suffix in suffixes):
            continue
        try:
            text = path.read_bytes().decode("utf-8")  # line endings kept as they are
        except UnicodeDecodeError:  # not text after all: `find_secrets_in_files` still checks its bytes
            continue
        redacted = redact(text, [form for secret in secrets for form in (secret, json.dumps(secret)[1:-1])])
        if redacted != text:
            atomic_write_text(path, redacted)
            rewritten.append(path)
    return rewritten


def find_secrets_in_files(folder: str | os.PathLike[str], secrets: Sequence[str]) -> list[Path]:
    """The files under `folder` (recursively, binary files included) whose bytes contain one of `secrets`."""
    forms = {form for secret in secrets if secret for form in secret_forms(secret)}
    if not forms:
        return []
    return sorted(path for path in Path(folder).rglob("*") if path.is_file() and _contains_any(path, forms))


def _contains_any(path: Path, forms: set[bytes], chunk_size: int = 1 << 20) -> bool:
    """Whether the bytes of `path`, read in chunks (a match may straddle two), contain one of `forms`."""
    overlap = max(len(form) for form in forms) - 1
    tail = b""
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            window = tail + chunk
            if any(form in window for form in forms):
                return True
            tail = window[-overlap:] if overlap else b""
    return False


__all__ = [
    "MIN_SECRET_LENGTH",
    "SECRET_ENVIRONMENT_VARIABLES",
    "SECRET_PLACEHOLDER",
    "find_secrets_in_files",
    "known_secrets",
    "redact",
    "redact_data",
    "redact_files",
]
