"""Max-over-time convolutions of several widths (the CharCNN's and the discriminator's), computed with fewer
operations than a `Conv1d` per width followed by a max.

A width-w kernel is treated as a width-`max_width` kernel whose last positions are zero, and each function uses the
convolutions' own parameters:

- `max_pooled_windows`: one matrix product over the windows that start at a valid position (none over padding), for
  the discriminator, which reads continuous features.
- `max_pooled_char_windows`: for the CharCNN. The characters come from a small alphabet, so each kernel position's
  product with each distinct character of the batch is computed once, and a window is the sum of `max_width` of
  those products (a table lookup) rather than a (max_width x E)-long dot product per filter: about 15x fewer
  operations and no (windows, F) tensor held.

Both agree with the per-width `conv1d` up to float rounding (`tests/test_kernels_char_windows.py`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .distinct_words import distinct_rows


def max_pooled_windows(
    x: torch.Tensor, valid_starts: torch.Tensor, convs: nn.ModuleList, nonzero_lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """max over valid window starts of each width's convolution, per row.

    Args:
        x: (N, L, E) inputs; positions past L read as zeros.
        valid_starts: (N, widths) long: how many window starts (0, 1, ...) of each width are valid in each row.
        convs: the `nn.Conv1d(E, F, width)` of each width, in the order of `valid_starts`' columns.
        nonzero_lengths: (N,) optional: each row's positions from this one on are zeros. A window that starts there
            reads only zeros and equals the bias, so those windows are not computed: the bias stands for them, once
            per row (the same maxima; the gradient the bias would get from them, which torch splits evenly among tied
            maxima, goes to it whole).

    Returns:
        (N, F * widths): the maxima, width blocks in the order of `convs`; -inf where a row has no valid start.
    """
    max_width = max(conv.kernel_size[0] for conv in convs)
    n, length, dim = x.shape
    computed = valid_starts.max(dim=1).values
    if nonzero_lengths is not None:
        computed = torch.minimum(computed, nonzero_lengths)
    padded = nn.functional.pad(x, (0, 0, 0, max_width - 1)).reshape(n * (length + max_width - 1), dim)
    row, start = torch.nonzero(
        torch.arange(length, device=x.device)[None, :] < computed[:, None], as_tuple=True
    )  # (V,) each: the windows to compute
    positions = (row * (length + max_width - 1) + start)[:, None] + torch.arange(max_width, device=x.device)
    # index_select (not advanced indexing): its backward adds the windows' gradients in a fixed order on CPU
    windows = torch.index_select(padded, 0, positions.reshape(-1)).reshape(len(row), max_width * dim)
    kernels = torch.cat([nn.functional.pad(conv.weight, (0, max_width - conv.weight.shape[-1])) for conv in convs])
    kernels = kernels.transpose(1, 2).reshape(kernels.shape[0], max_width * dim)  # (F * widths, max_width * E)
    bias = torch.cat([conv.bias for conv in convs])
    out = torch.addmm(bias, windows, kernels.T)  # (V, F * widths)
    filters = convs[0].out_channels
    if (valid_starts != valid_starts[:, :1]).any():  # a width's start past its last (never in the CharCNN)
        invalid = (start[:, None] >= valid_starts[row]).repeat_interleave(filters, dim=1)
        out = out.masked_fill(invalid, float("-inf"))
    if nonzero_lengths is not None:
        zero_windows = valid_starts > nonzero_lengths[:, None]  # (N, widths): a valid start reads only zeros
        bias_rows = torch.nonzero(zero_windows.any(dim=1)).squeeze(1)
        if len(bias_rows):
            absent = ~zero_windows[bias_rows].repeat_interleave(filters, dim=1)
            out = torch.cat([out, bias.expand(len(bias_rows), -1).masked_fill(absent, float("-inf"))])
            row = torch.cat([row, bias_rows])
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
        is_max = float_equal(values, torch.index_select(pooled, 0, rows))  # (V, F) 1.0 / 0.0
        # torch's formula: count = (self == result) + scatter_add of is_max, with self the -inf start
        count = float_equal(pooled, pooled.new_tensor(float("-inf"))).index_add_(0, rows, is_max)
        return is_max.mul_(torch.index_select(grad / count, 0, rows)), None, None


def float_equal(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`(a == b)` as 1.0 / 0.0 in `a`'s dtype, written by the comparison itself: on CPU several times faster than a
    bool tensor converted (or multiplied with a float one)."""
    return torch.eq(a, b, out=torch.empty(torch.broadcast_shapes(a.shape, b.shape), dtype=a.dtype, device=a.device))


def max_pooled_char_windows(
    char_ids: torch.LongTensor, char_vectors: torch.Tensor, convs: nn.ModuleList, chunk_windows: int = 2048
) -> torch.Tensor:
    """The CharCNN's max-pooled convolutions as table lookups: the same function as `max_pooled_windows` over the
    character vectors of `char_ids` (one valid start per real character, zeros past the last column), with a
    tiny fraction of its operations.

    A convolution is linear in its inputs, so a window's output is the bias plus, for each kernel position k, the
    k-th kernel slice applied to the character at that position. Those products are computed once per distinct
    character of the batch (`table[k, c] = W[:, :, k] @ vector[c]`, all widths at once, a width-w kernel being zero
    past position w), and each window becomes the sum of `max_width` table rows (`WindowMaxima`) instead of a
    (max_width * E)-long dot product per filter.

    Args:
        char_ids: (N, L) character ids, real characters first, 0 = padding.
        char_vectors: (char vocabulary, E) the character vectors (row 0: padding).
        convs: the `nn.Conv1d(E, F, width)` of each width.
        chunk_windows: windows summed per block (bounds the temporary memory; the result does not depend on it).

    Returns:
        (N, F * widths): per row the maximum over its window starts, width blocks in the order of `convs`; -inf for
        a row without characters.
    """
    max_width = max(conv.kernel_size[0] for conv in convs)
    n, length = char_ids.shape
    present, index = torch.unique(char_ids, return_inverse=True)  # the batch's distinct characters (P,)
    kernels = torch.cat([nn.functional.pad(conv.weight, (0, max_width - conv.weight.shape[-1])) for conv in convs])
    filters = kernels.shape[0]
    products = torch.index_select(char_vectors, 0, present) @ kernels.permute(1, 2, 0).reshape(-1, max_width * filters)
    products = products.reshape(len(present), max_width, filters).transpose(0, 1)  # (max_width, P, F)
    # row P of each kernel position: a position past the last column (reads zeros); the bias joins position 0
    table = nn.functional.pad(products, (0, 0, 0, 1))
    bias = torch.cat([conv.bias for conv in convs])
    table = torch.cat([table[:1] + bias, table[1:]]).reshape(max_width * (len(present) + 1), filters)
    index = nn.functional.pad(index, (0, max_width - 1), value=len(present))  # (N, L + max_width - 1)
    row, start = torch.nonzero(torch.arange(length, device=char_ids.device) < (char_ids != 0).sum(-1, keepdim=True),
                               as_tuple=True)  # fmt: skip
    offsets = torch.arange(max_width, device=char_ids.device)
    bags = index[row[:, None], start[:, None] + offsets] + offsets * (len(present) + 1)  # (V, max_width) table rows
    return WindowMaxima.apply(table, bags, row, n, chunk_windows)


class WindowMaxima(torch.autograd.Function):
    """`pooled[r] = max over the windows v of row r of sum_k table[bags[v, k]]`, column-wise (-inf for a row without
    windows), computed block by block so that no (windows, F) tensor is ever held; the gradient is torch's for
    `scatter_reduce(amax)` (split evenly among tied maxima, as `RowMaximum`) carried back to the table rows with
    `index_add` (a fixed order: bitwise reproducible). The backward recomputes the windows' sums, block by block.
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, bags: torch.LongTensor, rows: torch.LongTensor, num_rows: int, chunk: int):
        """table (R, F), bags (V, K), rows (V,) -> (num_rows, F)."""
        pooled = table.new_full((num_rows, table.shape[1]), float("-inf"))
        for begin in range(0, len(rows), chunk):
            values = nn.functional.embedding_bag(bags[begin : begin + chunk], table, mode="sum")
            index = rows[begin : begin + chunk, None].expand_as(values)
            pooled.scatter_reduce_(0, index, values, reduce="amax", include_self=True)
        ctx.save_for_backward(table, bags, rows, pooled)
        ctx.chunk = chunk
        return pooled

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        table, bags, rows, pooled = ctx.saved_tensors
        blocks, is_max = range(0, len(rows), ctx.chunk), []
        # torch's formula: (self == result) + the maxima's count
        count = float_equal(pooled, pooled.new_tensor(float("-inf")))
        for begin in blocks:
            values = nn.functional.embedding_bag(bags[begin : begin + ctx.chunk], table, mode="sum")
            block_rows = rows[begin : begin + ctx.chunk]
            is_max.append(float_equal(values, torch.index_select(pooled, 0, block_rows)))  # 1.0 / 0.0
            count.index_add_(0, block_rows, is_max[-1])
        share = grad / count
        grad_table = torch.zeros_like(table)
        for begin, maxima in zip(blocks, is_max, strict=True):
            # times the 0/1 mask: bitwise `torch.where(maxima, share, 0)` after the index_add (a -0 adds as 0)
            grad_values = maxima.mul_(torch.index_select(share, 0, rows[begin : begin + ctx.chunk]))
            for position in bags[begin : begin + ctx.chunk].T:
                grad_table.index_add_(0, position, grad_values)
        return grad_table, None, None, None, None


def char_cnn_forward(char_cnn, char_ids: torch.LongTensor) -> torch.Tensor:
    """`CharCNN.forward` (batch, words, chars) -> (batch, words, char_hidden_size) with the lookup convolutions.

    Convolutions run once per distinct word of the batch (padding words included once); dropout and the projection
    then run per occurrence of a real word, so the result is the same as convolving every word. Padding words get
    relu(projection(0)) = relu(bias), exactly.
    """
    batch, words, chars = char_ids.shape
    flat = char_ids.reshape(batch * words, chars)
    distinct, occurrence = distinct_rows(flat, char_cnn.char_vectors.shape[0])
    pooled = torch.relu(max_pooled_char_windows(distinct, char_cnn.char_vectors, char_cnn.convs))  # empty words: 0
    real = torch.nonzero(flat.ne(0).any(-1)).squeeze(1)
    # index_select, not `[occurrence]`: the backward of advanced indexing accumulates repeated words' gradients in
    # thread-scheduling order on CPU, which would make identical runs differ
    pooled = torch.index_select(pooled, 0, torch.index_select(occurrence, 0, real))  # (real words, F * widths)
    features = torch.relu(char_cnn.projection(char_cnn.dropout(pooled)))
    empty = torch.relu(char_cnn.projection.bias).expand(batch * words, -1)
    # under a CUDA autocast the projection gives bfloat16 and the bias stays float32; a CPU autocast promotes
    # index_copy's operands to float32 itself: the same float32 features either way
    return empty.index_copy(0, real, features.to(empty.dtype)).reshape(batch, words, -1)
