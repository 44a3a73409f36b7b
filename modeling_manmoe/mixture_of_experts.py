"""A mixture of language experts with a gate, the experts' parameters stacked and evaluated together."""

from __future__ import annotations

import math

import torch
from torch import nn

from .kernel_switch import dropout_active, load_kernels, make_dropout
from .real_words import RealWords


class BatchedExperts(nn.Module):
    """`num_experts` two-layer MLPs evaluated together: dropout, linear, ReLU, [dropout], linear, activation.

    Parameters are stacked (`weight1`: experts x in x hidden, ...), so the parameter count equals that of
    `num_experts` separate `nn.Linear` pairs. With dropout (training) the computation is two batched matrix
    products and every expert draws its own dropout mask, as separate expert modules would; without it, one
    product for all first layers and one per expert's second layer (`expert_outputs`).
    """

    def __init__(
        self,
        num_experts: int,
        input_size: int,
        hidden_size: int,
        output_size: int,
        dropout: float,
        dropout_between: bool,
        activation: str,
        kernels: str = "fast",
    ):
        super().__init__()
        self.weight1 = nn.Parameter(torch.empty(num_experts, input_size, hidden_size))
        self.bias1 = nn.Parameter(torch.empty(num_experts, hidden_size))
        self.weight2 = nn.Parameter(torch.empty(num_experts, hidden_size, output_size))
        self.bias2 = nn.Parameter(torch.empty(num_experts, output_size))
        self.dropout = make_dropout(dropout, load_kernels(kernels))
        self.dropout_between = dropout_between
        if activation not in ("tanh", "log_softmax"):
            raise ValueError(f"unknown expert activation {activation!r}")
        self.activation = activation

    def reset_parameters(self, init) -> None:
        """`nn.Linear`'s default initialisation for each expert (uniform in +-1/sqrt(fan_in))."""
        for weight, bias in ((self.weight1, self.bias1), (self.weight2, self.bias2)):
            bound = 1.0 / math.sqrt(weight.shape[1])
            init.uniform_(weight, -bound, bound)
            init.uniform_(bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, input_size) -> (N, num_experts, output_size)"""
        if not dropout_active(self.dropout):
            return torch.stack(list(self.expert_outputs(x)), dim=1)
        experts = self.weight1.shape[0]
        x = self.dropout(x.unsqueeze(1).expand(-1, experts, -1))  # independent masks per expert
        hidden = torch.relu(torch.einsum("nei,eih->neh", x, self.weight1) + self.bias1)
        if self.dropout_between:
            hidden = self.dropout(hidden)
        return self.activate(torch.einsum("neh,eho->neo", hidden, self.weight2) + self.bias2)

    def weighted_sum(self, x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """`sum_e weights[:, e] * expert_e(x)`: x (N, input_size), weights (N, num_experts), or None for the one
        expert's output -> (N, output_size). Without dropout the experts' outputs are summed one expert at a time,
        never stacked into an (N, num_experts, output_size) tensor."""
        if dropout_active(self.dropout):
            outputs = self(x)
            return outputs[:, 0] if weights is None else torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)
        mixture = None
        for expert, output in enumerate(self.expert_outputs(x)):
            if weights is None:
                return output
            weight = weights[:, expert : expert + 1]
            mixture = output * weight if mixture is None else mixture.addcmul_(output, weight)
        return mixture

    def expert_outputs(self, x: torch.Tensor):
        """Without dropout: each expert's output (N, output_size) in turn. The first layers are one matrix product
        with the experts' weights side by side (bias fused, ReLU in place); each second layer reads its expert's
        columns of that product, its weight transposed as `nn.Linear` stores it (a faster product on CPU than
        `einsum` over the experts, above all for a narrow output such as C's tags). A tanh output is taken as
        tanh(z) = 2 sigmoid(2 z) - 1, its second layer doubled (an exact scaling): on CPU a sigmoid costs a fraction
        of a tanh."""
        experts, input_size, hidden_size = self.weight1.shape
        side_by_side = self.weight1.transpose(0, 1).reshape(input_size, experts * hidden_size)
        hidden = torch.addmm(self.bias1.reshape(-1), x, side_by_side).relu_()  # (N, experts * hidden)
        weight2 = self.weight2.transpose(1, 2).contiguous()  # (experts, output, hidden)
        bias2 = self.bias2
        if self.activation == "tanh":
            weight2, bias2 = weight2 * 2, bias2 * 2
        for expert in range(experts):
            columns = hidden[:, expert * hidden_size : (expert + 1) * hidden_size]
            out = nn.functional.linear(columns, weight2[expert], bias2[expert])
            if self.activation != "tanh":
                yield self.activate(out)
                continue
            halves = out.sigmoid_()  # in place: the product's backward does not read it
            yield torch.add(halves, halves).sub_(1.0)  # a new tensor: sigmoid's backward reads `halves`

    def activate(self, out: torch.Tensor) -> torch.Tensor:
        return torch.tanh(out) if self.activation == "tanh" else torch.log_softmax(out, dim=-1)


class MixtureOfExperts(nn.Module):
    """Experts combined by a gate: `output = sum_e softmax(gate(x))_e * expert_e(x)`.

    The gate is a linear layer reading the input (detached when `detach_gate`, as in the reference, so the gate
    loss trains only the gate). With one expert and `use_gate=False` this is a plain MLP shared by all
    languages (the ablations "no private MoE" / "no predictor MoE").
    """

    def __init__(self, experts: BatchedExperts, input_size: int, use_gate: bool, detach_gate: bool):
        super().__init__()
        self.experts = experts
        self.gate = nn.Linear(input_size, experts.weight1.shape[0]) if use_gate else None
        self.detach_gate = detach_gate

    def forward(self, x: torch.Tensor | RealWords) -> tuple[torch.Tensor | RealWords, torch.Tensor | RealWords | None]:
        """x: (N, input_size), or the real words' features (`RealWords`, num_words x input_size: experts and gate run
        on the real words only) -> the mixture (N or num_words, output_size) and the gate logits (N or num_words,
        num_experts), or None without a gate; of the same kind as x."""
        if isinstance(x, torch.Tensor):
            return self.mix(x)
        mixture, gate_logits = self.mix(x.values)
        return x.with_values(mixture), None if gate_logits is None else x.with_values(gate_logits)

    def mix(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, input_size) -> mixture (N, output_size), gate logits (N, num_experts) or None."""
        if self.gate is None:
            return self.experts.weighted_sum(flat, None), None
        gate_logits = self.gate(flat.detach() if self.detach_gate else flat)  # (N, E)
        return self.experts.weighted_sum(flat, torch.softmax(gate_logits, dim=-1)), gate_logits
