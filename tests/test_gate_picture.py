"""Gate weights and their picture on tiny random models: weights are means of the gates' softmax (summing to 1 over
the source experts), ablated gates are skipped, entity types get their own columns, the PNG opens, and the
`manmoe-gates` console script reads CoNLL and Webis-CLS-10 files."""

from __future__ import annotations

import json

import pytest
import torch

from modeling_manmoe import (
    ManMoeConfig,
    ManMoeForSequenceClassification,
    ManMoeForTokenClassification,
    ManMoeTokenizer,
)
from modeling_manmoe.run.gate_picture import (
    _columns,
    entity_type,
    gate_sentences,
    gate_weights,
    main,
    plot_gate_weights,
)
from tests.conftest import TINY

pytest.importorskip("matplotlib")

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
VOCABULARIES = {"en": ["peter", "lives", "in", "berlin"], "de": ["wohnt", "in"], "es": ["vive", "en"], "nl": ["woont"]}
SENTENCES = {
    "nl": [["Piet", "woont", "in", "Amsterdam"], ["Jan", "Smit", "woont", "in", "Den", "Haag", "."]],
    "en": [["Peter", "lives", "in", "Berlin"], ["Mary", "Ann"], ["in", "New", "York", "lives", "Peter", "."]],
}
GOLD = {
    "nl": [["B-PER", "O", "O", "B-LOC"], ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]],
    "en": [["B-PER", "O", "O", "B-LOC"], ["B-PER", "I-PER"], ["O", "B-LOC", "I-LOC", "O", "B-PER", "O"]],
}


def tiny_model(task: str = "token-classification", **overrides):
    """A random tiny model (3 source experts en/de/es, target nl) and its tokenizer."""
    labels = TAGS if task == "token-classification" else ["negative", "positive"]
    settings = {**TINY, "num_labels": len(labels), "id2label": dict(enumerate(labels)), **overrides}
    config = ManMoeConfig(**settings, label2id={label: i for i, label in enumerate(labels)})
    torch.manual_seed(0)
    model_class = ManMoeForTokenClassification if task == "token-classification" else ManMoeForSequenceClassification
    model = model_class(config)
    model.set_word_vectors(torch.randn(config.word_vocab_size, config.word_embedding_dim))
    tokenizer = ManMoeTokenizer(
        vocabularies=VOCABULARIES, characters=list("abcdefghij"), languages=config.all_languages
    )
    return model, tokenizer


def manual_means(model, tokenizer, sentences, lang, field):
    """Reference: the mean softmax of one gate over a language's real words (or sentences), all in one batch."""
    encoded = tokenizer(sentences, language=lang, is_split_into_words=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        weights = torch.softmax(getattr(model(**encoded), field).double(), dim=-1)
    if weights.dim() == 3:
        weights = weights[encoded["attention_mask"].bool()]
    return weights.mean(0)


def test_tagging_weights_are_mean_gate_softmax_per_language_and_entity_type():
    model, tokenizer = tiny_model()
    model.train()
    weights = gate_weights(model, tokenizer, SENTENCES, GOLD, batch_size=2)
    assert model.training, "the model's training mode is restored"
    assert weights["experts"] == ["en", "de", "es"] and weights["task"] == "token-classification"
    assert set(weights["gates"]) == {"private", "predictor"} and weights["languages"] == ["nl", "en"]
    for gate, field in (("private", "private_gate_logits"), ("predictor", "predictor_gate_logits")):
        for lang, sentences in SENTENCES.items():
            values = weights["gates"][gate][lang]
            assert len(values) == 3 and sum(values) == pytest.approx(1.0)
            # batches of 2 give the same means as one batch with everything
            expected = manual_means(model, tokenizer, sentences, lang, field)
            assert values == pytest.approx(expected.tolist(), abs=1e-6)
        by_type = weights["entity_types"][gate]
        assert list(by_type["nl"]) == ["PER", "LOC", "O"]  # fixed order, O last
        for lang in SENTENCES:
            assert all(sum(values) == pytest.approx(1.0) and len(values) == 3 for values in by_type[lang].values())
    assert weights["counts"]["nl"] == {"sentences": 2, "words": 11, "entity_types": {"PER": 3, "LOC": 3, "O": 5}}
    assert weights["counts"]["en"]["words"] == 12
    json.dumps(weights)  # plain lists and numbers


def test_classification_predictor_gate_is_a_mean_over_sentences():
    model, tokenizer = tiny_model("text-classification")
    weights = gate_weights(model, tokenizer, SENTENCES, batch_size=2)
    assert weights["task"] == "text-classification" and "entity_types" not in weights
    for lang, sentences in SENTENCES.items():
        expected = manual_means(model, tokenizer, sentences, lang, "predictor_gate_logits")
        assert weights["gates"]["predictor"][lang] == pytest.approx(expected.tolist(), abs=1e-6)
        assert sum(weights["gates"]["private"][lang]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="tags_by_language is for a tagger"):
        gate_weights(model, tokenizer, SENTENCES, GOLD)


@pytest.mark.parametrize(
    "ablation, present",
    [
        ({"use_private_moe": False}, {"predictor"}),
        ({"use_predictor_moe": False}, {"private"}),
        ({"use_private_moe": False, "use_predictor_moe": False}, set()),
    ],
)
def test_ablated_gates_are_skipped(ablation, present, tmp_path):
    model, tokenizer = tiny_model(**ablation)
    weights = gate_weights(model, tokenizer, SENTENCES, GOLD)
    assert set(weights["gates"]) == present and set(weights.get("entity_types", {})) == present
    if present:
        assert plot_gate_weights(weights, tmp_path / "gates.png").stat().st_size > 0
    else:
        with pytest.raises(ValueError, match="no gate weights to draw"):
            plot_gate_weights(weights, tmp_path / "gates.png")
        assert not list(tmp_path.iterdir())


def test_gate_sentences_takes_the_first_sentences_skips_empty_ones_and_names_the_tags():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=TAGS)),
        }
    )
    rows = {
        "tokens": [["Piet", "woont"], [], ["in", "Den", "Haag"], ["extra"]],
        "ner_tags": [[1, 0], [], [0, 3, 4], [0]],
    }
    dataset = datasets.Dataset.from_dict(rows, features=features)
    sentences, tags = gate_sentences({"nl": dataset}, max_sentences=3, tag_column="ner_tags")
    assert sentences == {"nl": [["Piet", "woont"], ["in", "Den", "Haag"]]}
    assert tags == {"nl": [["B-PER", "O"], ["O", "B-LOC", "I-LOC"]]}
    sentences, tags = gate_sentences({"nl": dataset.remove_columns("ner_tags")}, max_sentences=10)
    assert len(sentences["nl"]) == 3 and tags is None


def test_bad_input_is_refused():
    model, tokenizer = tiny_model()
    with pytest.raises(ValueError, match="no sentences for language 'nl'"):
        gate_weights(model, tokenizer, {"nl": []})
    with pytest.raises(ValueError, match="language 'nl', sentence 1: 7 words but 2 tags"):
        gate_weights(model, tokenizer, SENTENCES, {"nl": [GOLD["nl"][0], ["O", "O"]]})
    with pytest.raises(ValueError, match="2 sentences but 1 tag lists"):
        gate_weights(model, tokenizer, SENTENCES, {"nl": GOLD["nl"][:1]})
    assert [entity_type(tag) for tag in ("B-PER", "I-MISC", "O", "E-LOC")] == ["PER", "MISC", "O", "LOC"]


def test_picture_opens_with_entity_type_columns_for_tagging(tmp_path):
    from matplotlib.image import imread

    model, tokenizer = tiny_model()
    tagging = gate_weights(model, tokenizer, SENTENCES, GOLD)
    tagging["target_language"] = "nl"
    labels = [label for label, _, _ in _columns(tagging, "private")]
    assert labels == ["nl (target)\nall\nn=11", "nl\nPER\nn=3", "nl\nLOC\nn=3", "nl\nO\nn=5",
                      "en\nall\nn=12", "en\nPER\nn=4", "en\nLOC\nn=3", "en\nO\nn=5"]  # fmt: skip
    path = plot_gate_weights(tagging, tmp_path / "out" / "gates.png", title="a tiny tagger")
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert [p.name for p in path.parent.iterdir()] == ["gates.png"]  # written atomically, no temporary left

    model, tokenizer = tiny_model("text-classification")
    classification = gate_weights(model, tokenizer, SENTENCES)
    assert [label for label, _, _ in _columns(classification, "predictor")] == ["nl\nn=2", "en\nn=3"]
    narrow = imread(plot_gate_weights(classification, tmp_path / "cls.png"))
    assert 0 < narrow.shape[1] < image.shape[1]  # the tagger's picture is wider: its entity-type columns


def _save_run(model, tokenizer, folder, results):
    tokenizer.language = results["target_language"]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "all_results.json").write_text(json.dumps(results), encoding="utf-8")


def test_console_script_on_conll_files(tmp_path, capsys):
    model, tokenizer = tiny_model()
    run = tmp_path / "run"
    _save_run(model, tokenizer, run, {"target_language": "nl", "task": "token-classification"})
    conll = tmp_path / "conll"
    for lang, prefix in (("nl", "conll2002/ned"), ("en", "conll2003/eng")):
        (conll / prefix).parent.mkdir(parents=True, exist_ok=True)
        pairs = zip(SENTENCES[lang], GOLD[lang], strict=True)
        lines = ["\n".join(f"{w} {t}" for w, t in zip(s, g, strict=True)) for s, g in pairs]
        (conll / f"{prefix}.testb").write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    main([str(run), "--languages", "nl", "en", "--conll_dir", str(conll), "--max_sentences", "2",
          "--json", str(tmp_path / "gates.json")])  # fmt: skip
    assert (run / "gates.png").stat().st_size > 0
    saved = json.loads((tmp_path / "gates.json").read_text())
    assert saved["target_language"] == "nl" and saved["counts"]["en"]["sentences"] == 2
    assert list(saved["entity_types"]["private"]["en"]) == ["PER", "LOC", "O"]
    assert "private   nl: en " in capsys.readouterr().out


def test_console_script_on_webis_reviews_cuts_to_the_runs_max_words(tmp_path):
    model, tokenizer = tiny_model("text-classification")
    tokenizer.do_lower_case = True
    run = tmp_path / "run"
    _save_run(model, tokenizer, run, {"target_language": "nl", "max_words": 3})
    # Webis-CLS-10 has no Dutch: the reviews of a made-up target are read from the 'de' folder as language 'de'
    folder = tmp_path / "webis" / "de" / "books"
    folder.mkdir(parents=True)
    items = "".join(
        f"<item><rating>{rating}</rating><summary>{summary}</summary><text>{text}</text></item>"
        for rating, summary, text in ((5.0, "Gut", "Ein gutes Buch"), (1.0, "Schlecht", "wohnt in"), (4.0, "Ja", "x"))
    )
    (folder / "test.review").write_text(f"<items>{items}</items>", encoding="utf-8")
    output = tmp_path / "pictures" / "gates.png"
    main([str(run), "--languages", "de", "--webis_dir", str(tmp_path / "webis"), "--domain", "books",
          "--max_sentences", "2", "--output", str(output), "--json", str(tmp_path / "gates.json")])  # fmt: skip
    assert output.stat().st_size > 0
    saved = json.loads((tmp_path / "gates.json").read_text())
    assert saved["counts"]["de"] == {"sentences": 2, "words": 6}  # 2 reviews, each cut to its first 3 words
    with pytest.raises(SystemExit):
        main([str(run), "--webis_dir", str(tmp_path / "webis")])  # --domain is required with --webis_dir
