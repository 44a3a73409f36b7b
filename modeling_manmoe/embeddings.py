"""Input representations E(x): frozen word vectors, the CharCNN, and a frozen multilingual encoder.

All three produce one vector per *word* so that labels align with words whatever the input mode.
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration_manmoe import ManMoeConfig
from .dropout import Dropout


class FrozenWordEmbedding(nn.Module):
    """A frozen lookup table of aligned word vectors for all languages (row 0 padding, row 1 unknown).

    The table is a persistent buffer, never a parameter: no optimizer sees it, and it round-trips through
    safetensors. Fill it with `load_vectors` (rows unit-normalised, as the reference does).
    """

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(vocab_size, dim))

    @torch.no_grad()
    def load_vectors(self, vectors: torch.Tensor) -> None:
        if tuple(vectors.shape) != tuple(self.weight.shape):
            raise ValueError(
                f"word vector table has shape {tuple(vectors.shape)}, the config expects "
                f"{tuple(self.weight.shape)} (word_vocab_size, word_embedding_dim)"
            )
        self.weight.copy_(vectors)

    def forward(self, input_ids: torch.LongTensor) -> torch.Tensor:
        """(batch, words) -> (batch, words, dim)"""
        return nn.functional.embedding(input_ids, self.weight)


class CharCNN(nn.Module):
    """Character features (random unit-length character vectors, id 0 = padding, frozen by default) of each word: convolutions of several widths over character vectors, max over the
    word's characters, concatenation, dropout, linear, ReLU (reference: widths 3/4/5 x 200 filters -> 128).

    Windows start at each real character and are zero-padded on the right, so a word's feature never depends
    on how long the other words of its batch are.
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
        self.max_width = max(config.char_kernel_sizes)
        self.dropout = Dropout(config.char_dropout)
        self.projection = nn.Linear(config.char_num_filters * len(config.char_kernel_sizes), config.char_hidden_size)

    def forward(self, char_ids: torch.LongTensor) -> torch.Tensor:
        """(batch, words, chars) -> (batch, words, char_hidden_size); char id 0 is padding.

        Convolutions run once per distinct word of the batch (padding words included once); dropout and the
        projection then run per occurrence, so the result is the same as convolving every word.
        """
        batch, words, chars = char_ids.shape
        distinct, occurrence = torch.unique(char_ids.reshape(batch * words, chars), dim=0, return_inverse=True)
        # index_select, not `[occurrence]`: the backward of advanced indexing accumulates repeated words' gradients
        # in thread-scheduling order on CPU, which made identical runs differ by ~1e-8
        pooled = torch.index_select(self.pooled_convolutions(distinct), 0, occurrence)  # (B*W, filters * widths)
        features = torch.relu(self.projection(self.dropout(pooled)))
        return features.reshape(batch, words, -1)

    def pooled_convolutions(self, flat: torch.LongTensor) -> torch.Tensor:
        """(N, chars) -> (N, filters * widths): ReLU(max over the word's window starts) per width."""
        chars = flat.shape[1]
        lengths = (flat != 0).sum(-1)  # (N,)
        x = nn.functional.embedding(flat, self.char_vectors).transpose(1, 2)  # (N, E, C)
        x = nn.functional.pad(x, (0, self.max_width - 1))
        starts_valid = torch.arange(chars, device=flat.device)[None, :] < lengths[:, None]  # (N, C)
        pooled = []
        for conv in self.convs:
            out = conv(x)[:, :, :chars]  # (N, F, C): one window per start position
            out = out.masked_fill(~starts_valid[:, None, :], float("-inf"))
            pooled.append(out.max(dim=-1).values)
        return torch.relu(torch.cat(pooled, dim=-1))  # relu(max) == max(relu); empty words -> 0


class FrozenEncoderFeatures(nn.Module):
    """Word features from a frozen HF encoder (`AutoModel`): one hidden layer, pooled per word from its
    sub-tokens (first sub-token or mean). The encoder stays in eval mode and never receives gradients.
    """

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        encoder_config = AutoConfig.for_model(**config.encoder_config)
        self.encoder = AutoModel.from_config(encoder_config)
        self.layer = config.encoder_layer
        self.pooling = config.encoder_pooling
        self.freeze()

    def freeze(self) -> None:
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # frozen: dropout stays off even while the MAN-MoE layers train
        return self

    def max_length(self) -> int | None:
        return getattr(self.encoder.config, "max_position_embeddings", None)

    @torch.no_grad()
    def forward(
        self,
        encoder_input_ids: torch.LongTensor,
        encoder_attention_mask: torch.Tensor,
        encoder_word_ids: torch.Tensor,
        num_words: int,
    ) -> torch.Tensor:
        """
        encoder_input_ids, encoder_attention_mask: (batch, sub_tokens)
        encoder_word_ids: (batch, sub_tokens), the word index of each sub-token, -1 for special/padding ones.
        Returns (batch, num_words, hidden).
        """
        limit = self.max_length()
        if limit is not None and encoder_input_ids.shape[1] > limit:
            raise ValueError(
                f"a sentence has {encoder_input_ids.shape[1]} sub-tokens, more than the encoder's limit of {limit}"
            )
        outputs = self.encoder(
            input_ids=encoder_input_ids, attention_mask=encoder_attention_mask, output_hidden_states=True
        )
        hidden = outputs.hidden_states[self.layer]  # (B, S, H)
        return pool_subtokens(hidden, encoder_word_ids, num_words, self.pooling)


def pool_subtokens(hidden: torch.Tensor, word_ids: torch.Tensor, num_words: int, pooling: str) -> torch.Tensor:
    """Pool sub-token states (B, S, H) into word states (B, num_words, H) following `word_ids` (B, S), the word
    index of each sub-token (-1 = special or padding). `pooling` is "first" (first sub-token) or "mean".
    Words without any sub-token get zeros."""
    batch, subtokens, size = hidden.shape
    valid = word_ids >= 0
    target = torch.where(valid, word_ids, torch.full_like(word_ids, num_words))  # slot num_words = discarded
    if pooling == "first":
        positions = torch.arange(subtokens, device=hidden.device).expand(batch, subtokens)
        first = torch.full((batch, num_words + 1), subtokens, device=hidden.device, dtype=torch.long)
        first = first.scatter_reduce(1, target, positions, reduce="amin")[:, :num_words]  # (B, W)
        padded = torch.cat([hidden, hidden.new_zeros(batch, 1, size)], dim=1)  # position S holds zeros
        return padded.gather(1, first.unsqueeze(-1).expand(-1, -1, size))
    sums = hidden.new_zeros(batch, num_words + 1, size)
    sums = sums.scatter_add(1, target.unsqueeze(-1).expand(-1, -1, size), hidden)[:, :num_words]
    counts = hidden.new_zeros(batch, num_words + 1).scatter_add(1, target, valid.to(hidden.dtype))
    return sums / counts[:, :num_words].clamp(min=1).unsqueeze(-1)


class InputRepresentation(nn.Module):
    """E(x): the one place that builds the input layer for the configured `input_mode`.

    Word-vector mode: [frozen word vector ; CharCNN]. Encoder mode: [frozen encoder word feature ; CharCNN]
    where the encoder feature may be passed precomputed (`input_features`) instead of running the encoder.
    """

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        self.input_mode = config.input_mode
        if config.input_mode == "word_vectors":
            self.word_embeddings = FrozenWordEmbedding(config.word_vocab_size, config.word_embedding_dim)
        else:
            self.encoder_features = FrozenEncoderFeatures(config)
        self.char_cnn = CharCNN(config) if config.use_char_cnn else None

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        char_ids: torch.LongTensor | None = None,
        encoder_input_ids: torch.LongTensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        encoder_word_ids: torch.LongTensor | None = None,
        input_features: torch.Tensor | None = None,
        num_words: int | None = None,
    ) -> torch.Tensor:
        """Returns (batch, words, config.input_size); `num_words` is the padded word count of the batch."""
        if self.input_mode == "word_vectors":
            if input_ids is None:
                raise ValueError("input_mode='word_vectors' needs `input_ids` (word ids from ManMoeTokenizer)")
            parts = [self.word_embeddings(input_ids)]
        elif input_features is not None:
            parts = [input_features]
        else:
            if encoder_input_ids is None or encoder_attention_mask is None or encoder_word_ids is None:
                raise ValueError(
                    "input_mode='encoder' needs `input_features` (precomputed) or `encoder_input_ids`, "
                    "`encoder_attention_mask` and `encoder_word_ids`"
                )
            if num_words is None:
                num_words = int(encoder_word_ids.max().item()) + 1
            features = self.encoder_features(encoder_input_ids, encoder_attention_mask, encoder_word_ids, num_words)
            parts = [features]
        if self.char_cnn is not None:
            if char_ids is None:
                raise ValueError("use_char_cnn=True needs `char_ids` (from ManMoeTokenizer)")
            parts.append(self.char_cnn(char_ids))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
