"""`examples/few_shot_conll.sh`: the runs it makes (a stand-in `python` records each command instead of training)."""

from __future__ import annotations

from pathlib import Path

from tests.examples.stand_in_python import option
from tests.examples.stand_in_python import run_wrapper as run_script


def run_wrapper(tmp_path: Path, **env: str) -> list[list[str]]:
    code, commands, stderr = run_script(tmp_path, "few_shot_conll.sh", str(tmp_path / "runs"), "--seed", "7", **env)
    assert code == 0, stderr
    return commands


def test_the_wrapper_runs_each_method_target_and_subset_seed_once(tmp_path):
    commands = run_wrapper(tmp_path)
    folders = [Path(option(command, "--output_dir")).name for command in commands]
    assert len(commands) == 21 and len(set(folders)) == 21
    assert folders[0] == "metaxl-de-n100-s1" and folders[-1] == "zero_shot-nl"
    for command, folder in zip(commands, folders, strict=True):
        method, target = folder.split("-")[:2]
        assert option(command, "--transfer_method") == method and option(command, "--target_language") == target
        assert option(command, "--source_languages") == [lang for lang in ("en", "de", "es", "nl") if lang != target][0]
        assert option(command, "--max_steps") == "500" and command[-2:] == ["--seed", "7"]
        assert (option(command, "--target_train_size"), option(command, "--target_subset_seed")) == (
            (None, None) if method == "zero_shot" else ("100", folder[-1])
        )
        assert (option(command, "--meta_gradient") == "finite_difference") == (method == "metaxl")
    assert option(commands[0], "--conll_dir") == str(tmp_path / "shared" / "data")


def test_finished_runs_are_kept_and_the_lists_can_be_narrowed(tmp_path):
    finished = tmp_path / "runs" / "joint-nl-n20-s2"
    finished.mkdir(parents=True)
    (finished / "all_results.json").write_text("{}")
    commands = run_wrapper(tmp_path, TARGETS="nl", SEEDS="1 2", METHODS="joint", N="20", STEPS="40")
    assert [Path(option(command, "--output_dir")).name for command in commands] == ["joint-nl-n20-s1"]
    assert option(commands[0], "--max_steps") == "40" and option(commands[0], "--eval_steps") == "20"
