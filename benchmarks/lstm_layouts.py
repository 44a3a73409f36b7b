"""The BiLSTM extractor's time in several layouts: `BiLSTMEncoder`'s own (`lockstep_bidirectional_lstm`: both
directions at once, a hand-written backward), `nn.LSTM` on packed sequences (the package's layout before the lockstep
one), and oneDNN on padded rows, one direction at a time, each sentence reversed within its own length for the
backward direction (the same function: real words never read padding), on the whole batch or on length-sorted
chunks of rows.

Usage: python benchmarks/lstm_layouts.py [--workload synthetic|conll] [--threads 2] [--repeats 20] [--chunks 16 32]

Shapes: the paper configuration's BiLSTM (input 300 + 128 = 428, hidden 200 = 2 x 100, 2 layers) on the batches one
training iteration and one prediction pass give it: 112 rows with gradients (F_s in the main step: 3 labeled + 4
unlabeled languages x 16), 48 with gradients (F_p, the labeled rows), 64 without (F_s for D's own step) and 256
without (prediction, batch 256). Sentence lengths are drawn (seeded) from the synthetic workload's `nl.train`
(mean about 14 words, max 60), or `ned.train` with `--workload conll`. Dropout is off (eval mode), so every
layout computes the same numbers up to float rounding; the largest difference from `nn.LSTM` packed is reported.
Each figure is the median of `--repeats` timed calls (forward, plus backward of the sum where the shape has
gradients) after three warm-up calls. Prints JSON and a one-line summary per shape.
"""

from __future__ import annotations

import argparse
import json

import torch
from paper_bilstm import median_ms, paper_bilstm, train_sentence_lengths
from synthetic_workload import add_workload_arguments
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

SHAPES = [(112, True), (48, True), (64, False), (256, False)]  # (rows, with gradients)

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
add_workload_arguments(parser)
parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
parser.add_argument("--repeats", type=int, default=20, help="timed calls per layout and shape; the median is quoted")
parser.add_argument("--chunks", type=int, nargs="*", default=[16, 32], help="rows per length-sorted chunk")
options = parser.parse_args()
if options.threads:
    torch.set_num_threads(options.threads)
torch.manual_seed(options.seed)
encoder = paper_bilstm()
lstm = encoder.lstm
train_lengths = train_sentence_lengths(options)


def one_direction(x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
    """(rows, words, in) -> (rows, words, 100): one direction of one layer through `torch.lstm` on padded rows
    (oneDNN on CPU for float32)."""
    weights = [getattr(lstm, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    zeros = x.new_zeros(1, x.shape[0], lstm.hidden_size)
    return torch.lstm(x, (zeros, zeros), weights, True, 1, 0.0, False, False, True)[0]


def padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(rows, words, 428), lengths (rows,) -> (rows, words, 200), zeros at padding."""
    rows, words, _ = x.shape
    steps = torch.arange(words)
    real = steps < lengths[:, None]  # (rows, words)
    reverse = torch.where(real, lengths[:, None] - 1 - steps, steps).unsqueeze(-1)
    for layer in range(lstm.num_layers):
        forward = one_direction(x, layer, "")
        backward = one_direction(x.gather(1, reverse.expand(rows, words, x.shape[-1])), layer, "_reverse")
        x = torch.cat([forward, backward.gather(1, reverse.expand(rows, words, backward.shape[-1]))], -1)
    return x * real.unsqueeze(-1)


def chunked(x: torch.Tensor, lengths: torch.Tensor, size: int) -> torch.Tensor:
    """`padded` on chunks of `size` rows sorted by length, each trimmed to its longest sentence."""
    order = torch.argsort(lengths, descending=True, stable=True)
    output = x.new_zeros(x.shape[0], x.shape[1], 2 * lstm.hidden_size)
    for start in range(0, len(order), size):
        rows = order[start : start + size]
        longest = int(lengths[rows].max())
        part = padded(x[rows, :longest], lengths[rows])
        output = output.index_put((rows,), torch.nn.functional.pad(part, (0, 0, 0, x.shape[1] - longest)))
    return output


def packed(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`nn.LSTM` on packed sequences."""
    output, _ = lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    return pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])[0]


def lockstep(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`BiLSTMEncoder` (eval): `lockstep_bidirectional_lstm` on CPU."""
    return encoder(x, (torch.arange(x.shape[1]) < lengths[:, None]).long()).padded()


def timed_call(layout, x: torch.Tensor, lengths: torch.Tensor, gradients: bool) -> None:
    """One timed call: the layout's forward, plus the backward of its sum where the shape has gradients."""
    if gradients:
        layout(x, lengths).sum().backward()
    else:
        with torch.inference_mode():
            layout(x, lengths)


results = []
for rows, gradients in SHAPES:
    lengths = train_lengths[torch.randint(len(train_lengths), (rows,))]
    x = torch.randn(rows, int(lengths.max()), lstm.input_size, requires_grad=gradients)
    layouts = {"lockstep": lockstep, "packed": packed, "padded": padded}
    layouts |= {f"chunks_of_{size}": (lambda a, b, s=size: chunked(a, b, s)) for size in options.chunks if size < rows}
    with torch.no_grad():
        reference = packed(x, lengths)
        difference = max(
            (layout(x, lengths) - reference).abs().max().item() for name, layout in layouts.items() if name != "packed"
        )
    ms = {
        name: median_ms(timed_call, layout, x, lengths, gradients, repeats=options.repeats)
        for name, layout in layouts.items()
    }
    results.append({"rows": rows, "gradients": gradients, "words": int(lengths.sum()), "longest": int(lengths.max()),
                    "milliseconds": ms, "max_abs_difference": difference})  # fmt: skip
print(json.dumps({"threads": torch.get_num_threads(), "repeats": options.repeats, "shapes": results}))
for r in results:
    timings = ", ".join(f"{name} {value} ms" for name, value in r["milliseconds"].items())
    print(f"{r['rows']} rows ({r['words']} words, longest {r['longest']}, "
          f"{'forward + backward' if r['gradients'] else 'forward'}): {timings}")  # fmt: skip
