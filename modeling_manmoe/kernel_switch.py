"""`ManMoeConfig.kernels`: which implementation the model's modules run.

- "torch": plain PyTorch modules: `nn.LSTM` on packed sequences, `nn.Dropout`, `nn.Conv1d` followed by a max over
  the window starts. This is the readable reference implementation of the model. It runs anywhere and supports
  double backward (`torch.func`, second-order gradients).
- "fast": the same function, computed by the hand-written CPU kernels of the `modeling_manmoe.kernels` subpackage.
  These are the lockstep BiLSTM with its own backward, cheaper dropout masks, the CharCNN as table lookups, and
  prediction once per distinct word. On a GPU the BiLSTMs run cuDNN's `nn.LSTM`.

Both give the same outputs and gradients up to float rounding (`tests/test_kernels_switch.py`). A folder loaded
with `trust_remote_code=True` carries the model's flat code files but not the `kernels` subpackage: its code then uses
the installed package's kernels (same `KERNELS_API`), or, without the package, runs "torch" with a warning.
"""

from __future__ import annotations

import functools
import importlib
import logging
from types import ModuleType

from torch import nn

from .configuration_manmoe import KERNELS

KERNELS_API = 1
"""The interface between the model's modules and the kernels; a folder's code uses installed kernels of the same."""

logger = logging.getLogger(__name__)


@functools.cache
def load_kernels(kernels: str) -> ModuleType | None:
    """The `kernels` subpackage beside this module for `kernels="fast"`, None for "torch" (or where the subpackage is
    absent: a folder's code files loaded through remote code)."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels={kernels!r}; expected one of {list(KERNELS)}")
    if kernels == "torch":
        return None
    for name, package in ((".kernels", __package__), ("modeling_manmoe.kernels", None)):
        try:
            module = importlib.import_module(name, package)
        except ImportError:
            continue
        if getattr(module, "KERNELS_API", None) == KERNELS_API:
            return module
    logger.warning(
        "kernels='fast' needs the modeling_manmoe package (pip install modeling-manmoe) of this model's version, whose "
        "CPU kernels a saved folder does not carry; running the plain torch implementation of the same model"
    )
    return None


def make_dropout(p: float, kernels: ModuleType | None) -> nn.Module:
    """`nn.Dropout(p)`, or with the fast kernels their `Dropout` (the same distribution, cheaper random draws)."""
    return nn.Dropout(p) if kernels is None else kernels.dropout.Dropout(p)


def dropout_active(dropout: nn.Module) -> bool:
    """Whether a dropout module changes its input: in training mode with p > 0."""
    return dropout.training and dropout.p > 0.0
