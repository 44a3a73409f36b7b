"""`examples/run_ner.py` under `accelerate launch` with two CPU processes (gloo, as in
`tests/training/test_distributed.py`): a MetaXL run and a distilling run on the fixtures. The run folder is one run's
(the results and the model carry the same run id, no lock is left) and the model reloads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples.test_run_ner import load_run_ner, write_fixtures

REPO = Path(__file__).resolve().parents[2]


def launch(arguments: list[str]) -> None:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(REPO / "examples" / "run_ner.py"), *arguments]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["metaxl", "distillation"])
def test_run_ner_under_accelerate_launch(tmp_path, method):
    from transformers import AutoModelForTokenClassification

    files, vectors = write_fixtures(tmp_path)
    common = ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
              "--validation_files", *files, "--test_files", *files, "--word_vectors", *vectors, "--do_train",
              "--do_eval", "--max_steps", "3", "--per_device_train_batch_size", "2", "--report_to", "none",
              "--disable_tqdm", "true", "--use_cpu", "true"]  # fmt: skip
    out = tmp_path / "run"
    if method == "metaxl":
        extra = ["--transfer_method", "metaxl", "--target_train_size", "8", "--rtn_bottleneck", "4"]
    else:  # the teacher: a one-process fixture run, for every source language
        load_run_ner().main([*common, "--output_dir", str(tmp_path / "teacher")])
        extra = ["--teacher_models", f"all={tmp_path / 'teacher'}", "--distillation_alpha", "0.5",
                 "--target_distillation_weight", "1.0"]  # fmt: skip
    launch([*common, *extra, "--output_dir", str(out)])
    results = json.loads((out / "all_results.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert results["hardware"]["processes"] == 2
    assert results["run_id"] == config["manmoe_run_id"] and results["train"]["global_step"] == 3
    assert not (out / ".manmoe.lock").exists() and "dev" in results
    if method == "metaxl":
        assert config["rtn_bottleneck"] == 4
    else:
        assert results["distillation"]["teachers"], results["distillation"]
    model = AutoModelForTokenClassification.from_pretrained(out)
    assert (model.manmoe.transformation is not None) == (method == "metaxl")
