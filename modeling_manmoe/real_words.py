"""Per-word features held for the real words of a padded batch only.

A batch of CoNLL sentences padded to its longest holds three to four padded positions per real word. Everything
after the BiLSTMs works word by word (the private experts, the concatenation [h_s ; h_p], the predictor's experts),
so the extractors hand their features on as one row per real word, and only what a caller reads as a padded
(batch, words, ...) tensor is scattered into one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RealWords:
    """Features of the real words of a (batch, words) grid.

    values: (num_words, d), one row per real word, in any order (the lockstep BiLSTM's packed order: time-major,
        longest sentence first).
    positions: (num_words,) each row's flat position `row * words + t` in the grid.
    grid: (batch, words).
    """

    values: torch.Tensor
    positions: torch.LongTensor
    grid: tuple[int, int]

    @classmethod
    def from_padded(cls, padded: torch.Tensor, attention_mask: torch.Tensor) -> RealWords:
        """(batch, words, d) and its mask (batch, words) -> the real words' rows, in row-major order."""
        positions = torch.nonzero(attention_mask.reshape(-1)).squeeze(1)
        values = padded.reshape(-1, padded.shape[-1]).index_select(0, positions)
        return cls(values, positions, tuple(attention_mask.shape))

    def padded(self) -> torch.Tensor:
        """(batch, words, d): each real word's row at its position, zeros elsewhere."""
        batch, words = self.grid
        grid = self.values.new_zeros(batch * words, self.values.shape[-1])
        return grid.index_copy_(0, self.positions, self.values).view(batch, words, -1)

    def mask(self) -> torch.Tensor:
        """(batch, words) bool: True at the real words."""
        batch, words = self.grid
        mask = torch.zeros(batch * words, dtype=torch.bool, device=self.positions.device)
        return mask.index_fill_(0, self.positions, True).view(batch, words)

    def with_values(self, values: torch.Tensor) -> RealWords:
        """Other features (num_words, d') of the same words, in the same order."""
        return RealWords(values, self.positions, self.grid)

    def values_at(self, positions: torch.LongTensor) -> torch.Tensor:
        """The rows of the words at flat grid `positions` (num, ), each a real word of this grid -> (num, d). Given
        this grid's own positions in its own order (the common case: both extractors over the same batch), the
        values themselves."""
        if positions is self.positions or torch.equal(positions, self.positions):
            return self.values
        batch, words = self.grid
        row_of = torch.full((batch * words,), -1, dtype=torch.long, device=self.positions.device)
        row_of[self.positions] = torch.arange(self.positions.numel(), device=self.positions.device)
        return self.values.index_select(0, row_of[positions])
