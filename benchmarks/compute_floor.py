"""How close a pass runs to this machine's arithmetic limit (shared by the throughput benchmarks).

`count_flops(run)` counts the floating-point operations of `run()` with `torch.utils.flop_counter.FlopCounterMode`
(matrix products, convolutions and the LSTMs' gate products; element-wise work is not counted), in total and per
module below `root`; `matmul_gflops()` times a large float32 matrix product at the current thread count, the best rate
these cores reach. Operations / that rate = the compute floor: no implementation of the same arithmetic in float32
runs faster on this machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Float32 GFLOP/s of a `size`-square matrix product at the current thread count (the best of `repeats`)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float("inf")
    for _ in range(repeats + 1):  # the first product warms up
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def in_place_addmm_flop(self_shape, mat1_shape, mat2_shape, *args, out_shape=None, **kwargs) -> int:
    """`Tensor.addmm_`'s products, which `FlopCounterMode` does not count by itself (it counts `addmm`, `out=` too):
    the lockstep BiLSTM's recurrence and its column blocks' input products are in-place `addmm_`."""
    rows, inner = mat1_shape
    return 2 * rows * inner * mat2_shape[1]


def in_place_baddbmm_flop(self_shape, batch1_shape, batch2_shape, *args, out_shape=None, **kwargs) -> int:
    """`Tensor.baddbmm_`'s products (not counted by `FlopCounterMode` either): the lockstep recurrence's
    hidden-to-hidden products, both directions in one batched product."""
    batches, rows, inner = batch1_shape
    return 2 * batches * rows * inner * batch2_shape[2]


def count_flops(run: Callable[[], object], root: str, depth: int = 2) -> tuple[float, dict[str, float]]:
    """(total GFLOP of `run()`, GFLOP per module `depth` levels below the module named `root`, e.g.
    {"manmoe.inputs": 19.5, ...} for root "ManMoeForTokenClassification")."""
    with FlopCounterMode(
        display=False,
        custom_mapping={torch.ops.aten.addmm_: in_place_addmm_flop, torch.ops.aten.baddbmm_: in_place_baddbmm_flop},
    ) as counter:
        run()
    prefix = root + "."
    modules = {name.removeprefix(prefix): sum(counts.values()) / 1e9 for name, counts in counter.get_flop_counts().items()
               if name.startswith(prefix) and name.count(".") == depth}  # fmt: skip
    return counter.get_total_flops() / 1e9, modules


def floor_report(gflop: float, modules: dict[str, float], seconds: float, items: float) -> dict:
    """JSON fields: the pass's GFLOP (and per module), the rate it ran at in `seconds`, the matmul rate, and the floor
    (seconds) with the `items`/s it caps."""
    peak = matmul_gflops()
    floor = gflop / peak
    return {"gflop": round(gflop, 2), "gflop_by_module": {k: round(v, 2) for k, v in modules.items()},
            "achieved_gflops": round(gflop / seconds, 1), "matmul_gflops": round(peak, 1),
            "floor_seconds": round(floor, 4), "ceiling_per_second": round(items / floor, 1)}  # fmt: skip


def floor_summary(report: dict, what: str) -> str:
    """One line: the pass's GFLOP, its rate, the matmul rate and the ceiling in `what`/s."""
    return (f"compute: {report['gflop']} GFLOP per pass, run at {report['achieved_gflops']} GFLOP/s; a 2048-square "
            f"float32 matmul reaches {report['matmul_gflops']} GFLOP/s here: a floor of {report['floor_seconds']:.3f} "
            f"s per pass, at most {report['ceiling_per_second']:.0f} {what}/s")  # fmt: skip
