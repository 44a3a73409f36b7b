"""Feature extractors: the shared F_s (language-invariant) and the private F_p (BiLSTM + mixture of experts)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .configuration_manmoe import ManMoeConfig
from .kernel_switch import load_kernels, make_dropout
from .mixture_of_experts import BatchedExperts, MixtureOfExperts
from .real_words import RealWords

Embeddings = torch.Tensor | Sequence[torch.Tensor]
"""E(x) as the extractors read it: one tensor (batch, words, input_size) or its column blocks (batch, words, d_k);
with the fast kernels in prediction, also the blocks once per distinct word (`kernels.distinct_words`)."""


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

    Padding never changes the outputs of real words, and only the real words' outputs are given (`RealWords`). The
    parameters are those of an `nn.LSTM`. With `kernels="torch"` it runs as that `nn.LSTM` on packed sequences
    (`packed_lstm`); with `kernels="fast"` on CPU as `kernels.lstm.lockstep_bidirectional_lstm` (the same function,
    both directions at once, a hand-written backward), on a GPU as cuDNN's `nn.LSTM`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, input_dropout: float, dropout: float,
                 kernels: str = "fast"):  # fmt: skip
        super().__init__()
        self.kernels = load_kernels(kernels)
        self.input_dropout = make_dropout(input_dropout, self.kernels)
        self.between_layers_dropout = make_dropout(dropout, self.kernels)  # the fast kernels' own; nn.LSTM has one
        self.lstm = nn.LSTM(
            input_size,
            hidden_size // 2,
            num_layers=num_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )

    def forward(self, embeddings: Embeddings, attention_mask: torch.Tensor) -> RealWords:
        """(batch, words, input_size) or its column blocks, mask (batch, words) -> the real words' outputs
        (num_words, hidden_size)"""
        if self.kernels is not None:
            return self.kernels.lstm.bilstm_encoder_forward(self, embeddings, attention_mask)
        return self.packed_lstm(embeddings, attention_mask)

    def packed_lstm(self, embeddings: Embeddings, attention_mask: torch.Tensor) -> RealWords:
        """The plain computation: input dropout, then `nn.LSTM` on the packed real words (in float32 under a CPU
        autocast whose dtype has no oneDNN LSTM)."""
        blocks = [embeddings] if isinstance(embeddings, torch.Tensor) else list(embeddings)
        embeddings = torch.cat(blocks, dim=-1) if len(blocks) > 1 else blocks[0]
        if cpu_autocast_lacks_lstm(embeddings):
            with torch.autocast("cpu", enabled=False):
                return self._packed_lstm(embeddings.float(), attention_mask)
        return self._packed_lstm(embeddings, attention_mask)

    def _packed_lstm(self, embeddings: torch.Tensor, attention_mask: torch.Tensor) -> RealWords:
        lengths = attention_mask.sum(-1).clamp(min=1).cpu()
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

    def __init__(self, config: ManMoeConfig, input_size: int):
        super().__init__()
        self.encoder = BiLSTMEncoder(input_size, config.shared_hidden_size, config.shared_num_layers,
                                     config.input_dropout, config.lstm_dropout, config.kernels)  # fmt: skip

    def forward(self, embeddings: Embeddings, attention_mask: torch.Tensor) -> RealWords:
        """E(x) (`Embeddings`) -> h_s of the real words
        (num_words, shared_hidden_size)"""
        return self.encoder(embeddings, attention_mask)


class PrivateFeatureExtractor(nn.Module):
    """F_p: a BiLSTM followed by a mixture of source-language experts (each: dropout, linear, ReLU, dropout,
    linear, tanh) whose gate learns to recognise the source language."""

    def __init__(self, config: ManMoeConfig, input_size: int):
        super().__init__()
        hidden = config.private_hidden_size
        self.encoder = BiLSTMEncoder(input_size, hidden, config.private_num_layers, config.input_dropout,
                                     config.lstm_dropout, config.kernels)  # fmt: skip
        num_experts = config.num_experts if config.use_private_moe else 1
        experts = BatchedExperts(num_experts, hidden, hidden, hidden, config.expert_dropout, dropout_between=True,
                                 activation="tanh", kernels=config.kernels)  # fmt: skip
        self.mixture = MixtureOfExperts(
            experts, hidden, use_gate=config.use_private_moe, detach_gate=config.detach_gates
        )

    def forward(self, embeddings: Embeddings, attention_mask: torch.Tensor) -> tuple[RealWords, RealWords | None]:
        """E(x) (`Embeddings`) -> h_p of the real words
        (num_words, private_hidden_size) and their gate logits (num_words, num_experts), or None without a gate"""
        return self.mixture(self.encoder(embeddings, attention_mask))
