"""Run an example wrapper script with a stand-in `python` on PATH that records each command instead of running it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_wrapper(tmp_path: Path, script: str, *arguments: str, **env: str) -> tuple[int, list[list[str]], str]:
    """Run `examples/<script>` with `arguments` (cwd `tmp_path`, MANMOE_SHARED=`tmp_path/shared`, plus `env`); returns
    its exit status, the recorded commands (each split into words) and its stderr."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "commands.txt"
    stand_in = bin_dir / "python"
    stand_in.write_text(f'#!/usr/bin/env bash\necho "$*" >> {log}\n')
    stand_in.chmod(0o755)
    environment = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", MANMOE_SHARED=str(tmp_path / "shared"),
                       **env)  # fmt: skip
    done = subprocess.run(["bash", str(REPO / "examples" / script), *arguments], env=environment, cwd=tmp_path,
                          capture_output=True, text=True)  # fmt: skip
    commands = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    log.unlink(missing_ok=True)
    return done.returncode, commands, done.stderr


def option(command: list[str], name: str, count: int = 1) -> list[str] | str | None:
    """The value (or `count` values) after `name` in `command`; None when `name` is absent."""
    if name not in command:
        return None
    start = command.index(name) + 1
    return command[start] if count == 1 else command[start : start + count]
