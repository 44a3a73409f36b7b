"""Shared fixtures: the `../shared` data folder and tiny MAN-MoE configurations.

Tests that read `../shared` request `shared_dir`. Without the folder they skip with the reason; with
`MANMOE_REQUIRE_SHARED=1` (set by `.ci/run`) a missing or broken folder fails them instead.

Hypothesis profiles decide how many examples every property test runs (tests set no `max_examples` of their own):
"ci" (the default, fast) and "fuzz" (2,000 examples per test, no deadline), picked by the environment variable
`HYPOTHESIS_PROFILE` (or Hypothesis's own `--hypothesis-profile` option), e.g. to fuzz every reader:
`HYPOTHESIS_PROFILE=fuzz python -m pytest -q tests/data/test_conll.py tests/test_vectors.py -k fuzz`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

# tests write their examples under `tmp_path`, which is fine to share between examples
_FIXTURES = [HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=_FIXTURES)
settings.register_profile("fuzz", max_examples=2000, deadline=None, suppress_health_check=_FIXTURES)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MANMOE_SHARED", REPO.parent / "shared"))
EXPECTED = [
    "data/conll2002",
    "data/conll2003",
    "data/webis-cls-10",
    "embeddings/conll-use-m3",
    "embeddings/webis-use-m3",
    "models",
]


def load_script(relative_path: str) -> ModuleType:
    """A script of the repository (e.g. "examples/run_ner.py", "benchmarks/memory.py") as a module, executed once and
    registered in `sys.modules` under its file name (the example scripts' dataclasses need that)."""
    path = REPO / relative_path
    module = sys.modules.get(path.stem)
    if module is None:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    elif Path(module.__file__ or "").resolve() != path:
        raise RuntimeError(f"module {path.stem!r} is already loaded from {module.__file__}, not from {path}")
    return module


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: reads the real data in ../shared")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared data folder; skip (or fail when MANMOE_REQUIRE_SHARED=1) if it is absent or incomplete."""
    missing = [part for part in EXPECTED if not (SHARED / part).is_dir()]
    if missing:
        reason = f"shared data folder {SHARED} is absent or lacks {missing} (set MANMOE_SHARED to its location)"
        if os.environ.get("MANMOE_REQUIRE_SHARED") == "1":
            pytest.fail(reason + "; MANMOE_REQUIRE_SHARED=1 makes this a failure")
        pytest.skip(reason)
    return SHARED


TINY = dict(
    source_languages=["en", "de", "es"],
    unlabeled_languages=["nl"],
    word_vocab_size=20,
    word_embedding_dim=6,
    char_vocab_size=12,
    char_embedding_dim=5,
    char_num_filters=4,
    char_hidden_size=4,
    shared_hidden_size=8,
    private_hidden_size=8,
    predictor_hidden_size=10,
    discriminator_num_filters=4,
    discriminator_hidden_size=6,
    num_labels=5,
)


@pytest.fixture
def tiny_config():
    """A tiny word-vector configuration: 3 sources + 1 unlabeled target, CharCNN, 5 labels."""
    from modeling_manmoe import ManMoeConfig

    return ManMoeConfig(**TINY)


def random_batch(config, batch: int = 3, words: int = 7, chars: int = 6, seed: int = 0, lengths=None):
    """Random word/char ids with padding: sentence i has lengths[i] real words."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    lengths = lengths or [words - i for i in range(batch)]
    input_ids = torch.zeros(batch, words, dtype=torch.long)
    char_ids = torch.zeros(batch, words, chars, dtype=torch.long)
    labels = torch.full((batch, words), -100, dtype=torch.long)
    for row, length in enumerate(lengths):
        input_ids[row, :length] = torch.randint(2, config.word_vocab_size, (length,), generator=generator)
        for position in range(length):
            n = int(torch.randint(1, chars + 1, (1,), generator=generator))
            char_ids[row, position, :n] = torch.randint(1, config.char_vocab_size, (n,), generator=generator)
        labels[row, :length] = torch.randint(0, config.num_labels, (length,), generator=generator)
    return {
        "input_ids": input_ids,
        "char_ids": char_ids,
        "attention_mask": (input_ids != 0).long(),
        "lang_ids": torch.arange(batch) % len(config.source_languages),
        "labels": labels,
    }
