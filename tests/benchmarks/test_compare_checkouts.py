"""`benchmarks/compare_checkouts.py` at tiny synthetic sizes: a checkout compared with itself, and a bad `--base`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

TINY = ["--train_sentences", "100", "--dev_sentences", "30", "--vocab_size", "300", "--dim", "16", "--rounds", "2",
        "--train_batches", "2", "--threads", "1", "--batch_size", "8"]  # fmt: skip


def run_script(*arguments: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "benchmarks/compare_checkouts.py", "--synthetic_dir", str(tmp_path), *arguments]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_the_repository_against_itself_gives_the_same_logits(tmp_path):
    result = run_script("--base", str(REPO), *TINY, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[0])
    assert report["dev_sentences"] == 30 and report["max_logit_difference"] == 0.0
    assert set(report["prediction_sentences_per_second"]) == {"base", "working_tree"}
    assert report["prediction_speedup"] > 0 and report["training_speedup"] > 0
    assert all(value > 0 for value in report["training_batch_seconds"].values())
    assert result.stdout.splitlines()[1].startswith("compare (synthetic, 1 threads, median of 2 alternating passes)")


def test_a_base_without_the_package_is_refused(tmp_path):
    result = run_script("--base", str(tmp_path), tmp_path=tmp_path)
    assert result.returncode == 2
    assert "no modeling_manmoe/__init__.py there" in result.stderr
