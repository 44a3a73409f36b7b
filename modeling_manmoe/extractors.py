"""Feature extractors: the shared F_s (language-invariant) and the private F_p (BiLSTM + mixture of experts)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .bidirectional_lstm import lockstep_bidirectional_lstm
from .configuration_manmoe import ManMoeConfig
from .distinct_words import DistinctWordInputs
from .dropout import Dropout
from .mixture_of_experts import BatchedExperts, MixtureOfExperts
from .real_words import RealWords

Embeddings = torch.Tensor | Sequence[torch.Tensor] | DistinctWordInputs
"""E(x) as the extractors read it: one tensor (batch, words, input_size), its column blocks, or once per distinct word."""


def cpu_autocast_lacks_lstm(x: torch.Tensor) -> bool:
    """True under a CPU `torch.autocast` whose dtype this CPU's oneDNN has no LSTM for (bfloat16 needs AVX-512
    bf16 or AMX, float16 AVX-512 fp16 or AMX): autocast would send the LSTM there and oneDNN would fail with
    "could not create a primitive descriptor for the LSTM forward propagation primitive"."""
    if x.device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
        return False
    dtype = torch.get_autocast_dtype("cpu")
    if dtype == torch.bfloat16:
        return not torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return dtype == torch.float16 and not torch.ops.mkldnn._is_mkldnn_fp16_supported()


class BiLSTMEncoder(nn.Module):
    """Input dropout, then a multi-layer bidirectional LSTM over the real words of each sentence.

    Padding never changes the outputs of real words (no sorting needed by the caller), and only the real words'
    outputs are given (`RealWords`). The parameters are those of an `nn.LSTM`; on CPU it runs as
    `lockstep_bidirectional_lstm` (the same function, both directions at once, a hand-written backward), elsewhere
    as `nn.LSTM` on packed sequences (cuDNN on a GPU, oneDNN's bfloat16 LSTM under a CPU autocast that has one).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, input_dropout: float, dropout: float):
        super().__init__()
        self.input_dropout = Dropout(input_dropout)
        self.between_layers_dropout = Dropout(dropout)
        self.lstm = nn.LSTM(
            input_size,
            hidden_size // 2,
            num_layers=num_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )

    def forward(self, embeddings: Embeddings, attention_mask: torch.Tensor) -> RealWords:
        """(batch, words, input_size), its column blocks (batch, words, d_k) or `DistinctWordInputs`
        (`InputRepresentation`), mask (batch, words) -> the real words' outputs (num_words, hidden_size)"""
        lengths = attention_mask.sum(-1).clamp(min=1).cpu()
        dropouts = (self.input_dropout, self.between_layers_dropout)
        lockstep = attention_mask.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
        if isinstance(embeddings, DistinctWordInputs):
            if lockstep and not self.input_dropout.active:
                return lockstep_bidirectional_lstm(embeddings, lengths, self.lstm, None, self.between_layers_dropout)
            embeddings = embeddings.expand()
        blocks = [embeddings] if isinstance(embeddings, torch.Tensor) else list(embeddings)
        if lockstep:
            return lockstep_bidirectional_lstm(blocks, lengths, self.lstm, *dropouts)
        if cpu_autocast_lacks_lstm(blocks[0]):  # run the LSTM in float32 instead of failing
            with torch.autocast("cpu", enabled=False):
                return lockstep_bidirectional_lstm([block.float() for block in blocks], lengths, self.lstm, *dropouts)
        # a GPU (cuDNN) or a CPU autocast that oneDNN has an LSTM for (bfloat16 with AVX-512 bf16 or AMX)
        embeddings = torch.cat(blocks, dim=-1) if len(blocks) > 1 else blocks[0]
        packed = pack_padded_sequence(self.input_dropout(embeddings), lengths, batch_first=True, enforce_sorted=False)
        # cuDNN's LSTM has no backward in eval mode ("cudnn RNN backward can only be called in training mode"):
        # gradients of an eval-mode model (attributions, tests) take PyTorch's own CUDA LSTM, the same function
        eval_gradients = embeddings.is_cuda and not self.training and torch.is_grad_enabled()
        with torch.backends.cudnn.flags(enabled=False) if eval_gradients else contextlib.nullcontext():
            output, _ = self.lstm(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=embeddings.shape[1])
        return RealWords.from_padded(output, attention_mask)


class SharedFeatureExtractor(nn.Module):
    """F_s: a BiLSTM trained against the language discriminator so that its features become language-invariant."""

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        self.encoder = BiLSTMEncoder(
            config.input_size,
            config.shared_hidden_size,
            config.shared_num_layers,
            config.input_dropout,
            config.lstm_dropout,
        )

    def forward(self, embeddings: Embeddings, attention_mask: torch.Tensor) -> RealWords:
        """(batch, words, input_size), its column blocks or `DistinctWordInputs` -> h_s of the real words
        (num_words, shared_hidden_size)"""
        return self.encoder(embeddings, attention_mask)


class PrivateFeatureExtractor(nn.Module):
    """F_p: a BiLSTM followed by a mixture of source-language experts (each: dropout, linear, ReLU, dropout,
    linear, tanh) whose gate learns to recognise the source language."""

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        hidden = config.private_hidden_size
        self.encoder = BiLSTMEncoder(
            config.input_size, hidden, config.private_num_layers, config.input_dropout, config.lstm_dropout
        )
        num_experts = config.num_experts if config.use_private_moe else 1
        experts = BatchedExperts(
            num_experts, hidden, hidden, hidden, config.expert_dropout, dropout_between=True, activation="tanh"
        )
        self.mixture = MixtureOfExperts(
            experts, hidden, use_gate=config.use_private_moe, detach_gate=config.detach_gates
        )

    def forward(self, embeddings: Embeddings, attention_mask: torch.Tensor) -> tuple[RealWords, RealWords | None]:
        """(batch, words, input_size), its column blocks or `DistinctWordInputs` -> h_p of the real words
        (num_words, private_hidden_size) and their gate logits (num_words, num_experts), or None without a gate"""
        return self.mixture(self.encoder(embeddings, attention_mask))
