"""The frozen-encoder input component (the paper's mBERT setting): word features from a frozen HF `AutoModel`.

A word's feature is pooled from its sub-tokens (first sub-token or mean) in one hidden layer, or in several layers
mixed by learned softmax weights (`LayerMix`). Sentences longer than the encoder's position limit are encoded in
overlapping windows, never truncated.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .char_cnn import CharCNN
from .configuration_manmoe import ManMoeConfig
from .input_embeddings import InputEmbeddings, register_input_embeddings


def encoder_position_limit(encoder_config) -> int | None:
    """How many sub-tokens one encoder call takes: `max_position_embeddings`, less the offset of models whose
    positions start after the padding index (RoBERTa / XLM-R style)."""
    limit = getattr(encoder_config, "max_position_embeddings", None)
    if limit is None:
        return None
    if getattr(encoder_config, "model_type", "") in ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl"):
        limit -= getattr(encoder_config, "pad_token_id", 1) + 1
    return limit


def window_starts(length: int, window: int) -> list[int]:
    """Starts of overlapping windows of `window` sub-tokens covering `length` (half a window apart; the last one
    ends at `length`). One window when the sentence fits."""
    if length <= window:
        return [0]
    step = max(1, window // 2)
    starts = list(range(0, length - window, step))
    return starts + [length - window]


def window_owners(length: int, window: int, starts: list[int]) -> torch.Tensor:
    """(length,) index of the window each position takes its state from: the one where it is farthest from an
    edge (most context on both sides); the earlier window on ties."""
    positions = torch.arange(length)
    margins = torch.stack(
        [torch.minimum(positions - start, start + window - 1 - positions) for start in starts]
    )  # (windows, length); negative outside the window
    return margins.argmax(dim=0)


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


class FrozenEncoderFeatures(nn.Module):
    """Word features from a frozen HF encoder: the hidden layers `config.encoder_layers` (indices into
    `hidden_states`, 0 = embeddings, -1 = last), each pooled per word. The encoder stays in eval mode and never
    receives gradients; the features are the same whether computed here per batch or read from a feature cache.
    """

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        encoder_config = AutoConfig.for_model(**config.encoder_config)
        self.encoder = AutoModel.from_config(encoder_config)
        self.layers = list(config.encoder_layers)
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
        return encoder_position_limit(self.encoder.config)

    @torch.no_grad()
    def subtoken_states(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, S, len(layers), H), in overlapping windows when S exceeds the encoder's limit."""
        limit = self.max_length()
        length = input_ids.shape[1]
        if limit is None or length <= limit:
            return self._states(input_ids, attention_mask)
        starts = window_starts(length, limit)
        owners = window_owners(length, limit, starts).to(input_ids.device)
        states = None
        for index, start in enumerate(starts):
            window_mask = attention_mask[:, start : start + limit]
            rows = window_mask.any(dim=1).nonzero().squeeze(1)  # rows with real sub-tokens in this window
            if rows.numel() == 0:
                continue
            window = self._states(input_ids[rows, start : start + limit], window_mask[rows])
            if states is None:
                states = window.new_zeros(input_ids.shape[0], length, *window.shape[2:])
            owned = (owners[start : start + limit] == index).nonzero().squeeze(1)  # window-relative positions
            states[rows.unsqueeze(1), (start + owned).unsqueeze(0)] = window[:, owned]
        return states

    def _states(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor) -> torch.Tensor:
        outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return torch.stack([outputs.hidden_states[layer] for layer in self.layers], dim=2)

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
        Returns (batch, num_words, len(encoder_layers), hidden).
        """
        states = self.subtoken_states(encoder_input_ids, encoder_attention_mask)  # (B, S, L, H)
        batch, subtokens, layers, size = states.shape
        pooled = pool_subtokens(states.reshape(batch, subtokens, layers * size), encoder_word_ids, num_words,
                                self.pooling)  # fmt: skip
        return pooled.reshape(batch, num_words, layers, size)


class LayerMix(nn.Module):
    """Learned mix of several encoder layers: gamma * sum_l softmax(w)_l * x_l (ELMo's scalar mix).
    (batch, words, layers, hidden) -> (batch, words, hidden). Starts as the plain average (w = 0, gamma = 1)."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))
        self.gamma = nn.Parameter(torch.ones(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mix = torch.softmax(self.weights, dim=0).to(features.dtype)
        return self.gamma.to(features.dtype) * torch.einsum("bwlh,l->bwh", features, mix)


@register_input_embeddings
class EncoderInputs(InputEmbeddings):
    """E(x) = [frozen encoder word feature ; CharCNN features]. Reads `encoder_input_ids`, `encoder_attention_mask`
    and `encoder_word_ids` (batch, sub_tokens) and runs the encoder, or reads precomputed `input_features` (batch,
    words, layers, hidden) or (batch, words, hidden) from an `EncoderFeatureCache`; several layers are mixed by the
    learned `LayerMix`. Load the encoder's weights with `load_pretrained_encoder`."""

    input_mode = "encoder"
    cacheable = True

    def __init__(self, config: ManMoeConfig):
        super().__init__()
        self.encoder_features = FrozenEncoderFeatures(config)
        self.layer_mix = LayerMix(len(config.encoder_layers)) if len(config.encoder_layers) > 1 else None
        self.char_cnn = CharCNN(config) if config.use_char_cnn else None

    @property
    def output_size(self) -> int:
        hidden = self.encoder_features.encoder.config.hidden_size
        return hidden + (self.char_cnn.output_size if self.char_cnn else 0)

    def load_pretrained_encoder(self, name_or_path: str, **kwargs) -> None:
        """Load the frozen encoder's pretrained weights (a Hub name or a local folder; safetensors only)."""
        from transformers import AutoModel

        pretrained = AutoModel.from_pretrained(name_or_path, **{"use_safetensors": True, **kwargs})
        self.encoder_features.encoder.load_state_dict(pretrained.state_dict())
        self.encoder_features.freeze()

    def forward(
        self,
        attention_mask: torch.Tensor,
        char_ids: torch.LongTensor | None = None,
        encoder_input_ids: torch.LongTensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        encoder_word_ids: torch.LongTensor | None = None,
        input_features: torch.Tensor | None = None,
        **unused,
    ) -> list[torch.Tensor]:
        """-> [(batch, words, hidden), (batch, words, char_hidden_size) with the CharCNN]."""
        if input_features is None:
            if encoder_input_ids is None or encoder_attention_mask is None or encoder_word_ids is None:
                raise ValueError(
                    "input_mode='encoder' needs `input_features` (precomputed) or `encoder_input_ids`, "
                    "`encoder_attention_mask` and `encoder_word_ids`"
                )
            input_features = self.encoder_features(encoder_input_ids, encoder_attention_mask, encoder_word_ids,
                                                   attention_mask.shape[1])  # fmt: skip
        blocks = [self.mix_layers(input_features)]
        if self.char_cnn is not None:
            if char_ids is None:
                raise ValueError("use_char_cnn=True needs `char_ids` (from ManMoeTokenizer)")
            blocks.append(self.char_cnn(char_ids))
        return blocks

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

    @classmethod
    def describe(cls, config: dict, short: bool = False) -> str:
        name = Path(config.get("encoder_name_or_path") or "encoder").name
        layers = config.get("encoder_layers") or [-1]
        plural = "s" if len(layers) > 1 else ""
        if short:
            text = f"{name} layer{plural} {' '.join(map(str, layers))}"
            text += " (mean)" if config.get("encoder_pooling") == "mean" else ""
        else:
            pooling = "mean of sub-tokens" if config.get("encoder_pooling") == "mean" else "first sub-token"
            text = f"frozen encoder {name} (layer{plural} {' '.join(map(str, layers))}, {pooling})"
        return text + (" + CharCNN" if config.get("use_char_cnn", True) else "")

    @classmethod
    def base_model(cls, config: dict) -> str | None:
        return config.get("encoder_name_or_path")
