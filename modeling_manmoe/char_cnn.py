"""The CharCNN: character features of each word (Chen et al.'s reference: widths 3/4/5 x 200 filters -> 128)."""

from __future__ import annotations

import torch
from torch import nn

from .configuration_manmoe import ManMoeConfig
from .kernel_switch import dropout_active, load_kernels, make_dropout


class CharCNN(nn.Module):
    """Convolutions of several widths over each word's character vectors (random unit-length vectors, id 0 =
    padding, frozen by default), max over the word's window starts, concatenation, ReLU, dropout, linear, ReLU.

    A window starts at each real character of the word and reads the padding row (zeros unless the character vectors
    are trained) past its last character, so a word's feature never depends on the other words of its batch. A word without characters (a padding position) pools to 0, so
    its feature is relu(projection(0)) = relu(bias).
    """

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        table = torch.zeros(config.char_vocab_size, config.char_embedding_dim)
        if config.freeze_char_embeddings:  # frozen (the reference's default): a buffer, never a parameter
            self.register_buffer("char_vectors", table)
        else:
            self.char_vectors = nn.Parameter(table)
        self.convs = nn.ModuleList(
            nn.Conv1d(config.char_embedding_dim, config.char_num_filters, width) for width in config.char_kernel_sizes
        )
        self.kernels = load_kernels(config.kernels)
        self.dropout = make_dropout(config.char_dropout, self.kernels)
        self.projection = nn.Linear(config.char_num_filters * len(config.char_kernel_sizes), config.char_hidden_size)

    @property
    def output_size(self) -> int:
        return self.projection.out_features

    def forward(self, char_ids: torch.LongTensor) -> torch.Tensor:
        """(batch, words, chars) -> (batch, words, char_hidden_size); char id 0 is padding."""
        if self.kernels is not None:
            return self.kernels.char_windows.char_cnn_forward(self, char_ids)
        batch, words, chars = char_ids.shape
        pooled = self.pooled_convolutions(char_ids.reshape(batch * words, chars))
        return torch.relu(self.projection(self.dropout(pooled))).reshape(batch, words, -1)

    def pooled_convolutions(self, char_ids: torch.LongTensor) -> torch.Tensor:
        """(N, chars) -> (N, filters * widths): for each width, ReLU of the max over the word's window starts of the
        convolution; 0 for a word without characters."""
        x = nn.functional.embedding(char_ids, self.char_vectors).transpose(1, 2)  # (N, E, C); padding: row 0
        x = nn.functional.pad(x, (0, max(conv.kernel_size[0] for conv in self.convs) - 1))  # zeros past the columns
        starts = (char_ids != 0).sum(-1, keepdim=True)  # (N, 1): one window start per real character
        before_end = torch.arange(char_ids.shape[1], device=char_ids.device) < starts  # (N, C)
        pooled = []
        for conv in self.convs:
            windows = conv(x)[:, :, : char_ids.shape[1]]  # (N, F, C): the windows starting at each column
            pooled.append(windows.masked_fill(~before_end.unsqueeze(1), float("-inf")).amax(-1))
        return torch.relu(torch.cat(pooled, dim=-1))  # a word without characters: relu(-inf) = 0

    def distinct_features(self, char_ids: torch.LongTensor) -> torch.Tensor:
        """(N, chars) words -> (N, char_hidden_size) without dropout (prediction of distinct words)."""
        if dropout_active(self.dropout):
            raise RuntimeError("CharCNN.distinct_features is for prediction: its dropout is active (call .eval())")
        if self.kernels is not None:
            pooled = torch.relu(self.kernels.char_windows.max_pooled_char_windows(char_ids, self.char_vectors,
                                                                                  self.convs))  # fmt: skip
        else:
            pooled = self.pooled_convolutions(char_ids)
        return torch.relu(self.projection(pooled))
