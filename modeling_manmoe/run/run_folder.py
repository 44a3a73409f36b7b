"""A run's output folder and arguments, checked before anything heavy is loaded; one run at a time in a folder.

`check_run_arguments`, called first in the example scripts' `main`, validates what costs nothing to validate (the
language lists, the model, encoder, vector and data paths, the schedule, the output folder) so that a mistake fails in
a second rather than after the data and vectors are loaded. It then applies transformers' output-folder convention: a
run (training, or evaluating / predicting only: it writes `all_results.json` and predictions) into a folder that holds
another run's outputs (`run_outputs`) is refused unless `--overwrite_output_dir`, which first removes those outputs and
nothing else, or `--resume_from_checkpoint`, which continues that run. The one exception: an evaluation-only run of
the model in its own folder (`--model_name_or_path RUN --output_dir RUN`), whose new results describe that model
and keep its training record. A lock file `OUTPUT_DIR/.manmoe.lock` (the pid and host of the run holding the folder, created
with `O_EXCL`) refuses a second run into the same folder while the first is alive; the lock of a run that died on
this host is taken over with a warning. `holds_output_folder` wraps a script's `main` so that the lock is removed when
it returns or raises.

Each run has a run id (`current_run_id`, a uuid4 hex made by `check_run_arguments`): `train_evaluate_predict` writes
it into the trained model's `config.json` (`manmoe_run_id`) and into `all_results.json` (`run_id`), and a folder whose
model and results carry different ids is refused by `results.load_run_results` (and so by `manmoe-card`).
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..data.download import is_url

logger = logging.getLogger(__name__)

LOCK_NAME = ".manmoe.lock"
PACKAGE_MODULES = frozenset(path.name for path in Path(__file__).resolve().parents[1].glob("*.py")) - {"__init__.py"}
"""The package's flat code files, which `save_pretrained` copies beside a model (remote code)."""
RUN_FILES = frozenset({"all_results.json", "trainer_state.json", "training_args.bin", "model.safetensors",
                       "model.safetensors.index.json", "special_tokens_map.json", "manmoe_vocab.json"})  # fmt: skip
RUN_PATTERNS = (re.compile(r"checkpoint-\d+"), re.compile(r"model-\d+-of-\d+\.safetensors"),
                re.compile(r"predictions_test_.+"), re.compile(r"hub_upload"))  # fmt: skip
_ACTIVE: contextvars.ContextVar[list[RunFolder] | None] = contextvars.ContextVar("manmoe_run_folders", default=None)
_HELD: set[str] = set()  # the lock files this process holds


@dataclass
class RunFolderArguments:
    """What to do with an output folder that holds another run's outputs."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "First remove the outputs of the run in --output_dir (model, checkpoints, results, "
                  "predictions, hub_upload/; nothing else). Without it such a folder is refused, for training and for "
                  "evaluation-only runs alike, unless --resume_from_checkpoint continues that run."},
    )  # fmt: skip


def run_outputs(folder: str | os.PathLike[str]) -> list[str]:
    """The names in `folder` that a run of the example scripts writes: the model (weights, `config.json` of a MAN-MoE
    model, the tokenizer's files, the package's code files), `checkpoint-N/`, `all_results.json`, `trainer_state.json`,
    `training_args.bin`, `predictions_test_*`, `hub_upload/` and a MAN-MoE model card `README.md`. Sorted; empty for
    a folder that does not exist."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(folder, name)
        if name in RUN_FILES or name in PACKAGE_MODULES or any(pattern.fullmatch(name) for pattern in RUN_PATTERNS):
            found.append(name)
        elif name == "config.json" and _json_field(path, "model_type") == "manmoe":
            found.append(name)
        elif name == "tokenizer_config.json" and "ManMoe" in str(_json_field(path, "tokenizer_class")):
            found.append(name)
        elif name == "README.md" and _is_manmoe_card(path):
            found.append(name)
    return sorted(found)


def remove_run_outputs(folder: str | os.PathLike[str]) -> list[str]:
    """Remove the `run_outputs` of `folder` (files and folders) and return their names; nothing else is touched."""
    removed = run_outputs(folder)
    for name in removed:
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    return removed


class RunFolder:
    """One run's hold on its output folder: its run id and the lock file `OUTPUT_DIR/.manmoe.lock`."""

    def __init__(self, output_dir: str | os.PathLike[str], run_id: str | None = None):
        self.output_dir = str(output_dir)
        self.run_id = run_id or uuid.uuid4().hex
        self.lock_path = os.path.join(self.output_dir, LOCK_NAME)
        self.locked = False

    def acquire(self) -> None:
        """Create the lock file with `O_EXCL`; a lock left by a process of this host that is no longer alive is taken
        over with a warning. Raises `ValueError` naming the lock file while another run holds the folder."""
        content = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "run_id": self.run_id,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})  # fmt: skip
        for _ in range(3):
            try:
                handle = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None:
                    raise ValueError(
                        f"--output_dir: {self.output_dir!r} is in use by another run ({holder}, lock file "
                        f"{self.lock_path}); wait for it to end or give another --output_dir. If no such run is going "
                        "on, delete the lock file"
                    ) from None
                continue  # a stale lock, removed by `_holder`: try again
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(content)
            self.locked = True
            _HELD.add(os.path.abspath(self.lock_path))
            return
        raise ValueError(f"--output_dir: could not take the lock file {self.lock_path} (it keeps coming back)")

    def release(self) -> None:
        """Remove the lock file if this run holds it."""
        if not self.locked:
            return
        self.locked = False
        _HELD.discard(os.path.abspath(self.lock_path))
        try:
            with open(self.lock_path, encoding="utf-8") as stream:
                ours = json.load(stream).get("run_id") == self.run_id
        except (OSError, ValueError):
            ours = False
        if ours:
            os.unlink(self.lock_path)

    def _holder(self) -> str | None:
        """Who holds the existing lock ('pid N on host H since T'), or None after removing a stale one (its process
        is gone from this host, or it is a lock this process left behind)."""
        for attempt in range(10):  # a lock file is written right after it is created: wait for its content
            try:
                with open(self.lock_path, encoding="utf-8") as stream:
                    holder = json.load(stream)
                break
            except FileNotFoundError:
                return None
            except (OSError, ValueError):
                holder = None
                time.sleep(0.1 if attempt < 9 else 0)
        description = "an unreadable lock"
        if isinstance(holder, dict):
            pid, host = holder.get("pid"), holder.get("host")
            description = f"pid {pid} on host {host} since {holder.get('started')}"
            if host != socket.gethostname():
                return description  # another machine: whether it runs cannot be told from here
            if isinstance(pid, int) and _alive(pid) and not (pid == os.getpid() and self._left_by_this_process()):
                return description
        logger.warning("%s: taking over the lock of a run that is no longer alive (%s)", self.lock_path, description)
        try:
            os.unlink(self.lock_path)
        except FileNotFoundError:
            pass
        return None

    def _left_by_this_process(self) -> bool:
        return os.path.abspath(self.lock_path) not in _HELD


def check_run_arguments(model_args, data_args, training_args, folder_args: RunFolderArguments | None = None):
    """Validate the cheap parts of a run's arguments, then take its output folder; returns the `RunFolder`.

    Checked, each failure a `ValueError` naming the option: `--source_languages` without repeats and
    `--target_language` not among them; `--model_name_or_path`, `--encoder_name_or_path`, `--teacher_models`'s
    local folders, `--word_vectors` (LANG=PATH for each language without an encoder or a trained model; local files
    exist, URLs are fetched later) and `--train_files` / `--validation_files` / `--test_files`;
    `--max_steps 0` with `--do_train`; `--resume_from_checkpoint` (a folder, or a complete checkpoint for `last`, saved
    with the same language lists and input kind: the rest of the run fingerprint is compared once it is known);
    `--output_dir` (a folder that can be created and written). Then, in the process that saves: the lock, and the
    folder rule of a run that writes (`--do_train`, `--do_eval` or `--do_predict`; see the module's docstring), which
    removes the old outputs with `--overwrite_output_dir`; with `--do_train`, `--model_name_or_path` must be a MAN-MoE
    model of the run's languages (read from its config). Inside a `holds_output_folder` call the lock is released
    when it ends; otherwise at the process's exit."""
    from ..training.checkpoints import check_resume_fingerprint, read_checkpoint_record, resolve_resume_checkpoint
    from ..training.teachers import ensemble_paths
    from ..training.trainer import ManMoeTrainer
    from .setup import parse_pairs

    overwrite = bool(folder_args and folder_args.overwrite_output_dir)
    sources = list(getattr(data_args, "source_languages", None) or [])
    target = getattr(data_args, "target_language", None)
    repeated = sorted({lang for lang in sources if sources.count(lang) > 1})
    if repeated:
        raise ValueError(f"--source_languages: {repeated} given more than once in {sources}; give each language once")
    if target in sources:
        raise ValueError(f"--target_language {target!r} is also a source language (--source_languages {sources}); the "
                         "target must be zero-resource")  # fmt: skip
    _check_model_folder("--model_name_or_path", model_args.model_name_or_path)
    _check_model_folder("--encoder_name_or_path", model_args.encoder_name_or_path)
    for lang, spec in parse_pairs(getattr(model_args, "teacher_models", []), "teacher_models").items():
        for path in ensemble_paths(lang, spec):  # one path, or an ensemble's PATH_A,PATH_B,...
            _check_model_folder(f"--teacher_models {lang}", path)
    if model_args.word_vectors and model_args.encoder_name_or_path is not None:
        raise ValueError("give either --word_vectors or --encoder_name_or_path, not both")
    vectors = parse_pairs(model_args.word_vectors, "word_vectors")
    if training_args.do_train and model_args.model_name_or_path is None and model_args.encoder_name_or_path is None:
        missing = [lang for lang in [*sources, target] if lang is not None and lang not in vectors]
        if missing:
            raise ValueError(f"--word_vectors: no vector file for language(s) {missing}; give LANG=PATH for each of "
                             f"{[*sources, target]}, or use --encoder_name_or_path")  # fmt: skip
    for lang, path in vectors.items():
        _check_file(f"--word_vectors {lang}", path)
    for split in ("train", "validation", "test"):
        for lang, path in parse_pairs(getattr(data_args, f"{split}_files", []), f"{split}_files").items():
            _check_file(f"--{split}_files {lang}", path)
    if training_args.do_train:
        ManMoeTrainer.check_max_steps(training_args)
    output_dir = training_args.output_dir
    resume = training_args.resume_from_checkpoint if training_args.do_train else None
    if resume is not None and overwrite:
        raise ValueError("--overwrite_output_dir and --resume_from_checkpoint contradict each other: the first "
                         f"discards the run in {output_dir!r}, the second continues it; give one of them")  # fmt: skip
    if resume is not None:  # a missing, incomplete or other-run checkpoint fails now, not after loading
        checkpoint = resolve_resume_checkpoint(resume, output_dir)
        if model_args.model_name_or_path is None:
            check_resume_fingerprint(checkpoint, read_checkpoint_record(checkpoint), {
                "source_languages": sources, "unlabeled_languages": [target],
                "input_mode": "encoder" if model_args.encoder_name_or_path is not None else "word_vectors",
            })  # fmt: skip
    _make_output_folder(output_dir)
    folder, active = RunFolder(output_dir), _ACTIVE.get()
    if training_args.should_save:
        folder.acquire()
        if active is None:
            atexit.register(folder.release)
    if active is not None:
        active.append(folder)
    try:
        evaluates = (training_args.do_eval or training_args.do_predict) and not training_args.do_train
        in_place = evaluates and _same_folder(model_args.model_name_or_path, output_dir)
        if (training_args.do_train or evaluates) and resume is None and not in_place:
            _apply_folder_rule(
                output_dir, overwrite, model_args.model_name_or_path, training_args.should_save, training_args.do_train
            )
        if training_args.do_train and model_args.model_name_or_path is not None:  # from its config, before any data
            _check_model_to_train_further(model_args.model_name_or_path, sources, target)
    except BaseException:
        folder.release()
        raise
    return folder


def holds_output_folder(main):
    """Decorate a script's `main`: the output folder that `check_run_arguments` takes during the call is released
    (its lock file removed) when `main` returns or raises, and `current_run_id` gives the run's id meanwhile."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        folders: list[RunFolder] = []
        token = _ACTIVE.set(folders)
        try:
            return main(*args, **kwargs)
        finally:
            _ACTIVE.reset(token)
            for folder in folders:
                folder.release()

    return wrapper


def current_run_id() -> str:
    """The id of the run in progress (taken by `check_run_arguments` in a `holds_output_folder` call), else a new
    uuid4 hex."""
    folders = _ACTIVE.get()
    return folders[-1].run_id if folders else uuid.uuid4().hex


def _apply_folder_rule(
    output_dir: str, overwrite: bool, model_name_or_path: str | None, removes: bool, training: bool = True
) -> None:
    """Refuse (or with `overwrite`, clear, in the process that saves) a folder that holds another run's outputs."""
    outputs = run_outputs(output_dir)
    if not outputs:
        return
    if not overwrite:
        telling = sorted(outputs, key=lambda name: (name in PACKAGE_MODULES or name.endswith((".json", ".md")), name))
        telling = sorted(telling, key=lambda name: name != "all_results.json")  # results, weights, checkpoints first
        shown = ", ".join(telling[:6]) + (f" and {len(outputs) - 6} more" if len(outputs) > 6 else "")
        if training:
            ways = "--overwrite_output_dir to remove them first, or --resume_from_checkpoint last to continue that run"
        else:
            ways = ("--overwrite_output_dir to remove them first (an evaluation-only run writes all_results.json and "
                    "predictions; only the folder of the model it evaluates, --model_name_or_path, takes them)")  # fmt: skip
        raise ValueError(
            f"--output_dir: {output_dir!r} holds the outputs of another run ({shown}); give an empty or new folder, "
            + ways
        )
    if model_name_or_path is not None and os.path.isdir(model_name_or_path):
        model, folder = Path(model_name_or_path).resolve(), Path(output_dir).resolve()
        if model == folder or folder in model.parents:
            raise ValueError(f"--overwrite_output_dir would remove the model that --model_name_or_path "
                             f"{model_name_or_path!r} loads; give another --output_dir")  # fmt: skip
    if removes:
        removed = remove_run_outputs(output_dir)
        logger.warning("--overwrite_output_dir: removed the outputs of the previous run in %s: %s", output_dir,
                       ", ".join(removed))  # fmt: skip


def _same_folder(model_name_or_path: str | None, output_dir: str) -> bool:
    """Whether `model_name_or_path` is the local folder `output_dir`."""
    if model_name_or_path is None or not os.path.isdir(model_name_or_path):
        return False
    return Path(model_name_or_path).resolve() == Path(output_dir).resolve()


def _make_output_folder(output_dir: str) -> None:
    """Create `output_dir` if needed and check that files can be created in it."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"--output_dir: {output_dir!r} is a file; expected a folder (new or existing)")
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--output_dir: {output_dir!r} cannot be created ({error.strerror or error})") from error
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise ValueError(f"--output_dir: {output_dir!r} is not writable; expected a folder the run can write into")


def _check_model_folder(option: str, path: str | None) -> None:
    """`path` must be an existing folder, or a name that can only mean a Hub repository."""
    if path is None or os.path.isdir(path) or is_url(path):
        return
    expected = "a local folder or a Hub model name (such as 'bert-base-multilingual-cased')"
    if os.path.exists(path):
        raise ValueError(f"{option}: {path!r} is a file; expected {expected}")
    if not _looks_like_hub_name(path):
        raise ValueError(f"{option}: {path!r}: no such folder; expected {expected}")


def _check_model_to_train_further(path: str, sources: list[str], target: str | None) -> None:
    """`--model_name_or_path` with `--do_train` (trained further from its weights) must be a MAN-MoE model of the
    run's languages: its config's `source_languages` are `sources` and its `unlabeled_languages` `[target]`."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=True)
    if config.model_type != "manmoe":
        raise ValueError(f"--model_name_or_path {path!r} is a {config.model_type!r} model; --do_train trains a "
                         "MAN-MoE model further (leave --model_name_or_path out to train a new one)")  # fmt: skip
    found = (list(config.source_languages), list(config.unlabeled_languages))
    if found != (sources, [target]):
        raise ValueError(f"--model_name_or_path {path!r} was trained with sources {found[0]} and target {found[1]}; "
                         f"this run has --source_languages {sources} and --target_language {target!r}: --do_train "
                         "trains a model further with its own languages")  # fmt: skip


def _check_file(option: str, path: str) -> None:
    """`path` must be an existing file, unless it is a URL (downloaded later)."""
    if is_url(path) or os.path.isfile(path):
        return
    what = "is a folder" if os.path.isdir(path) else "no such file"
    raise ValueError(f"{option}: {path!r}: {what}; expected an existing file (or an http(s) URL)")


def _looks_like_hub_name(name: str) -> bool:
    """A valid Hub repository id ('name' or 'owner/name') that does not read as a local path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name.startswith((".", "~", "/")) or os.sep != "/" and os.sep in name:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _json_field(path: str, key: str):
    try:
        with open(path, encoding="utf-8") as stream:
            value = json.load(stream)
    except (OSError, ValueError):
        return None
    return value.get(key) if isinstance(value, dict) else None


def _is_manmoe_card(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            head = stream.read(4096)
    except OSError:
        return False
    return head.startswith("---") and "manmoe" in head


__all__ = [
    "LOCK_NAME",
    "RunFolder",
    "RunFolderArguments",
    "check_run_arguments",
    "current_run_id",
    "holds_output_folder",
    "remove_run_outputs",
    "run_outputs",
]
