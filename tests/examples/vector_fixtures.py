"""Tiny word-vector files for the example scripts' fixture runs."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def write_vec_gz(path: Path, words: list[str], rng: np.random.Generator, dim: int = 6) -> Path:
    """A `.vec.gz` file (header `N DIM`, then `word v1 ... vDIM`) with random vectors for `words`."""
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(f"{len(words)} {dim}\n")
        for word in words:
            handle.write(word + " " + " ".join(f"{x:.4f}" for x in rng.normal(size=dim)) + "\n")
    return path
