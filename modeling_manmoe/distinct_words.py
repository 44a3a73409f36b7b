"""E(x) stored once per distinct word of a batch.

With static word vectors and no dropout (prediction), a word's input representation depends on the word alone: its
row of the frozen table and its characters. A batch of 256 CoNLL sentences holds about 3,300 words but only about
1,250 distinct ones (1,400 of 3,700 in Dutch `ned.testa`), so the BiLSTMs' first-layer input products, the largest
matrix products of a prediction, need computing only once per distinct word and can then be gathered per position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DistinctWordInputs:
    """E(x) of a (batch, words) grid given once per distinct word.

    blocks: the column blocks of E(x) (the word vectors, then the CharCNN's features), each (distinct_words, d_k):
        one row per distinct (word id, characters) of the batch, padding included once.
    positions: (batch, words) the row of `blocks` that each position of the grid holds.
    """

    blocks: list[torch.Tensor]
    positions: torch.LongTensor

    @property
    def shape(self) -> torch.Size:
        """(batch, words): the grid's shape."""
        return self.positions.shape

    def expand(self) -> list[torch.Tensor]:
        """The blocks per position, (batch, words, d_k) each: E(x) as `InputRepresentation` gives it in training."""
        flat = self.positions.reshape(-1)
        return [block.index_select(0, flat).view(*self.positions.shape, -1) for block in self.blocks]

    def index_select(self, rows: torch.LongTensor) -> DistinctWordInputs:
        """The grid's rows `rows` (sentences), sharing the same distinct words."""
        return DistinctWordInputs(self.blocks, self.positions.index_select(0, rows))
