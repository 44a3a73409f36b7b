"""The language discriminator D that the shared extractor is trained against."""

from __future__ import annotations

import torch
from torch import nn

from .configuration_manmoe import ManMoeConfig
from .dropout import Dropout


class LanguageDiscriminator(nn.Module):
    """D: a CNN over the shared features of a sentence that predicts its language (reference architecture).

    Convolutions of several widths over h_s of every position (no masking, as in the reference; sentences are
    zero-padded to at least the widest kernel), ReLU, max over time, concatenation, dropout, linear, ReLU,
    dropout, linear, ReLU, linear to the number of languages, log-softmax.
    """

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        size, filters = config.shared_hidden_size, config.discriminator_num_filters
        self.convs = nn.ModuleList(nn.Conv1d(size, filters, width) for width in config.discriminator_kernel_sizes)
        self.min_length = max(config.discriminator_kernel_sizes)
        hidden = config.discriminator_hidden_size
        self.classifier = nn.Sequential(
            Dropout(config.discriminator_dropout),
            nn.Linear(filters * len(config.discriminator_kernel_sizes), hidden),
            nn.ReLU(),
            Dropout(config.discriminator_dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, len(config.all_languages)),
        )

    def forward(self, shared_features: torch.Tensor) -> torch.Tensor:
        """h_s (batch, words, shared_hidden_size) -> language log-probabilities (batch, num_languages)"""
        x = shared_features.transpose(1, 2)  # (B, H, T)
        if x.shape[-1] < self.min_length:
            x = nn.functional.pad(x, (0, self.min_length - x.shape[-1]))
        pooled = torch.cat([torch.relu(conv(x)).max(dim=-1).values for conv in self.convs], dim=-1)
        return torch.log_softmax(self.classifier(pooled), dim=-1)
