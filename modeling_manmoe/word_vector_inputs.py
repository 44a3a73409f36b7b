"""The word-vector input component (the paper's setting): frozen aligned word vectors + the CharCNN."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .char_cnn import CharCNN
from .configuration_manmoe import ManMoeConfig
from .input_embeddings import InputEmbeddings, register_input_embeddings
from .kernel_switch import dropout_active, load_kernels


def untouched_zeros(*shape: int) -> torch.Tensor:
    """`torch.zeros(*shape)` (default dtype and device) whose memory is not written on the CPU in float32.

    numpy's zeros come from calloc, for which the kernel hands out zero pages that stay unmapped until written, so a
    table that is replaced before use never becomes resident; `torch.zeros` writes every byte (for the CoNLL vectors'
    table a 96 MB transient at each model construction, which `set_word_vectors` then frees). Under another default
    dtype or device (e.g. meta in `from_pretrained`) this is `torch.zeros`' result."""
    if torch.get_default_device().type != "cpu" or torch.get_default_dtype() != torch.float32:
        return torch.zeros(*shape)
    return torch.from_numpy(np.zeros(shape, dtype=np.float32))


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


@register_input_embeddings
class WordVectorInputs(InputEmbeddings):
    """E(x) = [frozen word vector ; CharCNN features]: reads `input_ids` (batch, words) rows of the table and
    `char_ids` (batch, words, chars) from `ManMoeTokenizer`. Fill the table with `set_word_vectors`."""

    input_mode = "word_vectors"

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        self.word_embeddings = FrozenWordEmbedding(config.word_vocab_size, config.word_embedding_dim)
        self.char_cnn = CharCNN(config) if config.use_char_cnn else None
        self.kernels = load_kernels(config.kernels)

    @property
    def output_size(self) -> int:
        return self.word_embeddings.weight.shape[1] + (self.char_cnn.output_size if self.char_cnn else 0)

    def set_word_vectors(self, vectors: torch.Tensor) -> None:
        """Use `vectors` (word_vocab_size, word_embedding_dim) as the frozen table (`FrozenWordEmbedding`)."""
        self.word_embeddings.load_vectors(vectors)

    def forward(self, attention_mask: torch.Tensor, input_ids: torch.LongTensor | None = None,
                char_ids: torch.LongTensor | None = None, **unused) -> list[torch.Tensor]:  # fmt: skip
        """-> [(batch, words, word_embedding_dim), (batch, words, char_hidden_size) with the CharCNN]. With the fast
        kernels on CPU without dropout (prediction), the same blocks once per distinct word (`DistinctWordInputs`)."""
        if input_ids is None:
            raise ValueError("input_mode='word_vectors' needs `input_ids` (word ids from ManMoeTokenizer)")
        if self.char_cnn is not None and char_ids is None:
            raise ValueError("use_char_cnn=True needs `char_ids` (from ManMoeTokenizer)")
        if self.kernels is not None and not self.training and input_ids.device.type == "cpu":
            if self.char_cnn is None or not dropout_active(self.char_cnn.dropout):
                return self.kernels.distinct_words.distinct_word_inputs(self.word_embeddings, self.char_cnn,
                                                                        input_ids, char_ids)  # fmt: skip
        blocks = [self.word_embeddings(input_ids)]
        if self.char_cnn is not None:
            blocks.append(self.char_cnn(char_ids))
        return blocks

    @classmethod
    def describe(cls, config: dict, short: bool = False) -> str:
        text = "word vectors" if short else "frozen multilingual word vectors"
        return text + (" + CharCNN" if config.get("use_char_cnn", True) else "")

    @classmethod
    def limitations(cls, config: dict) -> list[str]:
        languages = list(dict.fromkeys([*config.get("source_languages", []), *config.get("unlabeled_languages", [])]))
        if not languages:
            return []
        return [f"The model knows the words of its languages only ({', '.join(languages)}): other languages have no "
                "entries in its tokenizer."]  # fmt: skip
