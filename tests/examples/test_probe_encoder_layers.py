"""`examples/probe_encoder_layers.py`: the linear tagger, the layer sets and a run on fixture files."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import load_script
from tests.examples.test_run_ner import SENTENCES
from tests.tiny_encoder import make_tiny_encoder

PREFIXES = {"en": "eng", "de": "deu", "es": "esp", "nl": "ned"}


def load_probe():
    return load_script("examples/probe_encoder_layers.py")


def test_linear_tagger_separates_separable_words():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (300,))
    features = torch.nn.functional.one_hot(labels, 3).float() * 4 + 0.3 * torch.randn(300, 3)
    tagger = load_probe().fit_linear_tagger(features, labels, num_labels=3, steps=200, learning_rate=1e-2)
    assert torch.equal(tagger(features), labels)


@pytest.mark.parametrize("text", ["6;8", "1,1", "0,3"])
def test_bad_layer_averages_name_the_option(text):
    probe = load_probe()
    args = probe.ProbeArguments(conll_dir=".", encoder_name_or_path=".", layer_averages=[text])
    with pytest.raises(ValueError, match="--layer_averages"):
        probe.parse_layer_sets(args, num_states=3)


def test_probe_on_fixture_files_scores_every_layer_and_average(tmp_path):
    for lang, sentences in SENTENCES.items():
        block = "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(text.split(), tags.split(), strict=True))
                            for text, tags in sentences)  # fmt: skip
        (tmp_path / f"{PREFIXES[lang]}.train").write_text("\n\n".join([block] * 3) + "\n", encoding="utf-8")
        (tmp_path / f"{PREFIXES[lang]}.testa").write_text(block + "\n", encoding="utf-8")
    encoder = make_tiny_encoder(tmp_path / "encoder")  # 2 layers: hidden states 0, 1, 2
    output = tmp_path / "probe.json"
    results = load_probe().main(["--conll_dir", str(tmp_path), "--encoder_name_or_path", str(encoder),
                                 "--target_languages", "de", "nl", "--layer_averages", "1,2", "--steps", "20",
                                 "--feature_cache_dir", str(tmp_path / "cache"), "--output_file", str(output)])  # fmt: skip
    assert list(results) == ["layer 0", "layer 1", "layer 2", "average 1,2"]
    for scores in results.values():
        assert set(scores) == {"de", "nl", "mean"} and all(0 <= value <= 100 for value in scores.values())
        assert scores["mean"] == pytest.approx((scores["de"] + scores["nl"]) / 2, abs=0.051)
    assert json.loads(output.read_text())["dev_f1"] == results
    assert len(list((tmp_path / "cache").iterdir())) == 6, "features of 4 training + 2 dev files, all layers"
