"""A multi-layer bidirectional LSTM over variable-length sentences with both directions in lockstep and a
hand-written backward pass: the function of `nn.LSTM` on packed sequences, with the same parameters, computed with
a fraction of the operations on CPU.

`nn.LSTM` on packed sequences runs, on CPU, each direction's loop over time steps as separate small operations,
and autograd records every one of them (about 30 nodes per time step and direction). Here:

- the input-to-hidden products of all words are two matrix products per layer (one per direction);
- the backward direction reads each sentence reversed within its own length, so at time step `t` both directions
  update the same rows (the sentences longer than `t`, longest first) and their hidden-to-hidden products are one
  batched product; a time step is nine operations for both directions (`run_recurrence`);
- one `torch.autograd.Function` holds a whole layer's recurrence: its backward is the LSTM's gradient written out
  (about a dozen operations per time step for both directions), and the hidden-to-hidden weight gradient is one
  batched matrix product over all steps;
- the candidate gate's tanh is taken as tanh(z) = 2 sigmoid(2 z) - 1 (its weight rows doubled, an exact scaling),
  so each step takes one sigmoid over all four gates instead of a sigmoid and a tanh over strided slices (on CPU
  tanh costs several times a sigmoid per element).

The mathematics is that of `nn.LSTM` (gates i, f, g, o; c' = f c + i g; h' = o tanh(c'); zero initial states), so
outputs and gradients equal `nn.LSTM`'s up to float rounding (`tests/test_bidirectional_lstm.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .. import extractors
from ..real_words import RealWords
from .distinct_words import DistinctWordInputs


class PackedLayout:
    """Where each real word of a padded batch goes in the time-major packed layout (rows sorted by length, longest
    first; step `t` holds the `batch_sizes[t]` sentences longer than `t` at rows `offsets[t]:offsets[t + 1]`).

    Index tensors (all over the `num_words` real words, in packed order):
    - `padded_index`: the word's flat position `row * total_length + t` in the padded (batch, total_length) grid;
    - `reversed_index`: the packed position of the same sentence's word at `length - 1 - t` (an involution), which
      is what the backward direction reads at step `t`;
    - `previous_index` (words past the first step): the packed position of the same sentence's word at `t - 1`.
    """

    def __init__(self, lengths: torch.Tensor, total_length: int, device: torch.device):
        lengths = lengths.cpu()
        sorted_lengths, order = torch.sort(lengths, descending=True, stable=True)
        steps = torch.arange(int(sorted_lengths[0]))
        self.batch_sizes = (sorted_lengths.unsqueeze(0) > steps.unsqueeze(1)).sum(1).tolist()
        offsets = torch.zeros(len(self.batch_sizes) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(torch.tensor(self.batch_sizes), 0)
        self.offsets = offsets.tolist()
        self.num_words = self.offsets[-1]
        rows = torch.arange(lengths.numel()).unsqueeze(1)  # sorted rows (B, 1)
        real = steps.unsqueeze(0) < sorted_lengths.unsqueeze(1)  # (B, T)
        packed = offsets[:-1].unsqueeze(0) + rows  # (B, T): packed position of (sorted row, t)
        position = packed[real]

        def in_packed_order(values: torch.Tensor) -> torch.Tensor:
            result = torch.empty(self.num_words, dtype=torch.long)
            result[position] = values[real]
            return result.to(device)

        self.padded_index = in_packed_order(order.unsqueeze(1) * total_length + steps.unsqueeze(0))
        reversed_steps = (sorted_lengths.unsqueeze(1) - 1 - steps.unsqueeze(0)).clamp(min=0)
        self.reversed_index = in_packed_order(offsets[reversed_steps] + rows)
        later = real[:, 1:]
        previous = torch.empty(self.num_words - self.batch_sizes[0], dtype=torch.long)
        previous[packed[:, 1:][later] - self.batch_sizes[0]] = packed[:, :-1][later]
        self.previous_index = previous.to(device)


def run_recurrence(
    gates: torch.Tensor, weight_hh: torch.Tensor, layout: PackedLayout
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The forward recurrence of `LockstepRecurrence`, in place: `gates` (2, num_words, 4H) holds the input products
    plus biases on entry and the gates' sigmoids on exit (for the candidate: sigmoid(2 z), its `g` being
    2 sigmoid(2 z) - 1). Returns the cells doubled (2 c), tanh of the cells and the hidden states, each
    (2, num_words, H).

    Each time step is nine operations for both directions: the hidden-to-hidden product (one batched product),
    one sigmoid over all four gates, the doubled cell 2 c' = f 2 c + 4 i sigmoid(2 z) - 2 i (= 2 (f c + i g)) in three,
    tanh(c') = 2 sigmoid(2 c') - 1 in three, and h' = o tanh(c')."""
    size, steps = weight_hh.shape[-1], layout.batch_sizes
    doubled_cells = gates.new_empty(2, layout.num_words, size)
    tanh_cells = torch.empty_like(doubled_cells)
    hidden = torch.empty_like(doubled_cells)
    one, two = gates.new_tensor(1.0), gates.new_tensor(2.0)  # tensors: a Python number is converted per call
    # every step's views, made once (`split` makes them all in one call): (2, rows, .)
    step_gates, cell_steps, tanh_steps, hidden_steps = (
        t.split(steps, dim=1) for t in (gates, doubled_cells, tanh_cells, hidden)
    )
    gate_steps = [gates[..., k * size : (k + 1) * size].split(steps, dim=1) for k in range(4)]  # i, f, o, g
    weight_hh_t = weight_hh.transpose(1, 2)  # (2, H, 4H)
    for step, rows in enumerate(steps):
        if step > 0:  # in place, both directions in one batched product
            step_gates[step].baddbmm_(hidden_steps[step - 1][:, :rows], weight_hh_t)
        step_gates[step].sigmoid_()
        input_gate, forget_gate, output_gate, candidate_half = (gate[step] for gate in gate_steps)
        cell = cell_steps[step]
        if step == 0:
            torch.mul(input_gate, candidate_half, out=cell).mul_(4.0)
        else:
            torch.mul(forget_gate, cell_steps[step - 1][:, :rows], out=cell).addcmul_(
                input_gate, candidate_half, value=4.0
            )
        cell.sub_(input_gate, alpha=2.0)
        tanh_cell = torch.sigmoid(cell, out=tanh_steps[step]).mul_(two).sub_(one)  # tanh(c) = 2 sigmoid(2 c) - 1
        torch.mul(output_gate, tanh_cell, out=hidden_steps[step])
    return doubled_cells, tanh_cells, hidden


class LockstepRecurrence(torch.autograd.Function):
    """The recurrence of one bidirectional layer, both directions at once, from zero states.

    forward(forward_inputs (num_words, 4H), backward_inputs (num_words, 4H), weight_hh (2, 4H, H), layout) ->
    hidden states (2, num_words, H), in packed layout (direction 1 in reversed order). The inputs are each
    direction's input products plus both biases (the backward direction's in reversed order); gate order i, f, o,
    g, the candidate g's rows doubled (its pre-activation is 2 z, and g = 2 sigmoid(2 z) - 1 = tanh(z)). Gradients
    flow to both inputs and `weight_hh` (for g: with respect to 2 z).
    """

    @staticmethod
    def forward(ctx, forward_inputs, backward_inputs, weight_hh: torch.Tensor, layout: PackedLayout) -> torch.Tensor:
        gates = torch.stack([forward_inputs, backward_inputs])  # (2, num_words, 4H)
        cells, tanh_cells, hidden = run_recurrence(gates, weight_hh, layout)
        # what the backward reads: the cells (halved: exact) and the candidate g = 2 sigmoid(2 z) - 1
        cells.mul_(0.5)
        gates[..., 3 * weight_hh.shape[-1] :].mul_(2.0).sub_(1.0)
        ctx.save_for_backward(weight_hh, gates, cells, tanh_cells, hidden)
        ctx.layout = layout
        return hidden

    @staticmethod
    def backward(ctx, grad_hidden: torch.Tensor):
        weight_hh, gates, cells, tanh_cells, hidden = ctx.saved_tensors
        layout: PackedLayout = ctx.layout
        size, steps = weight_hh.shape[-1], layout.batch_sizes
        # what does not depend on the recurrence, for all steps at once: each gate's slope (sigmoid: s (1 - s);
        # the candidate g = 2 sigmoid(2 z) - 1 against 2 z: (1 - g^2) / 2) and tanh's at the cells (1 - tanh(c)^2)
        slopes = gates - gates * gates
        candidates = gates[..., 3 * size :]
        torch.addcmul(gates.new_tensor(0.5), candidates, candidates, value=-0.5, out=slopes[..., 3 * size :])
        cell_slopes = torch.addcmul(tanh_cells.new_tensor(1.0), tanh_cells, tanh_cells, value=-1.0)
        grad_gates = torch.empty_like(gates)  # before the activations
        carried_hidden = gates.new_zeros(2, steps[0], size)  # from step t + 1 (rows past it: zero)
        carried_cell = torch.zeros_like(carried_hidden)
        carried_by_direction = (carried_hidden[0], carried_hidden[1])
        grad_steps, slope_steps, cell_slope_steps, grad_hidden_steps, cell_steps, tanh_steps = (
            t.split(steps, dim=1) for t in (grad_gates, slopes, cell_slopes, grad_hidden, cells, tanh_cells)
        )
        gate_steps = [gates[..., k * size : (k + 1) * size].split(steps, dim=1) for k in range(4)]  # i, f, o, g
        grad_gate_steps = [grad_gates[..., k * size : (k + 1) * size].split(steps, dim=1) for k in range(4)]
        direction_grads = [grad_gates[d].split(steps) for d in (0, 1)]
        for step in range(len(steps) - 1, -1, -1):
            rows = steps[step]
            input_gate, forget_gate, output_gate, candidate = (gate[step] for gate in gate_steps)
            grad_input, grad_forget, grad_output, grad_candidate = (grad[step] for grad in grad_gate_steps)
            grad_h = carried_hidden[:, :rows].add_(grad_hidden_steps[step])
            grad_c = carried_cell[:, :rows].addcmul_(grad_h * output_gate, cell_slope_steps[step])
            torch.mul(grad_c, candidate, out=grad_input)
            if step == 0:
                grad_forget.zero_()
            else:
                torch.mul(grad_c, cell_steps[step - 1][:, :rows], out=grad_forget)
            torch.mul(grad_h, tanh_steps[step], out=grad_output)
            torch.mul(grad_c, input_gate, out=grad_candidate)
            grad_steps[step].mul_(slope_steps[step])  # through the activations
            grad_c.mul_(forget_gate)  # what reaches the cell of step t - 1
            if step > 0:  # what reaches the hidden state of step t - 1
                for direction in (0, 1):
                    torch.mm(
                        direction_grads[direction][step],
                        weight_hh[direction],
                        out=carried_by_direction[direction][:rows],
                    )
        first = steps[0]
        grad_weight_hh = torch.bmm(grad_gates[:, first:].transpose(1, 2), hidden[:, layout.previous_index])
        return grad_gates[0], grad_gates[1], grad_weight_hh, None


def _gate_rows(size: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of `nn.LSTM`'s gate weights (i, f, g, o) in the order i, f, o, g, and their scale (4H, 1): 2 for the
    candidate g (see `LockstepRecurrence`), 1 for the others."""
    order = torch.cat([torch.arange(0, 2 * size), torch.arange(3 * size, 4 * size), torch.arange(2 * size, 3 * size)])
    scale = torch.ones(4 * size, 1, dtype=dtype)
    scale[3 * size :] = 2.0
    return order.to(device), scale.to(device)


def lockstep_bidirectional_lstm(
    inputs: torch.Tensor | Sequence[torch.Tensor] | DistinctWordInputs,
    lengths: torch.Tensor,
    lstm: nn.LSTM,
    input_dropout: nn.Module | None = None,
    dropout: nn.Module | None = None,
) -> RealWords:
    """`lstm` (bidirectional, batch_first, with biases) applied to each sentence's real words.

    inputs (batch, words, input_size), or its column blocks (batch, words, d_k) with sum d_k = input_size (the LSTM
    reads their concatenation), lengths (batch,) real words per row (>= 1) -> the outputs (2 x hidden_size) of the
    first `lengths[b]` words of each row b, as `RealWords` in packed order (`.padded()`: (batch, words, 2 x
    hidden_size), zeros at padded positions). `input_dropout` is applied to the real words' inputs, `dropout`
    between layers (where `nn.LSTM` applies its own `dropout`).

    Given as blocks, the first layer's input products are summed block by block (the same products, the same
    function), so a block that needs no gradient (frozen word vectors) gets none: its columns of the input
    gradient, the largest matrix product of the first layer's backward, are never computed. Given as
    `DistinctWordInputs` (prediction; no `input_dropout`, which would draw one mask per distinct word), the first
    layer's input products are computed once per distinct word, then gathered for each word of the batch.
    """
    distinct = isinstance(inputs, DistinctWordInputs)
    if distinct and input_dropout is not None:
        raise ValueError("DistinctWordInputs take no input dropout (one mask per word, not per distinct word)")
    blocks = inputs.blocks if distinct else [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
    batch, total_length = inputs.shape if distinct else blocks[0].shape[:2]
    layout = PackedLayout(lengths, total_length, blocks[0].device)
    order, scale = _gate_rows(lstm.hidden_size, blocks[0].dtype, blocks[0].device)
    if distinct:  # each word's row among the distinct words, forward and backward direction's order
        rows = inputs.positions.reshape(-1).index_select(0, layout.padded_index)
        gathered = (rows, rows.index_select(0, layout.reversed_index))
        layer_input = list(blocks)  # (distinct words, d_k) each
    else:
        gathered = None
        # index_select, not advanced indexing: its backward is an index_add (advanced indexing's accumulating
        # index_put is several times slower on CPU)
        layer_input = [
            block.reshape(batch * total_length, -1).index_select(0, layout.padded_index) for block in blocks
        ]  # (num_words, d_k) each
    if input_dropout is not None:
        layer_input = [input_dropout(block) for block in layer_input]
    for layer in range(lstm.num_layers):
        if layer > 0 and dropout is not None:
            layer_input = [dropout(block) for block in layer_input]
        gate_inputs, weights_hh = [], []
        recording = torch.is_grad_enabled() and (
            any(block.requires_grad for block in layer_input) or any(param.requires_grad for param in lstm.parameters())
        )
        if not recording:  # the input products straight into the gates' buffer: no stacked copy
            gates = layer_input[0].new_empty(2, layout.num_words, 4 * lstm.hidden_size)
        for direction, suffix in enumerate((f"_l{layer}", f"_l{layer}_reverse")):
            weight_ih = getattr(lstm, f"weight_ih{suffix}")[order] * scale
            weight_blocks = weight_ih.split([block.shape[1] for block in layer_input], dim=1)
            bias = (getattr(lstm, f"bias_ih{suffix}") + getattr(lstm, f"bias_hh{suffix}"))[order] * scale.squeeze(1)
            words = layer_input
            if direction == 1 and gathered is None:
                words = [block.index_select(0, layout.reversed_index) for block in layer_input]
            into = None if recording or gathered is not None else gates[direction]
            products = torch.addmm(bias, words[0], weight_blocks[0].t(), out=into)
            for block, weight in zip(words[1:], weight_blocks[1:], strict=True):
                products.addmm_(block, weight.t())  # in place: addmm's backward does not read its output
            if gathered is not None:  # the distinct words' products, for each word
                into = None if recording else gates[direction]
                products = torch.index_select(products, 0, gathered[direction], out=into)
            gate_inputs.append(products)
            weights_hh.append(getattr(lstm, f"weight_hh{suffix}")[order] * scale)
        if recording:
            hidden = LockstepRecurrence.apply(*gate_inputs, torch.stack(weights_hh), layout)
        else:
            hidden = run_recurrence(gates, torch.stack(weights_hh), layout)[2]
        layer_input, gathered = [torch.cat([hidden[0], hidden[1].index_select(0, layout.reversed_index)], dim=-1)], None
    return RealWords(layer_input[0], layout.padded_index, (batch, total_length))


def bilstm_encoder_forward(encoder, embeddings, attention_mask: torch.Tensor) -> RealWords:
    """`BiLSTMEncoder.forward` with the fast kernels: on CPU `lockstep_bidirectional_lstm` with the encoder's own
    parameters and dropouts (in float32 under a CPU autocast whose dtype has no oneDNN LSTM); elsewhere (a GPU's
    cuDNN, a CPU autocast with oneDNN's bfloat16 LSTM) the encoder's `packed_lstm`, E(x) given per position."""
    on_cpu = attention_mask.device.type == "cpu"
    autocast = on_cpu and torch.is_autocast_enabled("cpu")
    distinct = isinstance(embeddings, DistinctWordInputs)
    lengths = attention_mask.sum(-1).clamp(min=1).cpu()
    if on_cpu and not autocast and distinct and not encoder.input_dropout.active:
        return lockstep_bidirectional_lstm(embeddings, lengths, encoder.lstm, None, encoder.between_layers_dropout)
    if distinct:
        embeddings = embeddings.expand()
    blocks = [embeddings] if isinstance(embeddings, torch.Tensor) else list(embeddings)
    dropouts = (encoder.input_dropout, encoder.between_layers_dropout)
    if on_cpu and not autocast:
        return lockstep_bidirectional_lstm(blocks, lengths, encoder.lstm, *dropouts)
    if autocast and extractors.cpu_autocast_lacks_lstm(blocks[0]):  # the LSTM in float32 instead of failing
        with torch.autocast("cpu", enabled=False):
            return lockstep_bidirectional_lstm([block.float() for block in blocks], lengths, encoder.lstm, *dropouts)
    return encoder.packed_lstm(blocks, attention_mask)
