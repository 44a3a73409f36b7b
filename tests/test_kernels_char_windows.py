"""The CharCNN's fast kernel (`max_pooled_char_windows`: per-character kernel products summed per window) and its plain
torch path (`CharCNN.pooled_convolutions`) are the same function as the per-width `conv1d` + max over time: values
and gradients; so is the language discriminator's one pass over all rows (fast: `max_pooled_windows`), each read up
to its own length."""

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
    max_width = max(conv.kernel_size[0] for conv in cnn.convs)
    x = nn.functional.pad(nn.functional.embedding(flat, cnn.char_vectors).transpose(1, 2), (0, max_width - 1))
    valid = torch.arange(chars)[None, :] < lengths[:, None]
    pooled = [conv(x)[:, :, :chars].masked_fill(~valid[:, None, :], float("-inf")).max(-1).values for conv in cnn.convs]
    return torch.relu(torch.cat(pooled, dim=-1))


def discriminator_by_conv1d(discriminator, features: torch.Tensor) -> torch.Tensor:
    """D's definition on one batch trimmed to its length: conv1d per width (zero-padded to the widest kernel),
    ReLU, max over time, then the classifier."""
    x = features.transpose(1, 2)
    if x.shape[-1] < discriminator.min_length:
        x = nn.functional.pad(x, (0, discriminator.min_length - x.shape[-1]))
    pooled = torch.cat([torch.relu(conv(x)).max(dim=-1).values for conv in discriminator.convs], dim=-1)
    return torch.log_softmax(discriminator.classifier(pooled), dim=-1)


def gradients(module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters() if p.grad is not None]


def pooled(cnn, flat: torch.LongTensor) -> torch.Tensor:
    """The CharCNN's max-pooled convolutions, by its kernels: the lookup kernel (fast) or the plain path (torch)."""
    if cnn.kernels is None:
        return cnn.pooled_convolutions(flat)
    return torch.relu(cnn.kernels.char_windows.max_pooled_char_windows(flat, cnn.char_vectors, cnn.convs))


@pytest.mark.parametrize("kernels", ["fast", "torch"])
@pytest.mark.parametrize("trainable", [False, True])
def test_charcnn_equals_its_conv1d_definition(trainable, kernels):
    """With empty words, words filling every column, and a non-zero padding vector (trained characters)."""
    config = ManMoeConfig(char_vocab_size=40, char_embedding_dim=16, char_num_filters=8,
                          freeze_char_embeddings=not trainable, kernels=kernels)  # fmt: skip
    cnn = ManMoeForTokenClassification(config).manmoe.inputs.char_cnn
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        cnn.char_vectors.copy_(torch.randn(cnn.char_vectors.shape, generator=generator))  # row 0 non-zero too
    lengths = torch.randint(0, 10, (60,), generator=generator)
    lengths[:3] = torch.tensor([0, 9, 1])
    flat = torch.randint(1, 40, (60, 9), generator=generator) * (torch.arange(9)[None] < lengths[:, None])
    weights = torch.randn(60, 24, generator=generator)
    results = []
    for function in (lambda ids: charcnn_by_conv1d(cnn, ids), lambda ids: pooled(cnn, ids)):
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
    from modeling_manmoe.kernels.char_windows import RowMaximum

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


def window_maxima_by_torch(table, bags, rows, num_rows):
    """`WindowMaxima`'s definition in plain torch ops: each window's sum of table rows, then `scatter_reduce(amax)`."""
    values = nn.functional.embedding_bag(bags, table, mode="sum")
    start = values.new_full((num_rows, values.shape[1]), float("-inf"))
    return start.scatter_reduce(0, rows[:, None].expand_as(values), values, reduce="amax", include_self=True)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_window_maxima_equals_scatter_reduce_amax_of_window_sums(chunk):
    """Values bitwise equal to the plain-op definition whatever the block size; the table's gradient equal to
    torch's (the gradient split evenly among tied maxima: ties exercised; a row without windows gets none)."""
    from modeling_manmoe.kernels.char_windows import WindowMaxima

    generator = torch.Generator().manual_seed(0)
    table = torch.randn(30, 6, generator=generator).round(decimals=0)  # small integers: many exactly tied sums
    rows = torch.sort(torch.randint(0, 20, (90,), generator=generator)).values
    rows = rows[rows != 4]  # row 4 has no window: -inf and no gradient
    bags = torch.randint(0, 30, (len(rows), 3), generator=generator)
    grad = torch.randn(20, 6, generator=generator)
    expected_table = table.clone().requires_grad_()
    expected = window_maxima_by_torch(expected_table, bags, rows, 20)
    expected.backward(grad)
    actual_table = table.clone().requires_grad_()
    actual = WindowMaxima.apply(actual_table, bags, rows, 20, chunk)
    actual.backward(grad)
    assert torch.equal(actual, expected) and actual[4].eq(float("-inf")).all()
    assert torch.allclose(actual_table.grad, expected_table.grad, atol=1e-6)
    sums = nn.functional.embedding_bag(bags, table, mode="sum")
    maxima_per_row = torch.zeros(20, 6).index_add(0, rows, (sums == expected.detach()[rows]).float())
    assert (maxima_per_row > 1).any()  # ties: the case where torch splits the gradient is exercised


def test_charcnn_kernels_agree_on_the_paper_sizes_and_train_reproducibly():
    """The paper's CharCNN (128-d characters, widths 3/4/5 x 200) on a batch of words: both kernels give the same
    features and gradients up to float rounding; the lookup's are bitwise the same on a second run."""
    generator = torch.Generator().manual_seed(1)
    lengths = torch.randint(0, 13, (300,), generator=generator)
    flat = torch.randint(1, 90, (300, 12), generator=generator) * (torch.arange(12)[None] < lengths[:, None])
    weights = torch.randn(300, 600, generator=generator)
    results = {}
    for kernels in ("torch", "fast", "fast"):
        torch.manual_seed(0)
        config = ManMoeConfig(char_vocab_size=90, kernels=kernels)
        cnn = ManMoeForTokenClassification(config).manmoe.inputs.char_cnn
        out = pooled(cnn, flat)
        (out * weights).sum().backward()
        results.setdefault(kernels, []).append((out.detach(), gradients(cnn)))
    (matmul, matmul_grads), (lookup, lookup_grads), (again, again_grads) = results["torch"] + results["fast"]
    assert torch.allclose(lookup, matmul, atol=1e-5)
    for got, want in zip(lookup_grads, matmul_grads, strict=True):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
    assert torch.equal(again, lookup) and all(torch.equal(a, b) for a, b in zip(again_grads, lookup_grads, strict=True))


@pytest.mark.parametrize("kernels", ["fast", "torch"])
def test_discriminator_reads_each_row_up_to_its_length_like_a_trimmed_batch(kernels):
    """One D pass with per-row lengths equals D on each row trimmed to its length (rows shorter than the widest
    kernel included), for the log-probabilities and the gradients of D and of h_s."""
    config = ManMoeConfig(shared_hidden_size=12, discriminator_num_filters=6, discriminator_hidden_size=10,
                          kernels=kernels)  # fmt: skip
    discriminator = ManMoeForTokenClassification(config).manmoe.discriminator.eval()
    generator = torch.Generator().manual_seed(1)
    lengths = torch.tensor([1, 2, 4, 5, 7, 11, 3, 11])
    features = torch.randn(8, 11, 12, generator=generator) * (torch.arange(11)[None, :, None] < lengths[:, None, None])
    weights = torch.randn(8, 4, generator=generator)

    inputs = features.clone().requires_grad_(True)
    (discriminator(inputs, lengths) * weights).sum().backward()
    actual, actual_input_grad, actual_grads = (
        discriminator(features, lengths).detach(),
        inputs.grad,
        gradients(discriminator),
    )
    discriminator.zero_grad()
    inputs = features.clone().requires_grad_(True)
    expected = torch.cat(
        [discriminator_by_conv1d(discriminator, inputs[r : r + 1, : int(lengths[r])]) for r in range(8)]
    )
    (expected * weights).sum().backward()
    assert torch.allclose(actual, expected.detach(), atol=1e-5)
    # real positions get the same gradient (past a row's length the zeros it is padded with are read; the reference
    # pads a row shorter than the widest kernel itself, so only real positions are compared)
    real = torch.arange(11)[None, :, None] < lengths[:, None, None]
    assert torch.allclose(actual_input_grad * real, inputs.grad, atol=1e-5)
    for got, want in zip(actual_grads, gradients(discriminator), strict=True):
        assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
    # without lengths every row is read to the batch's width
    assert torch.allclose(discriminator(features), discriminator_by_conv1d(discriminator, features), atol=1e-5)


def test_discriminator_skips_the_windows_past_the_words_without_changing_its_output():
    """Rows read up to their language's longest sentence (`lengths`) but with fewer words (`word_counts`, zeros past
    them, as the extractors give h_s): the windows that read only zeros are the bias and are not computed, and the
    log-probabilities and the gradients of D and of the real positions of h_s are those of D on each row trimmed to
    its read length."""
    config = ManMoeConfig(shared_hidden_size=12, discriminator_num_filters=6, discriminator_hidden_size=10)
    discriminator = ManMoeForTokenClassification(config).manmoe.discriminator.eval()
    generator = torch.Generator().manual_seed(2)
    words = torch.tensor([1, 2, 4, 3, 7, 9, 3, 11])
    read = torch.tensor([3, 3, 9, 9, 9, 9, 11, 11])  # per language: its longest sentence (rows 0-1 shorter than 5)
    real = torch.arange(11)[None, :, None] < words[:, None, None]
    features = torch.randn(8, 11, 12, generator=generator) * real
    weights = torch.randn(8, 4, generator=generator)

    inputs = features.clone().requires_grad_(True)
    actual = discriminator(inputs, read, word_counts=words)
    (actual * weights).sum().backward()
    actual_input_grad, actual_grads = inputs.grad, gradients(discriminator)
    discriminator.zero_grad()
    inputs = features.clone().requires_grad_(True)
    expected = torch.cat([discriminator_by_conv1d(discriminator, inputs[r : r + 1, : int(read[r])]) for r in range(8)])
    (expected * weights).sum().backward()
    assert torch.allclose(actual, expected, atol=1e-5)
    assert torch.allclose(actual_input_grad * real, inputs.grad * real, atol=1e-5)
    for got, want in zip(actual_grads, gradients(discriminator), strict=True):
        assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
    assert torch.allclose(discriminator(features, read), actual, atol=1e-6)  # the same with every window computed
