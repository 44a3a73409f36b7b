"""Which checkpoint a run can resume from.

The `Trainer` writes a checkpoint folder file by file and `trainer_state.json` last, so a run killed while saving
(SIGKILL, out of memory, a lost machine) leaves a folder that looks like a checkpoint but is not one. A checkpoint
is complete when its `trainer_state.json` parses and every file resuming needs is there; resuming picks the newest
complete one and says which incomplete ones it skipped.
"""

from __future__ import annotations

import json
import logging
import os
import re

from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..errors import CheckpointError

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def missing_checkpoint_files(checkpoint: str, required: tuple[str, ...] = ()) -> list[str]:
    """What `checkpoint` lacks to be resumed from: `trainer_state.json` (absent or not valid JSON, i.e. written
    by a run that was killed), model weights, or any of `required`. Empty when the checkpoint is complete."""
    missing = []
    try:
        with open(os.path.join(checkpoint, TRAINER_STATE_NAME), encoding="utf-8") as handle:
            json.load(handle)
    except (OSError, ValueError):
        missing.append(f"{TRAINER_STATE_NAME} (absent or truncated)")
    if not any(name.endswith(".safetensors") for name in _listdir(checkpoint)):
        missing.append("model weights (*.safetensors)")
    missing += [name for name in required if not os.path.isfile(os.path.join(checkpoint, name))]
    return missing


def last_complete_checkpoint(output_dir: str, required: tuple[str, ...] = ()) -> str | None:
    """The newest complete `checkpoint-N` folder of `output_dir` (None when there is none); newer incomplete
    folders are skipped with a warning that names them and what they lack."""
    steps = sorted((int(match.group(1)), name) for name in _listdir(output_dir) if (match := _CHECKPOINT.match(name)))
    for _, name in reversed(steps):
        path = os.path.join(output_dir, name)
        missing = missing_checkpoint_files(path, required)
        if not missing:
            return path
        logger.warning("skipping incomplete checkpoint %s (a run stopped while saving it): no %s", path,
                       ", ".join(missing))  # fmt: skip
    return None


def resolve_resume_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str,
                              required: tuple[str, ...] = ()) -> str | None:  # fmt: skip
    """`True` or "last" -> the newest complete checkpoint of `output_dir`; a path -> that path if it is complete;
    None/False -> None. Raises `CheckpointError` naming the folder and what it lacks."""
    if resume_from_checkpoint is None or resume_from_checkpoint is False:
        return None
    if resume_from_checkpoint is True or str(resume_from_checkpoint).lower() in ("last", "true"):
        checkpoint = last_complete_checkpoint(output_dir, required)
        if checkpoint is None:
            raise CheckpointError(f"resume_from_checkpoint: no complete checkpoint-N folder in {output_dir!r}")
        logger.info("resuming from %s", checkpoint)
        return checkpoint
    checkpoint = str(resume_from_checkpoint)
    if not os.path.isdir(checkpoint):
        raise CheckpointError(f"resume_from_checkpoint: {checkpoint!r} is not a folder")
    missing = missing_checkpoint_files(checkpoint, required)
    if missing:
        raise CheckpointError(f"resume_from_checkpoint: {checkpoint!r} is incomplete (a run stopped while saving "
                              f"it): no {', '.join(missing)}")  # fmt: skip
    return checkpoint


def _listdir(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []
