"""The `token-classification` pipeline on a saved MAN-MoE tagger (remote code, word-level tokenizer) and the word
spans it relies on."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import pipeline

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification, ManMoeTokenizer
from tests.conftest import TINY

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture
def saved_tagger(tmp_path):
    """A tiny random tagger and its tokenizer (default language de), saved to a folder."""
    config = ManMoeConfig(
        **{**TINY, "id2label": dict(enumerate(LABELS)), "label2id": {n: i for i, n in enumerate(LABELS)}}
    )
    model = ManMoeForTokenClassification(config)
    tokenizer = ManMoeTokenizer(vocabularies={"en": ["peter"], "de": ["berlin"], "es": [], "nl": []},
                                characters=list("abc"), languages=["en", "de", "es", "nl"], language="de")  # fmt: skip
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return tmp_path


def test_saved_tagger_names_its_pipeline(saved_tagger):
    config = json.loads((saved_tagger / "config.json").read_text())
    assert (
        config["custom_pipelines"]["token-classification"]["impl"]
        == "pipeline_manmoe.ManMoeTokenClassificationPipeline"
    )
    assert (saved_tagger / "pipeline_manmoe.py").is_file()


def force_tag(model, tag: str) -> None:
    """Make every expert of the predictor output `tag` for every word."""
    experts = model.predictor.mixture.experts
    with torch.no_grad():
        experts.weight2.zero_()
        experts.bias2.fill_(-10.0)
        experts.bias2[:, LABELS.index(tag)] = 10.0


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_pipeline_tags_raw_text_word_by_word(saved_tagger, strategy):
    tagger = pipeline("token-classification", model=str(saved_tagger), trust_remote_code=True,
                      aggregation_strategy=strategy)  # fmt: skip
    text = "Peter  wohnt in Berlin."
    force_tag(tagger.model, "B-PER")
    entities = tagger(text)
    # one entity per word (B- starts an entity), each with its words as written and its character span
    assert [e["word"] for e in entities] == ["Peter", "wohnt", "in", "Berlin", "."]
    assert [(e["start"], e["end"]) for e in entities] == [(0, 5), (7, 12), (13, 15), (16, 22), (22, 23)]
    key = "entity" if strategy == "none" else "entity_group"
    assert {e[key] for e in entities} == ({"B-PER"} if strategy == "none" else {"PER"})
    force_tag(tagger.model, "I-PER")
    entities = tagger(text)
    if strategy == "none":
        assert len(entities) == 5
    else:  # I- continues the entity: one entity over the whole text, its word the text as written
        assert [(e["word"], e["start"], e["end"], e["entity_group"]) for e in entities] == [(text, 0, 23, "PER")]


def test_pipeline_language_argument_picks_the_word_table(saved_tagger):
    tagger = pipeline("token-classification", model=str(saved_tagger), trust_remote_code=True)
    words = tagger.tokenizer.words_with_offsets("Peter in Berlin", "en")
    assert words == [("Peter", 0, 5), ("in", 6, 8), ("Berlin", 9, 15)]
    assert tagger.tokenizer([["Peter"]], language="en", is_split_into_words=True)["input_ids"].tolist() == [[2]]
    force_tag(tagger.model, "B-LOC")
    assert [e["word"] for e in tagger("Peter in Berlin", language="en")] == ["Peter", "in", "Berlin"]


def test_pipeline_runs_under_bfloat16_autocast(saved_tagger):
    """The opt-in bfloat16 inference mode (benchmarks/README.md): the caller's `torch.autocast` reaches the model's
    forward, and the scores come back as float32 numbers. On the CPU also where a GPU is present (a CPU autocast)."""
    tagger = pipeline("token-classification", model=str(saved_tagger), trust_remote_code=True, device="cpu")
    force_tag(tagger.model, "B-LOC")
    dtypes = set()
    linear = next(m for m in tagger.model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, args, output: dtypes.add(output.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        entities = tagger("Peter in Berlin")
    assert dtypes == {torch.bfloat16}  # the layers ran in bfloat16
    assert [(e["word"], e["entity"]) for e in entities] == [("Peter", "B-LOC"), ("in", "B-LOC"), ("Berlin", "B-LOC")]
    assert all(0.9 < float(e["score"]) <= 1.0 for e in entities)


def test_words_with_offsets_lower_cases_and_keeps_spans():
    tokenizer = ManMoeTokenizer(vocabularies={"en": []}, characters=[], languages=["en"], do_lower_case=True)
    text = "GREAT book, Mr. Smith!"
    spans = tokenizer.words_with_offsets(text, "en")
    assert [w for w, _, _ in spans] == tokenizer.split_words(text, "en")
    assert [text[s:e] for _, s, e in spans] == ["GREAT", "book", ",", "Mr", ".", "Smith", "!"]


def test_words_with_offsets_of_japanese_text():
    pytest.importorskip("fugashi", reason="MeCab splitting needs the 'ja' extra (fugashi, ipadic)")
    pytest.importorskip("ipadic", reason="MeCab splitting needs the 'ja' extra (fugashi, ipadic)")
    tokenizer = ManMoeTokenizer(vocabularies={"ja": []}, characters=[], languages=["ja"], do_lower_case=True,
                                mecab_languages=["ja"])  # fmt: skip
    text = "素晴らしい出来です!\u3000CD"
    spans = tokenizer.words_with_offsets(text, "ja")
    assert [w for w, _, _ in spans] == tokenizer.split_words(text, "ja")
    assert [text[s:e] for _, s, e in spans] == ["素晴らしい", "出来", "です", "!", "CD"]
