"""The input component interface: E(x), one vector per word, whatever computes it.

A MAN-MoE model takes its input representation as a component, the way flair's `SequenceTagger` takes any
`TokenEmbeddings`: the extractors, the trainer and the cards only use this interface. `ManMoeConfig.input_mode` names
the component; `build_input_embeddings(config)` is the one place that picks it. Two components ship with the package
(`WordVectorInputs`, `EncoderInputs`); another one plugs in with `register_input_embeddings`.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from .configuration_manmoe import ManMoeConfig
from .errors import ManMoeConfigError


class InputEmbeddings(nn.Module):
    """E(x): an `nn.Module` whose forward gives each word's input representation as column blocks.

    A component defines:
    - `input_mode`: the name `ManMoeConfig.input_mode` gives it;
    - `__init__(config)`: built from the config alone (its weights then come from the model's checkpoint, so it saves
      and loads with the model: frozen tables are buffers, frozen encoders are parameters without gradient);
    - `output_size`: the size of E(x), the sum of the blocks' sizes;
    - `forward(attention_mask, **inputs)`: the model's input tensors (those it reads; the others are None) ->
      a list of blocks (batch, words, d_k) that the extractors read as their concatenation (or an equivalent
      object the fast kernels read, in prediction);
    - `describe(config)` (a classmethod on the saved config dict): a line for results tables and cards,
      `base_model(config)`: the Hub model it is built on, if any, and `limitations(config)`: what a card says of it;
    - `cacheable`: True when its features can be computed once per dataset and cached (a frozen encoder).
    """

    input_mode: ClassVar[str]
    cacheable: ClassVar[bool] = False

    @property
    def output_size(self) -> int:
        raise NotImplementedError

    def forward(self, attention_mask: torch.Tensor, **inputs) -> list[torch.Tensor]:
        raise NotImplementedError

    @classmethod
    def describe(cls, config: dict, short: bool = False) -> str:
        """The input as a results table (`short`) or a model card names it."""
        return cls.input_mode

    @classmethod
    def base_model(cls, config: dict) -> str | None:
        """The Hub model this input is built on (a card's `base_model`), or None."""
        return None

    @classmethod
    def limitations(cls, config: dict) -> list[str]:
        """What a model card's Limitations section says of this input, one sentence each."""
        return []


INPUT_EMBEDDINGS: dict[str, type[InputEmbeddings]] = {}
"""The registered input components by `input_mode`."""


def register_input_embeddings(component: type[InputEmbeddings]) -> type[InputEmbeddings]:
    """Register `component` under its `input_mode` (usable as a class decorator)."""
    INPUT_EMBEDDINGS[component.input_mode] = component
    return component


def input_embeddings_class(input_mode: str) -> type[InputEmbeddings]:
    """The component registered as `input_mode`; a `ManMoeConfigError` naming the field otherwise."""
    if input_mode not in INPUT_EMBEDDINGS:
        raise ManMoeConfigError(
            f"ManMoeConfig.input_mode: {input_mode!r} is not a registered input component; registered: "
            f"{sorted(INPUT_EMBEDDINGS)} (register_input_embeddings)"
        )
    return INPUT_EMBEDDINGS[input_mode]


def build_input_embeddings(config: ManMoeConfig) -> InputEmbeddings:
    """The input component `config.input_mode` names, built from `config`."""
    return input_embeddings_class(config.input_mode)(config)


def saved_input_embeddings_class(config: dict) -> type[InputEmbeddings]:
    """The input component of a saved config (`config.json`, or the `config` entry of a run's results); without an
    `input_mode`, the config's default (the encoder input when there is an `encoder_config`)."""
    return input_embeddings_class(
        config.get("input_mode") or ("encoder" if config.get("encoder_config") else "word_vectors")
    )


def describe_input(config: dict, short: bool = False) -> str:
    """A saved config's input as a results table (`short`) or a card names it."""
    return saved_input_embeddings_class(config).describe(config, short)
