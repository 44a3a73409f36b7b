"""The language discriminator D that the shared extractor is trained against."""

from __future__ import annotations

import torch
from torch import nn

from .configuration_manmoe import ManMoeConfig
from .dropout import Dropout
from .window_convolution import max_pooled_windows


class LanguageDiscriminator(nn.Module):
    """D: a CNN over the shared features of a sentence that predicts its language (reference architecture).

    Convolutions of several widths over h_s of every position (no masking, as in the reference; sentences are
    zero-padded to at least the widest kernel), ReLU, max over time, concatenation, dropout, linear, ReLU,
    dropout, linear, ReLU, linear to the number of languages, log-softmax. The convolutions of all widths are one
    matrix product over the rows' windows (`max_pooled_windows`: the function of a `Conv1d` per width).
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

    def forward(
        self,
        shared_features: torch.Tensor,
        lengths: torch.Tensor | None = None,
        word_counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """h_s (batch, words, shared_hidden_size) -> language log-probabilities (batch, num_languages).

        `lengths` (batch,): how many positions of each row D reads, as if that row were trimmed to it (default: all
        `words`); positions past a row's length read as zeros, rows shorter than the widest kernel are zero-padded.
        `word_counts` (batch,), optional: each row's real words, past which its h_s is zero (as the extractors give
        it); the windows there equal the bias and are not computed (`max_pooled_windows`; the same output).
        """
        batch, words, _ = shared_features.shape
        if lengths is None:
            lengths = torch.full((batch,), words, dtype=torch.long, device=shared_features.device)
        widths = torch.tensor([conv.kernel_size[0] for conv in self.convs], device=shared_features.device)
        starts = lengths.clamp(min=self.min_length)[:, None] - widths[None, :] + 1  # (batch, widths) valid starts
        if words < self.min_length:
            shared_features = nn.functional.pad(shared_features, (0, 0, 0, self.min_length - words))
        pooled = torch.relu(max_pooled_windows(shared_features, starts, self.convs, word_counts))  # = max(ReLU)
        return torch.log_softmax(self.classifier(pooled), dim=-1)
