"""`StepTimer`: a `TrainerCallback` that records the wall time of every training step (shared by the benchmarks)."""

import time

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """`times[i]`: seconds of training step i (data loading of the step excluded, optimizer step included)."""

    def __init__(self):
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.start)
