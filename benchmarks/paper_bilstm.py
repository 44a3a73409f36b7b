"""What the BiLSTM benchmarks share: the paper configuration's BiLSTM, the workload's sentence lengths, a median
timing."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from synthetic_workload import workload_files

from modeling_manmoe.data import read_conll
from modeling_manmoe.extractors import BiLSTMEncoder


def paper_bilstm() -> BiLSTMEncoder:
    """The paper configuration's extractor BiLSTM in eval mode (no dropout): input 300 + 128 = 428, hidden 200 =
    2 x 100, 2 layers."""
    return BiLSTMEncoder(428, 200, num_layers=2, input_dropout=0.5, dropout=0.5).eval()


def train_sentence_lengths(options: argparse.Namespace) -> torch.Tensor:
    """(sentences,) word counts of the workload's nl training file (synthetic `nl.train` or CoNLL `ned.train`)."""
    return torch.tensor([len(words) for words in read_conll(workload_files(options)["train"]["nl"], "nl")["tokens"]])


def median_ms(call: Callable[..., object], *args, repeats: int, warmup: int = 3) -> float:
    """Median milliseconds of `repeats` calls of `call(*args)`, after `warmup` untimed ones."""
    times = []
    for index in range(warmup + repeats):
        started = time.perf_counter()
        call(*args)
        if index >= warmup:
            times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)
