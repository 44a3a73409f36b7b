"""Predictors C: a mixture-of-experts tagger and a sentence classifier with dot-attention pooling."""

from __future__ import annotations

import torch
from torch import nn

from .configuration_manmoe import ManMoeConfig
from .mixture_of_experts import BatchedExperts, MixtureOfExperts
from .real_words import RealWords


def predictor_mixture(config: ManMoeConfig) -> MixtureOfExperts:
    """C's expert mixture on [h_s ; h_p]: each expert is dropout, linear, ReLU, linear, log-softmax; the
    output is the gate-weighted sum of the experts' log-probabilities (the reference's mixture)."""
    input_size = config.shared_hidden_size + config.private_hidden_size
    num_experts = config.num_experts if config.use_predictor_moe else 1
    experts = BatchedExperts(
        num_experts,
        input_size,
        config.predictor_hidden_size,
        config.num_labels,
        config.predictor_dropout,
        dropout_between=False,
        activation="log_softmax",
        kernels=config.kernels,
    )
    return MixtureOfExperts(experts, input_size, use_gate=config.use_predictor_moe, detach_gate=config.detach_gates)


class MoETagger(nn.Module):
    """C for sequence tagging: the expert mixture applied to every word."""

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        self.mixture = predictor_mixture(config)

    def forward(self, features: RealWords):
        """[h_s ; h_p] of the real words (num_words, 2H) -> tag log-probabilities (batch, words, num_labels), gate
        logits (batch, words, num_experts) or None; zeros at padded positions"""
        log_probs, gate_logits = self.mixture(features)
        return log_probs.padded(), None if gate_logits is None else gate_logits.padded()


class MoESentenceClassifier(nn.Module):
    """C for sentence classification: dot attention (a bias-free linear scores each word, softmax over real words)
    pools [h_s ; h_p] into one vector, then the expert mixture predicts the label."""

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        self.attention = nn.Linear(config.shared_hidden_size + config.private_hidden_size, 1, bias=False)
        self.mixture = predictor_mixture(config)

    def forward(self, features: RealWords):
        """[h_s ; h_p] of the real words (num_words, 2H) -> label log-probabilities (batch, num_labels), gate logits
        (batch, num_experts) or None"""
        real = features.mask()
        features = features.padded()
        scores = self.attention(features).squeeze(-1).masked_fill(~real, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, T)
        pooled = torch.bmm(weights.unsqueeze(1), features).squeeze(1)  # (B, 2H)
        return self.mixture(pooled)
