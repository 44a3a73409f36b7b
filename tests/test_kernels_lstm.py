"""`lockstep_bidirectional_lstm` computes the function of `nn.LSTM` on packed sequences (values and gradients), and
`BiLSTMEncoder` uses it on CPU."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from modeling_manmoe.extractors import BiLSTMEncoder
from modeling_manmoe.kernels.dropout import Dropout
from modeling_manmoe.kernels.lstm import PackedLayout, lockstep_bidirectional_lstm


def packed_lstm(lstm, inputs, lengths):
    packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
    output, _ = lstm(packed)
    return pad_packed_sequence(output, batch_first=True, total_length=inputs.shape[1])[0]


def padded_lockstep(*args):
    """`lockstep_bidirectional_lstm`'s real words scattered into the padded grid (zeros at padding)."""
    return lockstep_bidirectional_lstm(*args).padded()


@pytest.mark.parametrize(
    "lengths, num_layers",
    [
        ([3, 9, 1, 5, 9, 2, 4], 2),  # unsorted, ties, a one-word sentence
        ([1], 1),  # one row, one word
        ([6, 6, 6], 3),  # equal lengths
        ([2, 7], 1),  # the batch padded past its longest sentence (total_length 9)
    ],
)
def test_equals_nn_lstm_on_packed_sequences_values_and_gradients(lengths, num_layers):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 4, num_layers=num_layers, bidirectional=True, batch_first=True).double()
    lengths = torch.tensor(lengths)
    inputs = torch.randn(len(lengths), 9, 5, dtype=torch.double, requires_grad=True)
    expected = packed_lstm(lstm, inputs, lengths)
    actual = padded_lockstep(inputs, lengths, lstm)
    assert actual.shape == expected.shape == (len(lengths), 9, 8)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12)
    padded = torch.arange(9)[None, :] >= lengths[:, None]
    assert actual[padded].abs().max() == 0 if padded.any() else True
    upstream = torch.randn_like(expected)
    wrt = [inputs, *lstm.parameters()]
    for grad_actual, grad_expected in zip(
        torch.autograd.grad(actual, wrt, upstream), torch.autograd.grad(expected, wrt, upstream), strict=True
    ):
        torch.testing.assert_close(grad_actual, grad_expected, rtol=0, atol=1e-12)


def test_column_blocks_are_read_as_their_concatenation():
    """Blocks (batch, words, d_k) are read as their concatenation: values and gradients equal `nn.LSTM`'s on it, each
    block that requires grad getting its columns of the input gradient; a frozen block needs none, and the others'
    are unchanged without it."""
    torch.manual_seed(2)
    lstm = torch.nn.LSTM(7, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    lengths = torch.tensor([3, 8, 1, 5])
    first = torch.randn(4, 8, 5, dtype=torch.double, requires_grad=True)
    second = torch.randn(4, 8, 2, dtype=torch.double, requires_grad=True)
    whole = torch.cat([first, second], dim=-1).detach().requires_grad_()
    expected = packed_lstm(lstm, whole, lengths)
    upstream = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, [whole, *lstm.parameters()], upstream)
    blocks_grads = [expected_grads[0][..., :5], expected_grads[0][..., 5:], *expected_grads[1:]]
    actual = padded_lockstep([first, second], lengths, lstm)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12)
    for grad_actual, grad_expected in zip(
        torch.autograd.grad(actual, [first, second, *lstm.parameters()], upstream), blocks_grads, strict=True
    ):
        torch.testing.assert_close(grad_actual, grad_expected, rtol=0, atol=1e-12)
    frozen = first.detach()
    actual = padded_lockstep([frozen, second], lengths, lstm)
    for grad_actual, grad_expected in zip(
        torch.autograd.grad(actual, [second, *lstm.parameters()], upstream), blocks_grads[1:], strict=True
    ):
        torch.testing.assert_close(grad_actual, grad_expected, rtol=0, atol=1e-12)
    with torch.no_grad():  # the unrecorded path sums the blocks' products in place
        unrecorded = padded_lockstep([frozen, second], lengths, lstm)
    torch.testing.assert_close(unrecorded, expected.detach(), rtol=0, atol=1e-12)


def test_float32_agrees_with_nn_lstm_at_the_paper_size():
    """The paper's extractor BiLSTM (input 428, 2 x 100, 2 layers) on 32 sentences of 1-40 words, float32."""
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(428, 100, num_layers=2, bidirectional=True, batch_first=True)
    lengths = torch.randint(1, 41, (32,))
    inputs = torch.randn(32, int(lengths.max()), 428, requires_grad=True)
    expected = packed_lstm(lstm, inputs, lengths)
    actual = padded_lockstep(inputs, lengths, lstm)
    torch.testing.assert_close(actual, expected, rtol=0, atol=2e-6)
    (grad_actual,) = torch.autograd.grad(actual.square().sum(), inputs)
    (grad_expected,) = torch.autograd.grad(expected.square().sum(), inputs)
    torch.testing.assert_close(grad_actual, grad_expected, rtol=1e-4, atol=1e-5)


def test_packed_layout_indices():
    """Rows sorted by length (longest first, stable), time-major; the reversed index reads each sentence backwards."""
    layout = PackedLayout(torch.tensor([2, 3, 1]), total_length=4, device=torch.device("cpu"))
    assert layout.batch_sizes == [3, 2, 1] and layout.offsets == [0, 3, 5, 6] and layout.num_words == 6
    # packed order: t=0 rows (1, 0, 2), t=1 rows (1, 0), t=2 row 1; padded position = row * 4 + t
    assert layout.padded_index.tolist() == [4, 0, 8, 5, 1, 6]
    # row 1 (length 3): t 0, 1, 2 at packed 0, 3, 5; row 0 (length 2): t 0, 1 at packed 1, 4; row 2: packed 2
    assert layout.reversed_index.tolist() == [5, 4, 2, 3, 1, 0]
    assert layout.previous_index.tolist() == [0, 1, 3]


def test_dropout_between_layers_and_on_inputs_in_training_only():
    """With dropout modules the training output differs from the eval output; in eval they do nothing."""
    torch.manual_seed(2)
    lstm = torch.nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True)
    lengths, inputs = torch.tensor([4, 2]), torch.randn(2, 4, 6)
    dropouts = Dropout(0.5), Dropout(0.5)
    plain = padded_lockstep(inputs, lengths, lstm)
    for dropout in dropouts:
        dropout.eval()
    assert torch.equal(padded_lockstep(inputs, lengths, lstm, *dropouts), plain)
    for dropout in dropouts:
        dropout.train()
    assert not torch.allclose(padded_lockstep(inputs, lengths, lstm, *dropouts), plain)


def test_encoder_on_cpu_equals_the_packed_nn_lstm():
    """`BiLSTMEncoder` (eval) gives `nn.LSTM`'s outputs for its own parameters, whatever the padding."""
    torch.manual_seed(3)
    encoder = BiLSTMEncoder(7, 10, num_layers=2, input_dropout=0.5, dropout=0.5).eval()
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]])
    inputs = torch.randn(3, 6, 7)
    with torch.no_grad():
        expected = packed_lstm(encoder.lstm, inputs, mask.sum(-1))
        torch.testing.assert_close(encoder(inputs, mask).padded(), expected, rtol=0, atol=1e-6)


def test_without_gradients_the_same_outputs():
    """Without autograd recording (no_grad, inference_mode) the input products go straight into the gates' buffer:
    the same outputs as the recorded path."""
    torch.manual_seed(4)
    lstm = torch.nn.LSTM(5, 4, num_layers=2, bidirectional=True, batch_first=True)
    lengths, inputs = torch.tensor([3, 6, 1]), torch.randn(3, 6, 5)
    recorded = padded_lockstep(inputs, lengths, lstm)
    assert recorded.requires_grad
    with torch.no_grad():
        unrecorded = padded_lockstep(inputs, lengths, lstm)
    with torch.inference_mode():
        inference = padded_lockstep(inputs, lengths, lstm)
    assert (
        not unrecorded.requires_grad
        and torch.equal(unrecorded, recorded.detach())
        and torch.equal(inference, unrecorded)
    )


def test_distinct_word_inputs_give_the_per_word_function():
    """`DistinctWordInputs` (E(x) once per distinct word, prediction): outputs and gradients (to the LSTM and to the
    distinct rows, summed over their occurrences) equal those of the expanded per-position blocks, recorded or not;
    an input dropout is refused (it would draw one mask per distinct word)."""
    from modeling_manmoe.kernels.distinct_words import DistinctWordInputs

    torch.manual_seed(3)
    lstm = torch.nn.LSTM(7, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    lengths = torch.tensor([3, 8, 1, 5])
    blocks = [torch.randn(6, 5, dtype=torch.double, requires_grad=True), torch.randn(6, 2, dtype=torch.double)]
    positions = torch.randint(0, 6, (4, 8))
    inputs = DistinctWordInputs(blocks, positions)
    expanded = inputs.expand()
    assert [tuple(block.shape) for block in expanded] == [(4, 8, 5), (4, 8, 2)]
    assert torch.equal(expanded[0][2, 7], blocks[0][positions[2, 7]])
    expected = padded_lockstep(expanded, lengths, lstm)
    actual = padded_lockstep(inputs, lengths, lstm)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12)
    upstream = torch.randn_like(expected)
    wrt = [blocks[0], *lstm.parameters()]
    for grad_actual, grad_expected in zip(
        torch.autograd.grad(actual, wrt, upstream), torch.autograd.grad(expected, wrt, upstream), strict=True
    ):
        torch.testing.assert_close(grad_actual, grad_expected, rtol=0, atol=1e-12)
    with torch.inference_mode():
        torch.testing.assert_close(padded_lockstep(inputs, lengths, lstm), expected.detach(), rtol=0, atol=1e-12)
    rows = torch.tensor([3, 1])
    torch.testing.assert_close(
        padded_lockstep(inputs.index_select(rows), lengths[rows], lstm), expected[rows], rtol=0, atol=1e-12
    )
    with pytest.raises(ValueError, match="no input dropout"):
        lockstep_bidirectional_lstm(inputs, lengths, lstm, Dropout(0.5).eval())
