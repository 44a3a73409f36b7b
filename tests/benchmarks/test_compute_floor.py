"""`benchmarks/compute_floor.py`: operation counts of known layers, per module, and the floor arithmetic."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.conftest import load_script

compute_floor = load_script("benchmarks/compute_floor.py")


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(12, 5, bidirectional=True, batch_first=True)
        self.head = nn.Linear(10, 3)

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
        return self.head(out)


def test_counts_the_lstm_gates_at_real_steps_only_and_the_head_per_module():
    model, x, lengths = Tagger(), torch.randn(3, 7, 12), torch.tensor([7, 4, 2])
    total, modules = compute_floor.count_flops(lambda: model(x, lengths), "Tagger", depth=1)
    lstm = 2 * 2 * int(lengths.sum()) * 4 * 5 * (12 + 5)  # 2 flops per MAC, 2 directions, real time steps
    head = 2 * 3 * 7 * 10 * 3  # every padded position
    assert modules == pytest.approx({"lstm": lstm / 1e9, "head": head / 1e9})
    assert total == pytest.approx((lstm + head) / 1e9)


def test_counts_the_lockstep_bilstms_in_place_products():
    """Its recurrence (in-place `baddbmm_`) and its column blocks' input products (in-place `addmm_`) are counted too:
    `nn.LSTM`'s operations at real steps, less the first step's recurrent product (from the zero state, which the
    lockstep skips)."""
    from modeling_manmoe.kernels.lstm import lockstep_bidirectional_lstm

    lstm, lengths = nn.LSTM(12, 5, bidirectional=True, batch_first=True), torch.tensor([7, 4, 2])
    blocks = [torch.randn(3, 7, 8), torch.randn(3, 7, 4)]
    words = int(lengths.sum())
    expected = 2 * 2 * 4 * 5 * (words * 12 + (words - len(lengths)) * 5)
    with torch.no_grad():
        total, _ = compute_floor.count_flops(lambda: lockstep_bidirectional_lstm(blocks, lengths, lstm), "x")
    assert total == pytest.approx(expected / 1e9)


def test_floor_report_divides_the_operations_by_the_matmul_rate(monkeypatch):
    monkeypatch.setattr(compute_floor, "matmul_gflops", lambda: 50.0)
    report = compute_floor.floor_report(10.0, {"a": 10.0}, seconds=0.5, items=100)
    assert report == {"gflop": 10.0, "gflop_by_module": {"a": 10.0}, "achieved_gflops": 20.0, "matmul_gflops": 50.0,
                      "floor_seconds": 0.2, "ceiling_per_second": 500.0}  # fmt: skip
    assert "at most 500 sentences/s" in compute_floor.floor_summary(report, "sentences")


def test_matmul_rate_is_positive_and_finite():
    assert 0 < compute_floor.matmul_gflops(size=64, repeats=2) < float("inf")
