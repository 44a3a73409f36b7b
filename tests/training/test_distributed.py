"""Two-process CPU (gloo) data-parallel training through `accelerate launch`, in both adversarial modes, with
gradient accumulation. On a machine without GPUs, `accelerate launch --multi_gpu --num_processes 2` starts two
CPU processes through torchrun (gloo); accelerate 1.15's `--cpu --num_processes 2` starts only one process
unless MPI is configured. The GPUs of a machine that has them are hidden from the two processes (one GPU cannot hold
two NCCL ranks: "Duplicate GPU detected")."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["alternating", "gradient_reversal"])
def test_two_process_accelerate_launch(tmp_path, mode):
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(REPO / "tests" / "training" / "ddp_run.py"), str(tmp_path), mode]  # fmt: skip
    # two CPU processes (gloo) also where a GPU is present: one GPU cannot hold two NCCL ranks
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    written = json.loads((tmp_path / "log_history.json").read_text())
    assert written["world_size"] == 2 and written["weights_in_sync"]
    # alternating: D is updated by its own steps only; one optimizer in gradient reversal mode (D's gradients used)
    assert written["discriminator_gradients_at_main_steps"] == [mode == "gradient_reversal"] * 6
    history = written["log_history"]
    train_logs = [h for h in history if "loss" in h]
    assert [h["step"] for h in train_logs] == [2, 4, 6], "each training log appears once"
    assert all("task_loss_en" in h and "d_loss" in h for h in train_logs)
    assert [h["step"] for h in history if "eval_selection_score" in h] == [3, 6]
