"""Input representations E(x): frozen word vectors, the CharCNN, and a frozen multilingual encoder.

All three produce one vector per *word* so that labels align with words whatever the input mode.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .configuration_manmoe import ManMoeConfig
from .distinct_words import DistinctWordInputs
from .dropout import Dropout
from .encoder import FrozenEncoderFeatures, LayerMix
from .window_convolution import max_pooled_char_windows, max_pooled_windows


def untouched_zeros(*shape: int) -> torch.Tensor:
    """`torch.zeros(*shape)` (default dtype and device) whose memory is not written on the CPU in float32.

    numpy's zeros come from calloc, for which the kernel hands out zero pages that stay unmapped until written, so a
    table that is replaced before use never becomes resident; `torch.zeros` writes every byte (for the word-vector
    table of the CoNLL vectors a 96 MB transient at each model construction, which `set_word_vectors` then frees).
    Under another default dtype or device (e.g. meta in `from_pretrained`) this is `torch.zeros`' result."""
    zeros = torch.from_numpy(np.zeros(shape, dtype=np.float32))
    return zeros.to(dtype=torch.get_default_dtype(), device=torch.get_default_device())


class FrozenWordEmbedding(nn.Module):
    """A frozen lookup table of aligned word vectors for all languages (row 0 padding, row 1 unknown).

    The table is a persistent buffer, never a parameter: no optimizer sees it, and it round-trips through
    safetensors. Fill it with `load_vectors` (rows unit-normalised, as the reference does).
    """

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.register_buffer("weight", untouched_zeros(vocab_size, dim))

    @torch.no_grad()
    def load_vectors(self, vectors: torch.Tensor) -> None:
        """Use `vectors` (word_vocab_size, dim) as the table. A contiguous tensor of the buffer's dtype and device
        that owns all of its storage becomes the buffer itself (no second copy of a table of hundreds of MB; the
        table is frozen, so models may share it); any other tensor is copied in."""
        if tuple(vectors.shape) != tuple(self.weight.shape):
            raise ValueError(
                f"word vector table has shape {tuple(vectors.shape)}, the config expects "
                f"{tuple(self.weight.shape)} (word_vocab_size, word_embedding_dim)"
            )
        owns_storage = vectors.untyped_storage().nbytes() == vectors.numel() * vectors.element_size()
        if (
            vectors.dtype == self.weight.dtype
            and vectors.device == self.weight.device
            and vectors.is_contiguous()
            and owns_storage
        ):
            self.weight = vectors.detach()
        else:
            self.weight.copy_(vectors)

    def forward(self, input_ids: torch.LongTensor) -> torch.Tensor:
        """(batch, words) -> (batch, words, dim)"""
        return nn.functional.embedding(input_ids, self.weight)


class CharCNN(nn.Module):
    """Character features of each word (random unit-length character vectors, id 0 = padding, frozen by default):
    convolutions of several widths over the character vectors, max over the word's characters, concatenation,
    dropout, linear, ReLU (reference: widths 3/4/5 x 200 filters -> 128).

    Windows start at each real character and are zero-padded on the right, so a word's feature never depends
    on how long the other words of its batch are. `config.char_cnn_implementation` says how the convolutions are
    computed (`window_convolution.py`), not what.
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
        self.implementation = config.char_cnn_implementation
        self.dropout = Dropout(config.char_dropout)
        self.projection = nn.Linear(config.char_num_filters * len(config.char_kernel_sizes), config.char_hidden_size)

    def forward(self, char_ids: torch.LongTensor) -> torch.Tensor:
        """(batch, words, chars) -> (batch, words, char_hidden_size); char id 0 is padding.

        Convolutions run once per distinct word of the batch (padding words included once); dropout and the
        projection then run per occurrence of a real word, so the result is the same as convolving every word.
        Padding words (no characters) pool to 0, so their feature is relu(projection(0)) = relu(bias), exactly.
        """
        batch, words, chars = char_ids.shape
        flat = char_ids.reshape(batch * words, chars)
        distinct, occurrence = distinct_rows(flat, self.char_vectors.shape[0])
        pooled = self.pooled_convolutions(distinct)  # (distinct words, filters * widths)
        real = torch.nonzero(flat.ne(0).any(-1)).squeeze(1)
        # index_select, not `[occurrence]`: the backward of advanced indexing accumulates repeated words' gradients
        # in thread-scheduling order on CPU, which made identical runs differ by ~1e-8
        pooled = torch.index_select(pooled, 0, torch.index_select(occurrence, 0, real))  # (real words, F * widths)
        features = torch.relu(self.projection(self.dropout(pooled)))
        empty = torch.relu(self.projection.bias).expand(batch * words, -1)
        # under a CUDA autocast the projection gives bfloat16 and the bias stays float32; a CPU autocast promotes
        # index_copy's operands to float32 itself: the same float32 features either way
        return empty.index_copy(0, real, features.to(empty.dtype)).reshape(batch, words, -1)

    def distinct_features(self, char_ids: torch.LongTensor) -> torch.Tensor:
        """(N, chars) distinct words -> (N, char_hidden_size), without dropout (prediction): each word's feature
        computed once. A word without characters (padding) gets relu(projection(0)) = relu(bias), as in `forward`."""
        if self.dropout.active:
            raise RuntimeError("CharCNN.distinct_features is for prediction: its dropout is active (call .eval())")
        return torch.relu(self.projection(self.pooled_convolutions(char_ids)))

    def pooled_convolutions(self, flat: torch.LongTensor) -> torch.Tensor:
        """(N, chars) -> (N, filters * widths): ReLU(max over the word's window starts) per width; a window starts at
        each real character and reads zeros past the last column. `config.char_cnn_implementation` picks
        `max_pooled_char_windows` ("lookup") or `max_pooled_windows` ("matmul"): the same function."""
        if self.implementation == "lookup":
            return torch.relu(max_pooled_char_windows(flat, self.char_vectors, self.convs))  # empty words -> 0
        x = nn.functional.embedding(flat, self.char_vectors)  # (N, C, E)
        starts = (flat != 0).sum(-1, keepdim=True).expand(-1, len(self.convs))  # (N, widths): one per character
        return torch.relu(max_pooled_windows(x, starts, self.convs))  # relu(max) == max(relu); empty words -> 0


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
    padded = nn.functional.pad(ids, (0, groups * per_key - columns)).reshape(rows, groups, per_key)
    keys = (padded << bits * torch.arange(per_key - 1, -1, -1, device=ids.device)).sum(-1)  # (rows, groups), exact
    rank = torch.zeros(rows, dtype=torch.long, device=ids.device)
    for group in range(groups):
        values, column_rank = torch.unique(keys[:, group], return_inverse=True)
        _, rank = torch.unique(rank * len(values) + column_rank, return_inverse=True)
    first = torch.full((int(rank.max()) + 1,), rows, dtype=torch.long, device=ids.device)
    first = first.scatter_reduce(0, rank, torch.arange(rows, device=ids.device), reduce="amin")
    return ids[first], rank


class InputRepresentation(nn.Module):
    """E(x): the one place that builds the input layer for the configured `input_mode`.

    Word-vector mode: [frozen word vector ; CharCNN]. Encoder mode: [frozen encoder word feature ; CharCNN]
    where the encoder feature may be passed precomputed (`input_features`, e.g. from `EncoderFeatureCache`)
    instead of running the encoder; several encoder layers are mixed by the learned `LayerMix`.
    """

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        self.input_mode = config.input_mode
        if config.input_mode == "word_vectors":
            self.word_embeddings = FrozenWordEmbedding(config.word_vocab_size, config.word_embedding_dim)
        else:
            self.encoder_features = FrozenEncoderFeatures(config)
            self.layer_mix = LayerMix(len(config.encoder_layers)) if len(config.encoder_layers) > 1 else None
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
    ) -> list[torch.Tensor] | DistinctWordInputs:
        """E(x) as its column blocks: [(batch, words, word_embedding_dim or encoder hidden)] and, with the CharCNN,
        (batch, words, char_hidden_size); `num_words` is the padded word count of the batch. The extractors' BiLSTMs
        read the blocks as one input (`lockstep_bidirectional_lstm`), so the frozen block needs no gradient.

        In word-vector mode on CPU without dropout (prediction), the blocks come once per distinct word of the batch
        (`DistinctWordInputs`: the same values; the CPU BiLSTM computes its first-layer products per distinct
        word)."""
        if self.input_mode == "word_vectors":
            if input_ids is None:
                raise ValueError("input_mode='word_vectors' needs `input_ids` (word ids from ManMoeTokenizer)")
            if self.char_cnn is not None and char_ids is None:
                raise ValueError("use_char_cnn=True needs `char_ids` (from ManMoeTokenizer)")
            char_dropout = self.char_cnn is not None and self.char_cnn.dropout.active
            if not self.training and not char_dropout and input_ids.device.type == "cpu":
                return self.distinct_words(input_ids, char_ids)
            parts = [self.word_embeddings(input_ids)]
        elif input_features is not None:
            parts = [self.mix_layers(input_features)]
        else:
            if encoder_input_ids is None or encoder_attention_mask is None or encoder_word_ids is None:
                raise ValueError(
                    "input_mode='encoder' needs `input_features` (precomputed) or `encoder_input_ids`, "
                    "`encoder_attention_mask` and `encoder_word_ids`"
                )
            if num_words is None:
                num_words = int(encoder_word_ids.max().item()) + 1
            features = self.encoder_features(encoder_input_ids, encoder_attention_mask, encoder_word_ids, num_words)
            parts = [self.mix_layers(features)]
        if self.char_cnn is not None:
            if char_ids is None:
                raise ValueError("use_char_cnn=True needs `char_ids` (from ManMoeTokenizer)")
            parts.append(self.char_cnn(char_ids))
        return parts

    def distinct_words(self, input_ids: torch.LongTensor, char_ids: torch.LongTensor | None) -> DistinctWordInputs:
        """Word-vector E(x) without dropout, once per distinct (word id, characters) of the batch: input_ids
        (batch, words), char_ids (batch, words, chars) or None without the CharCNN."""
        keys = input_ids.reshape(-1)
        if self.char_cnn is not None:
            chars = char_ids.reshape(keys.numel(), -1)
            char_rows, char_index = distinct_rows(chars, self.char_cnn.char_vectors.shape[0])
            keys = keys * len(char_rows) + char_index  # exact: (word vocab) x (distinct words) << 2**63
        distinct, positions = torch.unique(keys, return_inverse=True)
        if self.char_cnn is None:
            return DistinctWordInputs([self.word_embeddings(distinct)], positions.view(input_ids.shape))
        word_ids = torch.div(distinct, len(char_rows), rounding_mode="floor")
        char_features = self.char_cnn.distinct_features(char_rows).index_select(0, distinct - word_ids * len(char_rows))
        return DistinctWordInputs([self.word_embeddings(word_ids), char_features], positions.view(input_ids.shape))

    def mix_layers(self, features: torch.Tensor) -> torch.Tensor:
        """Encoder word features (batch, words, layers, hidden) -> (batch, words, hidden): the learned mix of the
        configured layers, or the one layer. (batch, words, hidden) passes through (one layer, precomputed)."""
        if features.dim() == 3:
            return features
        if self.layer_mix is not None:
            return self.layer_mix(features)
        if features.shape[2] != 1:
            raise ValueError(
                f"input_features carry {features.shape[2]} layers but the config uses one (encoder_layers)"
            )
        return features[:, :, 0]
