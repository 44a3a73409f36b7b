"""Max-over-time convolutions of several widths computed as one matrix product over the valid windows only.

The CharCNN takes, for each width, a `Conv1d` at every window start of a word's characters, then the maximum over
starts. Here every width is
one block of a single matrix product: a width-w kernel is a width-`max_width` kernel whose last positions are zero,
and only the windows that start at a valid position are gathered (none over padding). The result is the same
function as the per-width `conv1d` (up to float rounding); the convolutions' own parameters are used, so the state
dict does not change.

The language discriminator D has the same shape of computation but keeps its per-language `conv1d`: float rounding
differences in D change a training run's trajectory (a 100-step Webis run moved by 3.5 accuracy points), and the
published runs were trained with it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable


def max_pooled_windows(x: torch.Tensor, valid_starts: torch.Tensor, convs: nn.ModuleList) -> torch.Tensor:
    """max over valid window starts of each width's convolution, per row.

    Args:
        x: (N, L, E) inputs; positions past L read as zeros.
        valid_starts: (N, widths) long: how many window starts (0, 1, ...) of each width are valid in each row.
        convs: the `nn.Conv1d(E, F, width)` of each width, in the order of `valid_starts`' columns.

    Returns:
        (N, F * widths): the maxima, width blocks in the order of `convs`; -inf where a row has no valid start.
    """
    max_width = max(conv.kernel_size[0] for conv in convs)
    n, length, dim = x.shape
    padded = nn.functional.pad(x, (0, 0, 0, max_width - 1)).reshape(n * (length + max_width - 1), dim)
    row, start = torch.nonzero(
        torch.arange(length, device=x.device)[None, :] < valid_starts.max(dim=1).values[:, None], as_tuple=True
    )  # (V,) each: the windows to compute
    positions = (row * (length + max_width - 1) + start)[:, None] + torch.arange(max_width, device=x.device)
    # index_select (not advanced indexing): its backward adds the windows' gradients in a fixed order on CPU
    windows = torch.index_select(padded, 0, positions.reshape(-1)).reshape(len(row), max_width * dim)
    kernels = torch.cat([nn.functional.pad(conv.weight, (0, max_width - conv.weight.shape[-1])) for conv in convs])
    kernels = kernels.transpose(1, 2).reshape(kernels.shape[0], max_width * dim)  # (F * widths, max_width * E)
    out = torch.addmm(torch.cat([conv.bias for conv in convs]), windows, kernels.T)  # (V, F * widths)
    if (valid_starts != valid_starts[:, :1]).any():  # a width's start past its last (never in the CharCNN)
        invalid = (start[:, None] >= valid_starts[row]).repeat_interleave(convs[0].out_channels, dim=1)
        out = out.masked_fill(invalid, float("-inf"))
    return RowMaximum.apply(out, row, n)


class RowMaximum(torch.autograd.Function):
    """`pooled[r] = max(-inf, max of values[v] over v with rows[v] == r)`, column-wise: `scatter_reduce(amax)`
    with `include_self=True` into a -inf tensor, and the very gradient torch gives it (a row's gradient split
    evenly among the values that reach its maximum), computed with row-wise `index_select` / `index_add` instead of
    the (V, F) expanded-index `gather` / `scatter_add` of torch's generic backward, several times cheaper on CPU.
    The counts are sums of ones (exact in any order), so the result is bitwise the same.
    """

    @staticmethod
    def forward(ctx, values: torch.Tensor, rows: torch.LongTensor, num_rows: int) -> torch.Tensor:
        """values (V, F), rows (V,) -> (num_rows, F)."""
        pooled = values.new_full((num_rows, values.shape[1]), float("-inf"))
        pooled = pooled.scatter_reduce(0, rows[:, None].expand_as(values), values, reduce="amax", include_self=True)
        ctx.save_for_backward(values, rows, pooled)
        return pooled

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        values, rows, pooled = ctx.saved_tensors
        is_max = values == torch.index_select(pooled, 0, rows)  # (V, F)
        # torch's formula: count = (self == result) + scatter_add of is_max, with self the -inf start
        count = (pooled == float("-inf")).to(values.dtype).index_add(0, rows, is_max.to(values.dtype))
        return is_max * torch.index_select(grad / count, 0, rows), None, None
