"""The output folder of a run (`modeling_manmoe.run.run_folder`): which files are a run's outputs, what
`--overwrite_output_dir` removes, the lock that refuses a second run into one folder, and the cheap checks of a
run's arguments. None trains: `tests/examples/test_run_ner.py` runs the scripts end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from modeling_manmoe.run.run_folder import (
    LOCK_NAME,
    RunFolder,
    RunFolderArguments,
    check_run_arguments,
    current_run_id,
    holds_output_folder,
    remove_run_outputs,
    run_outputs,
)
from modeling_manmoe.run.setup import ModelArguments
from modeling_manmoe.training import PaperScheduleArguments


def finished_run_folder(folder: Path) -> Path:
    """A folder holding what a finished run writes, plus files of the user's that are no run's outputs."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("all_results.json", "model.safetensors", "trainer_state.json", "training_args.bin",
                 "manmoe_vocab.json", "modeling_manmoe.py", "predictions_test_nl.conll"):  # fmt: skip
        (folder / name).write_text("{}")
    (folder / "config.json").write_text(json.dumps({"model_type": "manmoe", "manmoe_run_id": "a" * 32}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "ManMoeTokenizer"}))
    (folder / "README.md").write_text("---\ntags:\n- manmoe\n---\n# a card\n")
    for sub in ("checkpoint-2", "hub_upload"):
        (folder / sub).mkdir()
        (folder / sub / "model.safetensors").write_text("x")
    (folder / "notes.txt").write_text("mine")  # the user's: never an output
    (folder / "data").mkdir()
    (folder / "data" / "config.json").write_text("{}")
    return folder


def test_run_outputs_are_the_files_a_run_writes_and_nothing_else(tmp_path):
    folder = finished_run_folder(tmp_path / "run")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "bert"}))  # another library's model
    (tmp_path / "other" / "README.md").write_text("# my notes\n")
    assert run_outputs(tmp_path / "other") == [] and run_outputs(tmp_path / "absent") == []
    expected = ["README.md", "all_results.json", "checkpoint-2", "config.json", "hub_upload", "manmoe_vocab.json",
                "model.safetensors", "modeling_manmoe.py", "predictions_test_nl.conll", "tokenizer_config.json",
                "trainer_state.json", "training_args.bin"]  # fmt: skip
    assert run_outputs(folder) == expected
    assert remove_run_outputs(folder) == expected
    assert sorted(path.name for path in folder.iterdir()) == ["data", "notes.txt"]
    assert (folder / "data" / "config.json").read_text() == "{}" and (folder / "notes.txt").read_text() == "mine"


def test_the_lock_refuses_a_second_run_and_is_removed_at_the_end(tmp_path):
    first, second = RunFolder(tmp_path), RunFolder(tmp_path)
    first.acquire()
    lock = json.loads((tmp_path / LOCK_NAME).read_text())
    assert lock["pid"] == os.getpid() and lock["host"] == socket.gethostname() and lock["run_id"] == first.run_id
    expected = rf"--output_dir: '{tmp_path}' is in use by another run \(pid {os.getpid()} on host .*; wait for it"
    with pytest.raises(ValueError, match=expected):
        second.acquire()
    second.release()  # a refused run never removes the lock it did not take
    assert (tmp_path / LOCK_NAME).exists()
    first.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_stale_lock_is_taken_over_with_a_warning_and_another_hosts_lock_is_refused(tmp_path, caplog):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(ended.stdout)  # a process of this host that has ended
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "started": "then"}))
    folder = RunFolder(tmp_path)
    with caplog.at_level("WARNING", logger="modeling_manmoe.run.run_folder"):
        folder.acquire()
    assert f"taking over the lock of a run that is no longer alive (pid {dead} on host" in caplog.text
    assert json.loads((tmp_path / LOCK_NAME).read_text())["run_id"] == folder.run_id
    folder.release()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": "elsewhere", "started": "then"}))
    with pytest.raises(ValueError, match=rf"in use by another run \(pid {dead} on host elsewhere since then"):
        RunFolder(tmp_path).acquire()  # whether it still runs cannot be told from here


def test_a_live_run_holding_the_folder_refuses_the_script_before_anything_is_loaded(tmp_path, monkeypatch):
    """A second `run_ner.py` into a folder whose lock a live process holds is refused at once, leaving the lock."""
    from tests.examples.test_run_ner import load_run_ner

    run_ner = load_run_ner()
    monkeypatch.setattr(run_ner, "load_split", lambda *args: pytest.fail("data loaded before the folder was checked"))
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out = tmp_path / "run"
        out.mkdir()
        lock = json.dumps({"pid": holder.pid, "host": socket.gethostname(), "run_id": "b" * 32, "started": "now"})
        (out / LOCK_NAME).write_text(lock)
        argv = ["--source_languages", "en", "--target_language", "nl", "--encoder_name_or_path", "bert-base-cased",
                "--output_dir", str(out), "--do_train", "--report_to", "none"]  # fmt: skip
        with pytest.raises(ValueError, match=rf"is in use by another run \(pid {holder.pid} on host"):
            run_ner.main(argv)
        assert (out / LOCK_NAME).read_text() == lock and sorted(os.listdir(out)) == [LOCK_NAME]
    finally:
        holder.kill()
        holder.wait()


def arguments(tmp_path: Path, **changes):
    """(model_args, data_args, training_args) of a small word-vector run into `tmp_path/run`, with `changes`."""
    vectors = []
    for lang in ("en", "de", "nl"):
        (tmp_path / f"{lang}.vec").write_text("1 2\na 0.5 0.5\n")
        vectors.append(f"{lang}={tmp_path / f'{lang}.vec'}")
    model = ModelArguments(word_vectors=vectors)
    data = SimpleNamespace(source_languages=["en", "de"], target_language="nl", train_files=[], validation_files=[],
                           test_files=[], conll_dir=None)  # fmt: skip
    settings = dict(output_dir=str(tmp_path / "run"), do_train=True, use_cpu=True, report_to="none")
    for name, value in changes.items():
        target = model if hasattr(model, name) else data if hasattr(data, name) else None
        if target is None:
            settings[name] = value
        else:
            setattr(target, name, value)
    return model, data, PaperScheduleArguments(**settings)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(source_languages=["en", "de", "en"]), r"--source_languages: \['en'\] given more than once"),
        (dict(target_language="de"), r"--target_language 'de' is also a source language \(--source_languages"),
        (dict(encoder_name_or_path="/absent/encoder", word_vectors=[]),
         r"--encoder_name_or_path: '/absent/encoder': no such folder; expected a local folder or a Hub model name"),
        (dict(model_name_or_path="./runs/absent"), r"--model_name_or_path: './runs/absent': no such folder"),
        (dict(word_vectors=["en=/absent/en.vec", "de=/absent/de.vec", "nl=/absent/nl.vec"]),
         r"--word_vectors en: '/absent/en.vec': no such file; expected an existing file \(or an http\(s\) URL\)"),
        (dict(word_vectors=["en=x.vec"]), r"--word_vectors: no vector file for language\(s\) \['de', 'nl'\]"),
        (dict(train_files=["nl=/absent/nl.conll"]), r"--train_files nl: '/absent/nl.conll': no such file"),
        (dict(max_steps=0), r"max_steps=0 \(--max_steps 0\): the Trainer would still train one step"),
        (dict(resume_from_checkpoint="/absent/checkpoint-4"), r"resume_from_checkpoint: '/absent/checkpoint-4' is not"),
        (dict(resume_from_checkpoint="last"), r"resume_from_checkpoint: no complete checkpoint-N folder in"),
    ],
    ids=["repeated-source", "target-is-a-source", "encoder-folder", "model-folder", "vector-file",
         "vector-language", "data-file", "max-steps-0", "resume-path", "resume-last"],
)  # fmt: skip
def test_cheap_checks_name_the_option(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        holds_output_folder(check_run_arguments)(*arguments(tmp_path, **changes))
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_output_folder_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=rf"--output_dir: '{tmp_path / 'file'}' is a file; expected a folder"):
        holds_output_folder(check_run_arguments)(*arguments(tmp_path, output_dir=str(tmp_path / "file")))
    with pytest.raises(ValueError, match=r"--output_dir: '.*' cannot be created"):
        holds_output_folder(check_run_arguments)(*arguments(tmp_path, output_dir=str(tmp_path / "file" / "run")))
    if os.geteuid() != 0:  # root writes everywhere
        (tmp_path / "locked").mkdir(mode=0o500)
        with pytest.raises(ValueError, match=r"--output_dir: '.*locked' is not writable"):
            holds_output_folder(check_run_arguments)(*arguments(tmp_path, output_dir=str(tmp_path / "locked")))


def test_the_folder_rule_refuses_clears_or_continues(tmp_path):
    folder = finished_run_folder(tmp_path / "run")
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    check = holds_output_folder(check_run_arguments)
    expected = (
        r"--output_dir: '.*run' holds the outputs of another run \(all_results.json, checkpoint-2, hub_upload, "
        r"model.safetensors, predictions_test_nl.conll, training_args.bin and 6 more\); give an empty or new folder, "
        r"--overwrite_output_dir to remove them first, or --resume_from_checkpoint last to continue that run"
    )
    with pytest.raises(ValueError, match=expected):
        check(*arguments(tmp_path))
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before, "left untouched"
    for evaluating in ({"do_predict": True}, {"do_eval": True}):  # an evaluation-only run writes results too
        with pytest.raises(ValueError, match=r"holds the outputs of another run .*\(an evaluation-only run writes "
                           r"all_results.json and predictions"):  # fmt: skip
            check(*arguments(tmp_path, do_train=False, **evaluating))
        check(*arguments(tmp_path, do_train=False, model_name_or_path=str(folder), **evaluating))  # in its folder
    check(*arguments(tmp_path, do_train=False, do_predict=True, output_dir=str(tmp_path / "evaluation")))
    with pytest.raises(ValueError, match="--overwrite_output_dir would remove the model that --model_name_or_path"):
        check(*arguments(tmp_path, model_name_or_path=str(folder)), RunFolderArguments(overwrite_output_dir=True))
    with pytest.raises(ValueError, match="--overwrite_output_dir and --resume_from_checkpoint contradict each other"):
        check(*arguments(tmp_path, resume_from_checkpoint="last"), RunFolderArguments(overwrite_output_dir=True))
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before
    check(*arguments(tmp_path), RunFolderArguments(overwrite_output_dir=True))
    assert sorted(path.name for path in folder.iterdir()) == ["data", "notes.txt"]


def test_a_run_id_is_made_per_run_and_given_while_it_holds_the_folder(tmp_path):
    seen = []

    @holds_output_folder
    def main(output_dir):
        folder = check_run_arguments(*arguments(tmp_path, output_dir=output_dir))
        seen.append((folder.run_id, current_run_id(), (Path(output_dir) / LOCK_NAME).exists()))

    main(str(tmp_path / "a"))
    main(str(tmp_path / "a"))  # the lock was released: the same folder again
    (first, given, locked), (second, _, _) = seen
    assert first == given and locked and first != second and len(first) == 32
    assert not (tmp_path / "a" / LOCK_NAME).exists()
    assert current_run_id() != current_run_id(), "outside a run: a new id each time"
