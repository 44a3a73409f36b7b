"""The language discriminator D that the shared extractor is trained against."""

from __future__ import annotations

import torch
from torch import nn

from .configuration_manmoe import ManMoeConfig
from .kernel_switch import load_kernels, make_dropout


class LanguageDiscriminator(nn.Module):
    """D: a CNN over the shared features of a sentence that predicts its language (reference architecture).

    Convolutions of several widths over h_s of every position (no masking, as in the reference; sentences are
    zero-padded to at least the widest kernel), ReLU, max over time, concatenation, dropout, linear, ReLU,
    dropout, linear, ReLU, linear to the number of languages, log-softmax. With the fast kernels the convolutions of
    all widths are one matrix product over the rows' windows (`kernels.char_windows.max_pooled_windows`).
    """

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        size, filters = config.shared_hidden_size, config.discriminator_num_filters
        self.convs = nn.ModuleList(nn.Conv1d(size, filters, width) for width in config.discriminator_kernel_sizes)
        self.min_length = max(config.discriminator_kernel_sizes)
        hidden = config.discriminator_hidden_size
        self.kernels = load_kernels(config.kernels)
        self.classifier = nn.Sequential(
            make_dropout(config.discriminator_dropout, self.kernels),
            nn.Linear(filters * len(config.discriminator_kernel_sizes), hidden),
            nn.ReLU(),
            make_dropout(config.discriminator_dropout, self.kernels),
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
        it); with the fast kernels the windows there equal the bias and are not computed (the same output).
        """
        batch, words, _ = shared_features.shape
        if lengths is None:
            lengths = torch.full((batch,), words, dtype=torch.long, device=shared_features.device)
        widths = torch.tensor([conv.kernel_size[0] for conv in self.convs], device=shared_features.device)
        starts = lengths.clamp(min=self.min_length)[:, None] - widths[None, :] + 1  # (batch, widths) valid starts
        if words < self.min_length:
            shared_features = nn.functional.pad(shared_features, (0, 0, 0, self.min_length - words))
        if self.kernels is not None:
            pooled = self.kernels.char_windows.max_pooled_windows(shared_features, starts, self.convs, word_counts)
        else:
            pooled = self.pooled_convolutions(shared_features, starts)
        pooled = torch.relu(pooled)  # = max of ReLU
        return torch.log_softmax(self.classifier(pooled), dim=-1)

    def pooled_convolutions(self, features: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """The plain computation: each width's `Conv1d` over features (batch, words, size) (zeros past the last
        position), max over the first `starts` (batch, widths) window starts -> (batch, filters * widths). A valid
        window ends within the row's length, so nothing past it is read."""
        words = features.shape[1]
        x = features.transpose(1, 2)
        pooled = []
        for index, conv in enumerate(self.convs):
            padded = nn.functional.pad(x, (0, max(0, int(starts[:, index].max()) + conv.kernel_size[0] - 1 - words)))
            windows = conv(padded)  # (batch, filters, starts)
            valid = torch.arange(windows.shape[2], device=features.device)[None, :] < starts[:, index : index + 1]
            pooled.append(windows.masked_fill(~valid.unsqueeze(1), float("-inf")).amax(-1))
        return torch.cat(pooled, dim=-1)
