"""`max_pooled_windows` (one matrix product over the valid windows) is the same function as the plain per-width
`conv1d` + max over time it replaces in the CharCNN: values and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification


def charcnn_by_conv1d(cnn, flat: torch.LongTensor) -> torch.Tensor:
    """The CharCNN's definition: conv1d per width over the character vectors, zero-padded on the right, at every
    start, masked to the starts at real characters, max over starts, ReLU."""
    chars = flat.shape[1]
    lengths = (flat != 0).sum(-1)
    x = nn.functional.pad(nn.functional.embedding(flat, cnn.char_vectors).transpose(1, 2), (0, cnn.max_width - 1))
    valid = torch.arange(chars)[None, :] < lengths[:, None]
    pooled = [conv(x)[:, :, :chars].masked_fill(~valid[:, None, :], float("-inf")).max(-1).values for conv in cnn.convs]
    return torch.relu(torch.cat(pooled, dim=-1))


def gradients(module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters() if p.grad is not None]


@pytest.mark.parametrize("trainable", [False, True])
def test_charcnn_equals_its_conv1d_definition(trainable):
    """With empty words, words filling every column, and a non-zero padding vector (trained characters)."""
    config = ManMoeConfig(char_vocab_size=40, char_embedding_dim=16, char_num_filters=8,
                          freeze_char_embeddings=not trainable)  # fmt: skip
    cnn = ManMoeForTokenClassification(config).manmoe.inputs.char_cnn
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        cnn.char_vectors.copy_(torch.randn(cnn.char_vectors.shape, generator=generator))  # row 0 non-zero too
    lengths = torch.randint(0, 10, (60,), generator=generator)
    lengths[:3] = torch.tensor([0, 9, 1])
    flat = torch.randint(1, 40, (60, 9), generator=generator) * (torch.arange(9)[None] < lengths[:, None])
    weights = torch.randn(60, 24, generator=generator)
    results = []
    for function in (lambda ids: charcnn_by_conv1d(cnn, ids), cnn.pooled_convolutions):
        cnn.zero_grad()
        out = function(flat)
        (out * weights).sum().backward()
        results.append((out.detach(), gradients(cnn)))
    (expected, expected_grads), (actual, actual_grads) = results
    assert torch.allclose(actual, expected, atol=1e-5) and actual[0].eq(0).all()
    assert len(actual_grads) == len(expected_grads) == (7 if trainable else 6)  # 3 convs x (weight, bias) (+ chars)
    for got, want in zip(actual_grads, expected_grads, strict=True):
        assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)


def test_row_maximum_is_bitwise_scatter_reduce_amax_with_its_gradient():
    """Values and gradient bitwise equal to torch's `scatter_reduce(amax)`, ties (split evenly) and empty rows
    included."""
    from modeling_manmoe.window_convolution import RowMaximum

    generator = torch.Generator().manual_seed(0)
    rows = torch.sort(torch.randint(0, 30, (200,), generator=generator)).values
    rows = rows[rows != 7]  # row 7 has no value: -inf and no gradient
    values = torch.randn(len(rows), 12, generator=generator).round(decimals=1)  # many exact ties within a row
    grad = torch.randn(30, 12, generator=generator)
    expected_values = values.clone().requires_grad_()
    start = torch.full((30, 12), float("-inf"))
    expected = start.scatter_reduce(0, rows[:, None].expand(-1, 12), expected_values, reduce="amax", include_self=True)
    expected.backward(grad)
    actual_values = values.clone().requires_grad_()
    actual = RowMaximum.apply(actual_values, rows, 30)
    actual.backward(grad)
    assert torch.equal(actual, expected) and actual[7].eq(float("-inf")).all()
    assert torch.equal(actual_values.grad, expected_values.grad)
    maxima_per_row = torch.zeros(30, 12).index_add(0, rows, (values == expected.detach()[rows]).float())
    assert (maxima_per_row > 1).any()  # ties: the case where torch splits the gradient is exercised
