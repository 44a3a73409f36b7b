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
        """The blocks per position, (batch, words, d_k) each: E(x) as `WordVectorInputs` gives it in training."""
        flat = self.positions.reshape(-1)
        return [block.index_select(0, flat).view(*self.positions.shape, -1) for block in self.blocks]

    def index_select(self, rows: torch.LongTensor) -> DistinctWordInputs:
        """The grid's rows `rows` (sentences), sharing the same distinct words."""
        return DistinctWordInputs(self.blocks, self.positions.index_select(0, rows))


def distinct_rows(ids: torch.LongTensor, vocab_size: int) -> tuple[torch.LongTensor, torch.LongTensor]:
    """`torch.unique(ids, dim=0, return_inverse=True)` (the distinct rows in lexicographic order, and each row's
    index among them) without `unique(dim=0)`, whose CPU kernel compares rows one tensor op at a time.

    Ids (each below `vocab_size`) are packed big-endian, several to an int64, which keeps the lexicographic order;
    the rows are then ranked one packed column at a time with 1-D `torch.unique` (rank so far x distinct values of
    the column + the column's rank: the lexicographic order again).
    """
    rows, columns = ids.shape
    if rows == 0:
        return ids, torch.zeros(0, dtype=torch.long, device=ids.device)
    bits = max(1, (vocab_size - 1).bit_length())
    per_key = max(1, 63 // bits)
    groups = -(-columns // per_key)
    padded = torch.nn.functional.pad(ids, (0, groups * per_key - columns)).reshape(rows, groups, per_key)
    keys = (padded << bits * torch.arange(per_key - 1, -1, -1, device=ids.device)).sum(-1)  # (rows, groups), exact
    rank = torch.zeros(rows, dtype=torch.long, device=ids.device)
    for group in range(groups):
        values, column_rank = torch.unique(keys[:, group], return_inverse=True)
        _, rank = torch.unique(rank * len(values) + column_rank, return_inverse=True)
    first = torch.full((int(rank.max()) + 1,), rows, dtype=torch.long, device=ids.device)
    first = first.scatter_reduce(0, rank, torch.arange(rows, device=ids.device), reduce="amin")
    return ids[first], rank


def distinct_word_inputs(word_embeddings, char_cnn, input_ids: torch.LongTensor,
                         char_ids: torch.LongTensor | None) -> DistinctWordInputs:  # fmt: skip
    """Word-vector E(x) without dropout, once per distinct (word id, characters) of the batch.

    word_embeddings: the frozen table module ((N,) ids -> (N, dim)); char_cnn: the `CharCNN` or None; input_ids
    (batch, words); char_ids (batch, words, chars) or None without the CharCNN.
    """
    keys = input_ids.reshape(-1)
    if char_cnn is None:
        distinct, positions = torch.unique(keys, return_inverse=True)
        return DistinctWordInputs([word_embeddings(distinct)], positions.view(input_ids.shape))
    chars = char_ids.reshape(keys.numel(), -1)
    char_rows, char_index = distinct_rows(chars, char_cnn.char_vectors.shape[0])
    keys = keys * len(char_rows) + char_index  # exact: (word vocab) x (distinct words) << 2**63
    distinct, positions = torch.unique(keys, return_inverse=True)
    word_ids = torch.div(distinct, len(char_rows), rounding_mode="floor")
    char_features = char_cnn.distinct_features(char_rows).index_select(0, distinct - word_ids * len(char_rows))
    return DistinctWordInputs([word_embeddings(word_ids), char_features], positions.view(input_ids.shape))
