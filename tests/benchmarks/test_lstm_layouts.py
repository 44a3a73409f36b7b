"""`benchmarks/lstm_layouts.py` at a tiny synthetic size: every layout (the package's lockstep one included) computes
what `nn.LSTM` on packed sequences computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_lockstep_padded_and_chunked_layouts_equal_the_packed_bilstm(tmp_path):
    command = [sys.executable, "benchmarks/lstm_layouts.py", "--synthetic_dir", str(tmp_path),
               "--train_sentences", "40", "--dev_sentences", "10", "--vocab_size", "300", "--dim", "16",
               "--repeats", "1", "--threads", "1"]  # fmt: skip
    result = subprocess.run(
        command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[0])
    assert [(shape["rows"], shape["gradients"]) for shape in report["shapes"]] == [
        (112, True), (48, True), (64, False), (256, False)
    ]  # fmt: skip
    for shape in report["shapes"]:
        assert set(shape["milliseconds"]) == {"lockstep", "packed", "padded", "chunks_of_16", "chunks_of_32"}
        assert all(value > 0 for value in shape["milliseconds"].values())
        assert shape["max_abs_difference"] < 1e-5  # the same function: only float rounding differs
    assert len(result.stdout.splitlines()) == 1 + len(report["shapes"])
