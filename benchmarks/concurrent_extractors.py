"""The BiLSTMs of F_s and F_p one after the other against both at once, one CPU thread each.

Usage: python benchmarks/concurrent_extractors.py [--workload synthetic|conll] [--threads 2] [--repeats 20]
           [--rows 256 64]

In prediction F_s and F_p read the same embeddings and do not depend on each other, and an LSTM's time steps are
small matrix products that a second intra-op thread speeds up by much less than 2x. So this times the two
`BiLSTMEncoder`s of the paper configuration (input 300 + 128 = 428, hidden 200 = 2 x 100, 2 layers), forward under
`torch.inference_mode()`, on `--rows` sentences whose lengths are drawn (seeded) from the synthetic workload's
`nl.train` (or `ned.train` with `--workload conll`), three ways:
- `sequential`: one after the other with `--threads` intra-op threads (what the model does);
- `sequential_one_thread`: the same with one thread;
- `python_threads`: each in its own Python thread with one intra-op thread each (the LSTM releases the GIL);
- `jit_fork`: F_p through `torch.jit.fork` (torch's inter-op pool) while F_s runs on the calling thread.
Each figure is the median of `--repeats` calls after three warm-up calls; the largest difference of each way's
outputs from `sequential`'s is reported (the same function; one thread rounds like any other count). Prints JSON and
a one-line summary per row count.
"""

from __future__ import annotations

import argparse
import json
import threading

import torch
from paper_bilstm import median_ms, paper_bilstm, train_sentence_lengths
from synthetic_workload import add_workload_arguments

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
add_workload_arguments(parser)
parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
parser.add_argument("--repeats", type=int, default=20, help="timed calls per way and row count; the median is quoted")
parser.add_argument("--rows", type=int, nargs="+", default=[256, 64], help="sentences per call")
options = parser.parse_args()
if options.threads:
    torch.set_num_threads(options.threads)
threads = torch.get_num_threads()
torch.manual_seed(options.seed)
shared, private = paper_bilstm(), paper_bilstm()
train_lengths = train_sentence_lengths(options)


def sequential(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, words, 428), mask (rows, words) -> h_s, h_p of the real words (num_words, 200) each."""
    return shared(x, mask).values, private(x, mask).values


def sequential_one_thread(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    torch.set_num_threads(1)
    try:
        return sequential(x, mask)
    finally:
        torch.set_num_threads(threads)


def python_threads(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    outputs = {}

    def run_private():
        torch.set_num_threads(1)
        with torch.inference_mode():
            outputs["private"] = private(x, mask).values

    worker = threading.Thread(target=run_private)
    torch.set_num_threads(1)
    try:
        worker.start()
        outputs["shared"] = shared(x, mask).values
        worker.join()
    finally:
        torch.set_num_threads(threads)
    return outputs["shared"], outputs["private"]


def jit_fork(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    future = torch.jit.fork(lambda: private(x, mask).values)
    return shared(x, mask).values, torch.jit.wait(future)


WAYS = {"sequential": sequential, "sequential_one_thread": sequential_one_thread,
        "python_threads": python_threads, "jit_fork": jit_fork}  # fmt: skip


results = []
with torch.inference_mode():
    for rows in options.rows:
        lengths = train_lengths[torch.randint(len(train_lengths), (rows,))]
        x = torch.randn(rows, int(lengths.max()), 428)
        mask = (torch.arange(x.shape[1]) < lengths[:, None]).long()
        reference = sequential(x, mask)
        difference = max(
            (output - expected).abs().max().item()
            for name, way in WAYS.items()
            if name != "sequential"
            for output, expected in zip(way(x, mask), reference, strict=True)
        )
        ms = {name: median_ms(way, x, mask, repeats=options.repeats) for name, way in WAYS.items()}
        results.append({"rows": rows, "words": int(lengths.sum()), "longest": int(lengths.max()),
                        "milliseconds": ms, "max_abs_difference": difference})  # fmt: skip
print(json.dumps({"threads": threads, "repeats": options.repeats, "rows": results}))
for r in results:
    timings = ", ".join(f"{name} {value} ms" for name, value in r["milliseconds"].items())
    shape = f"{r['rows']} rows ({r['words']} words, longest {r['longest']})"
    print(f"{shape}, F_s + F_p forward, {threads} threads: {timings}")
