"""Which checkpoint a run can resume from, and whether it may.

The `Trainer` writes a checkpoint folder file by file and `trainer_state.json` last, so a run killed while saving
(SIGKILL, out of memory, a lost machine) leaves a folder that looks like a checkpoint but is not one. A checkpoint
is complete when its `trainer_state.json` parses and every file resuming needs is there; resuming picks the newest
complete one and says which incomplete ones it skipped.

Each checkpoint also holds `manmoe_checkpoint.json` (`CHECKPOINT_RECORD`): the run fingerprint (`run_fingerprint`:
what its weights depend on: the languages and their order, the label names, the input kind and architecture, and,
from the example scripts, the tokenizer's settings and the vector / encoder sha256) and the sum of the training losses
up to it. Resuming under a fingerprint that differs is refused (`check_resume_fingerprint`), and the training loss
of a resumed run covers the steps before the resume too.
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

CHECKPOINT_RECORD = "manmoe_checkpoint.json"
ARCHITECTURE_FIELDS = (
    "word_vocab_size", "word_embedding_dim", "use_char_cnn", "char_vocab_size", "char_embedding_dim",
    "char_kernel_sizes", "char_num_filters", "char_hidden_size", "encoder_layers", "encoder_pooling",
    "shared_hidden_size", "shared_num_layers", "private_hidden_size", "private_num_layers", "predictor_hidden_size",
    "discriminator_kernel_sizes", "discriminator_num_filters", "discriminator_hidden_size", "use_adversary",
    "use_private_moe", "use_predictor_moe", "rtn_bottleneck",
)  # fmt: skip
"""The `ManMoeConfig` fields that decide which weights a model has and their shapes."""
_ABSENT = object()


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


def run_fingerprint(config, tokenizer: dict | None = None, inputs: dict | None = None) -> dict:
    """What the weights of a run's checkpoints depend on, as JSON data: from `config` (a `ManMoeConfig`) the
    languages in their order (`source_languages`, `unlabeled_languages`: they are the language and expert ids), the
    label names in id order, the input kind (`input_mode`) and the architecture (`ARCHITECTURE_FIELDS`); `tokenizer`
    (the tokenizer's settings, e.g. `run.setup.tokenizer_settings`) and `inputs` (the sha256 of each vector file and
    of the encoder's weights) where given."""
    fingerprint = {
        "source_languages": list(config.source_languages),
        "unlabeled_languages": list(config.unlabeled_languages),
        "labels": [config.id2label[i] for i in range(len(config.id2label))],
        "input_mode": config.input_mode,
        "architecture": {name: getattr(config, name, None) for name in ARCHITECTURE_FIELDS},
    }
    if tokenizer is not None:
        fingerprint["tokenizer"] = tokenizer
    if inputs is not None:
        fingerprint["inputs"] = inputs
    return json.loads(json.dumps(fingerprint))  # as read back from the file: tuples become lists


def write_checkpoint_record(checkpoint: str, fingerprint: dict, loss_sum: float, loss_steps: list[int]) -> None:
    """Write `checkpoint/manmoe_checkpoint.json`: the run `fingerprint`, and `train_loss_sum`, the sum of the
    training losses of the steps `train_loss_steps` ([first, last], inclusive)."""
    os.makedirs(checkpoint, exist_ok=True)
    record = {"run_fingerprint": fingerprint, "train_loss_sum": loss_sum, "train_loss_steps": list(loss_steps)}
    path = os.path.join(checkpoint, CHECKPOINT_RECORD)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def read_checkpoint_record(checkpoint: str) -> dict | None:
    """The checkpoint's `manmoe_checkpoint.json`, or None for a checkpoint saved without one. Raises
    `CheckpointError` naming the file when it is not a JSON object with a `run_fingerprint`."""
    path = os.path.join(checkpoint, CHECKPOINT_RECORD)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"resume_from_checkpoint: {path!r} cannot be read ({error}); expected the JSON record "
                              "of the checkpoint's run") from error  # fmt: skip
    if not isinstance(record, dict) or not isinstance(record.get("run_fingerprint"), dict):
        raise CheckpointError(f"resume_from_checkpoint: {path!r} holds no 'run_fingerprint' object")
    return record


def fingerprint_differences(saved: dict, current: dict) -> list[str]:
    """Each difference between two run fingerprints, as 'field: VALUE in the checkpoint, VALUE now' (nested fields
    as 'tokenizer.words.nl'), in the order of `current`. A part that one side lacks altogether (`tokenizer` and `inputs` are optional) is not
    compared."""
    differences = []

    def compare(name: str, old, new) -> None:
        if isinstance(old, dict) and isinstance(new, dict):
            for key in dict.fromkeys([*new, *old]):
                compare(f"{name}.{key}" if name else str(key), old.get(key, _ABSENT), new.get(key, _ABSENT))
        elif old != new:
            shown = ["absent" if value is _ABSENT else repr(value) for value in (old, new)]
            differences.append(f"{name}: {shown[0]} in the checkpoint, {shown[1]} now")

    for key in dict.fromkeys([*current, *saved]):  # in the order of the current fingerprint
        if key in saved and key in current:
            compare(key, saved[key], current[key])
    return differences


def check_resume_fingerprint(checkpoint: str, record: dict | None, current: dict) -> None:
    """Refuse to resume from `checkpoint` (its `record`, from `read_checkpoint_record`) under the run fingerprint
    `current` when they differ: a `CheckpointError` lists each difference. A checkpoint without a record resumes
    with a warning."""
    if record is None:
        logger.warning("%s has no %s (a checkpoint of an older version): resuming without checking that it was made "
                       "with the same languages, labels, inputs and tokenizer", checkpoint, CHECKPOINT_RECORD)  # fmt: skip
        return
    differences = fingerprint_differences(record["run_fingerprint"], current)
    if differences:
        raise CheckpointError(
            f"resume_from_checkpoint: {checkpoint!r} was saved by a run of another configuration, and resuming would "
            "mix the two: " + "; ".join(differences) + ". Resume with the arguments of the run that saved it, or "
            "start a new run in an empty --output_dir (to start from a trained model, give it as --model_name_or_path)"
        )


def _listdir(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []
