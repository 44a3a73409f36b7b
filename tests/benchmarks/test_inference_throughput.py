"""`benchmarks/inference_throughput.py` at tiny synthetic sizes: its JSON, entity scores and argument checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

TINY = ["--train_sentences", "40", "--dev_sentences", "30", "--vocab_size", "300", "--dim", "16", "--repeats", "1",
        "--threads", "1", "--batch_size", "8"]  # fmt: skip


def run_script(*arguments: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "benchmarks/inference_throughput.py", "--synthetic_dir", str(tmp_path), *arguments]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_prints_throughput_and_entity_scores_of_the_predictions(tmp_path):
    result = run_script(*TINY, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[0])
    assert report["sentences"] == 30 and report["split"] == "dev" and report["precision"] == "float32"
    assert report["sentences_per_second"] > 0
    assert set(report["entity_scores"]) == {"precision", "recall", "f1"}
    assert all(0 <= value <= 100 for value in report["entity_scores"].values())
    assert report["device"] == "cpu" and "peak_device_memory_mib" not in report
    assert 0 < report["rss_after_imports_mib"] <= report["peak_rss_mib"]
    assert 0 < report["rss_file_mib_at_end"] < report["peak_rss_mib"]  # Linux reports RssFile
    assert result.stdout.splitlines()[1].startswith("inference (synthetic, float32, cpu, 1 threads, batch 8")


def test_the_word_table_holds_the_workloads_words_unless_asked_for_the_whole_files(tmp_path):
    """`--word_vocabulary corpus` (the default, the original implementation's vocabulary) keeps fewer rows than
    `file` (all 4 x 300 words + padding and unknown) and predicts the same tags: the same scores."""
    reports = {}
    for vocabulary in ("corpus", "file"):
        result = run_script(*TINY, "--word_vocabulary", vocabulary, tmp_path=tmp_path)
        assert result.returncode == 0, result.stderr
        reports[vocabulary] = json.loads(result.stdout.splitlines()[0])
        assert reports[vocabulary]["word_vocabulary"] == vocabulary
    assert reports["file"]["word_table_rows"] == 2 + 4 * 300
    assert 2 < reports["corpus"]["word_table_rows"] < reports["file"]["word_table_rows"]
    assert reports["corpus"]["entity_scores"] == reports["file"]["entity_scores"]


def test_test_split_needs_the_conll_workload(tmp_path):
    result = run_script("--split", "test", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "--split test needs --workload conll" in result.stderr


def test_the_compute_floor_is_a_cpu_figure(tmp_path):
    result = run_script("--device", "cuda", "--count_flops", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "--count_flops compares with this CPU's matmul rate" in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_a_gpu_and_tags_as_on_the_cpu(tmp_path):
    """`--device cuda`: the same random model (same seed) on the GPU, through cuDNN's LSTM (TF32 as PyTorch's
    defaults allow), tags the dev set as on the CPU up to a few argmax ties; the report names the GPU."""
    reports = {}
    for device in ("cpu", "cuda"):
        result = run_script(*TINY, "--device", device, tmp_path=tmp_path)
        assert result.returncode == 0, result.stderr
        reports[device] = json.loads(result.stdout.splitlines()[0])
    gpu = reports["cuda"]
    assert gpu["device"].startswith("cuda") and gpu["device_name"] and gpu["peak_device_memory_mib"] > 0
    assert abs(gpu["entity_scores"]["f1"] - reports["cpu"]["entity_scores"]["f1"]) <= 2.0
