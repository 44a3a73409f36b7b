"""MetaXL's representation transformation network (Xia et al., NAACL 2021): a bottleneck MLP added to the input
representation E(x) of the source languages' rows in training, so that they move toward the target's space."""

from __future__ import annotations

import torch
from torch import nn


class RepresentationTransformation(nn.Module):
    """x -> x + W2 relu(W1 x + b1) + b2 on (rows, ..., size); W1: size -> bottleneck, W2: bottleneck -> size.

    The second layer starts at zero, so a new network is the identity. It is learned by the look-ahead meta-gradient
    (`training.metaxl`), never by the main optimizer, and applied only to the rows a training step names
    (`transform_rows`); prediction never applies it.
    """

    def __init__(self, size: int, bottleneck: int):
        super().__init__()
        self.down = nn.Linear(size, bottleneck)  # PyTorch's default initialisation (`ManMoePreTrainedModel`)
        self.up_weight = nn.Parameter(torch.zeros(size, bottleneck))
        self.up_bias = nn.Parameter(torch.zeros(size))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.up_weight.zero_()
        self.up_bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + nn.functional.linear(torch.relu(self.down(x)), self.up_weight, self.up_bias)
