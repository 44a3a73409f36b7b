"""`benchmarks/concurrent_extractors.py` at a tiny synthetic size: every way computes what F_s then F_p compute."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_concurrent_ways_equal_the_sequential_extractors(tmp_path):
    command = [sys.executable, "benchmarks/concurrent_extractors.py", "--synthetic_dir", str(tmp_path),
               "--train_sentences", "40", "--dev_sentences", "10", "--vocab_size", "300", "--dim", "16",
               "--repeats", "1", "--threads", "2", "--rows", "24", "8"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[0])
    assert report["threads"] == 2
    assert [shape["rows"] for shape in report["rows"]] == [24, 8]
    for shape in report["rows"]:
        assert set(shape["milliseconds"]) == {"sequential", "sequential_one_thread", "python_threads", "jit_fork"}
        assert all(value > 0 for value in shape["milliseconds"].values())
        assert shape["max_abs_difference"] < 1e-5  # the same function: only float rounding differs
    assert len(result.stdout.splitlines()) == 1 + len(report["rows"])
