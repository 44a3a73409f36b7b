"""Safe loading: weights only from safetensors, no pickle in the package, `torch.load` only with weights_only."""

import re
from pathlib import Path

import pytest
import torch

from modeling_manmoe import ManMoeForTokenClassification

PACKAGE = Path(__file__).resolve().parents[1] / "modeling_manmoe"


def test_the_package_never_unpickles():
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"import (c?pickle|dill|joblib)|from (c?pickle|dill|joblib) |pickle\.load", source), path
        for call in re.findall(r"torch\.load\([^)]*\)", source):
            assert "weights_only=True" in call, f"{path}: {call}"


def test_a_pickled_bin_is_refused_as_weights(tmp_path, tiny_config):
    model = ManMoeForTokenClassification(tiny_config)
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # a pickle: never loaded
    with pytest.raises(OSError, match="safetensors"):
        ManMoeForTokenClassification.from_pretrained(tmp_path)


def test_a_corrupt_safetensors_file_is_an_error(tmp_path, tiny_config):
    ManMoeForTokenClassification(tiny_config).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(Exception, match=r"(?i)safetensors|header|deserializ|incomplete"):
        ManMoeForTokenClassification.from_pretrained(tmp_path)
