"""`examples/run_classification.py` end to end: offline on tiny review fixtures, and on the real Webis-CLS-10 data in
../shared."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_script
from tests.examples.vector_fixtures import write_vec_gz

REPO = Path(__file__).resolve().parents[2]
LANGUAGES = ["en", "de", "fr", "ja"]
REVIEWS = {  # (summary, text, rating)
    "en": [("Great book", "I loved it, a wonderful story.", 5.0), ("Awful", "Boring and bad. I hated it.", 1.0)],
    "de": [("Tolles Buch", "Ich habe es geliebt, wunderbar.", 5.0), ("Schlecht", "Langweilig und schlecht.", 2.0)],
    "fr": [("Super livre", "Je l'ai adoré, merveilleux.", 4.0), ("Nul", "Ennuyeux et mauvais &amp; long.", 1.0)],
    "ja": [("素晴らしい", "とても良い本です。\u3000大好き!", 5.0), ("最悪", "つまらない本でした。", 1.0)],
}


def load_run_classification():
    """`examples/run_classification.py` as a module (registered in sys.modules, which its dataclasses need)."""
    return load_script("examples/run_classification.py")


def write_fixtures(folder: Path, copies: int = 4) -> tuple[list[str], list[str]]:
    """Tiny Webis-style `.review.gz` files (a few copies of two reviews) and 6-d `.vec.gz` files (lower-cased words,
    as the tokenizer splits them) for the four languages."""
    from modeling_manmoe import ManMoeTokenizer

    splitter = ManMoeTokenizer(vocabularies={lang: [] for lang in LANGUAGES}, characters=[], languages=LANGUAGES,
                               do_lower_case=True, mecab_languages=["ja"])  # fmt: skip
    rng = np.random.default_rng(0)
    files, vectors = [], []
    for lang, reviews in REVIEWS.items():
        items = "".join(
            f"<item><summary>{summary}</summary><rating>{rating}</rating><text>{text}</text>"
            f"<category>books</category></item>\n"
            for summary, text, rating in reviews * copies
        )
        path = folder / f"{lang}.review.gz"
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(f'<?xml version="1.0" encoding="utf-8"?>\n<items>{items}</items>\n')
        files.append(f"{lang}={path}")
        words = sorted(
            {w for s, t, _ in reviews for w in splitter.split_words(f"{s}\n{t}".replace("&amp;", "&"), lang)}
        )
        vec = folder / f"{lang}.vec.gz"
        vectors.append(f"{lang}={write_vec_gz(vec, words, rng)}")
    return files, vectors


def test_run_classification_on_fixture_files_writes_every_output(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    files, vectors = write_fixtures(tmp_path)
    out = tmp_path / "run"
    argv = ["--source_languages", "en", "de", "fr", "--target_language", "ja", "--train_files", *files,
            "--test_files", *files, "--word_vectors", *vectors, "--output_dir", str(out), "--do_train",
            "--do_eval", "--do_predict", "--max_steps", "3", "--eval_steps", "2", "--validation_fraction", "0.25",
            "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    results = load_run_classification().main(argv)
    saved = json.loads((out / "all_results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["task"] == "text-classification" and saved["train"]["global_step"] == 3
    assert saved["train"]["model_selection"] == "source_mean"
    assert sorted(saved["dev"]) == ["de", "en", "fr"], "dev = held-out source training data; the target has none"
    assert sorted(saved["test"]) == sorted(LANGUAGES)
    assert all(0 <= scores["accuracy"] <= 100 for scores in saved["test"].values())
    provenance = saved["data_and_vector_files"]
    assert provenance["validation/en"]["held_out_from"] == "train/en" and provenance["validation/en"]["texts"] == 2
    assert provenance["train/en"]["texts"] == 6 and provenance["train/ja"]["texts"] == 8  # 2 en held out
    assert provenance["train/ja"]["words"] > 0
    assert all(len(entry["sha256"]) == 64 for key, entry in provenance.items() if "sha256" in entry)
    assert saved["config"]["id2label"] == {"0": "negative", "1": "positive"}
    predictions = [json.loads(line) for line in (out / "predictions_test_ja.jsonl").read_text().splitlines()]
    assert len(predictions) == 8 and predictions[0]["label"] == "positive"
    assert {p["prediction"] for p in predictions} <= {"negative", "positive"}
    assert not list(out.glob(".*.tmp")), "no temporary files left behind"
    # the saved folder loads with the Auto classes and the text-classification pipeline, splitting raw text the
    # same way (lower-cased; MeCab for Japanese, the tokenizer's default language: the target)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.do_lower_case and tokenizer.mecab_languages == ["ja"] and tokenizer.language == "ja"
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model(**tokenizer(["とても良い本です。"], return_tensors="pt")).logits.shape == (1, 2)
    classifier = pipeline("text-classification", model=str(out), trust_remote_code=True)
    output = classifier("とても良い本です。大好き!")
    assert output[0]["label"] in {"negative", "positive"} and 0.5 <= output[0]["score"] <= 1.0


def test_run_classification_reads_csv_and_jsonl_files(tmp_path):
    """Users' own data: CSV/JSONL files with text and label columns (here named `review` and `sentiment`)."""
    _, vectors = write_fixtures(tmp_path)
    train = []
    for lang, reviews in REVIEWS.items():
        rows = [(f"{s}. {t}", "pos" if rating > 3 else "neg") for s, t, rating in reviews * 3]
        if lang in ("en", "ja"):
            path = tmp_path / f"{lang}.csv"
            path.write_text("review,sentiment\n" + "".join(f'"{t}",{label}\n' for t, label in rows), encoding="utf-8")
        else:
            path = tmp_path / f"{lang}.jsonl"
            path.write_text("".join(json.dumps({"review": t, "sentiment": label}) + "\n" for t, label in rows))
        train.append(f"{lang}={path}")
    argv = ["--source_languages", "en", "de", "fr", "--target_language", "ja", "--train_files", *train,
            "--test_files", *train, "--text_column", "review", "--label_column", "sentiment", "--word_vectors",
            *vectors, "--output_dir", str(tmp_path / "run"), "--do_train", "--do_predict", "--max_steps", "2",
            "--eval_steps", "2", "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm",
            "true"]  # fmt: skip
    results = load_run_classification().main(argv)
    assert results["config"]["id2label"] == {0: "neg", 1: "pos"}
    assert sorted(results["test"]) == sorted(LANGUAGES)


def test_run_classification_with_a_frozen_encoder_and_its_feature_cache(tmp_path):
    """Encoder mode on the review fixtures with a tiny BERT made here: features are cached once per dataset and the
    saved model classifies raw text with the live encoder."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tests.tiny_encoder import make_tiny_encoder

    files, _ = write_fixtures(tmp_path)
    encoder = make_tiny_encoder(tmp_path / "encoder")
    argv = ["--source_languages", "en", "de", "fr", "--target_language", "ja", "--train_files", *files,
            "--test_files", *files, "--encoder_name_or_path", str(encoder), "--feature_cache_dir",
            str(tmp_path / "cache"), "--output_dir", str(tmp_path / "run"), "--do_train", "--do_predict",
            "--max_steps", "2", "--eval_steps", "2", "--per_device_train_batch_size", "2", "--report_to", "none",
            "--disable_tqdm", "true"]  # fmt: skip
    results = load_run_classification().main(argv)
    assert results["config"]["encoder_config"] is not None and sorted(results["test"]) == sorted(LANGUAGES)
    assert len(list((tmp_path / "cache").iterdir())) >= 4, "features cached per dataset"
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "run")
    assert model(**tokenizer(["great book"], language="en", return_tensors="pt")).logits.shape == (1, 2)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--target_language", "en"], "also a source language"),
        (["--validation_fraction", "1.5"], "validation_fraction"),
        (["--model_selection", "target"], "needs a 'ja' dev file"),
        (["--webis_dir", "x", "--domain", "kitchen"], "needs --domain"),
        (["--oov_words", "random"], "--oov_words random needs the corpus' words per language"),
    ],
)
def test_run_classification_argument_errors_name_the_option(tmp_path, extra, message):
    files, vectors = write_fixtures(tmp_path)
    argv = ["--source_languages", "en", "de", "fr", "--target_language", "ja", "--word_vectors", *vectors,
            "--output_dir", str(tmp_path / "run"), "--do_train", "--max_steps", "1", "--report_to", "none"]  # fmt: skip
    if extra[0] == "--target_language":
        argv = argv[:4] + argv[6:]
    if extra[0] != "--webis_dir":
        argv += ["--train_files", *files]
    with pytest.raises(ValueError, match=message):
        load_run_classification().main(argv + extra)


@pytest.mark.integration
@pytest.mark.slow
def test_zero_shot_sentiment_on_real_webis_learns(shared_dir, tmp_path):
    """A short schedule on a subset of the real Webis-CLS-10 books reviews (en, fr, ja labeled -> de unlabeled, the
    shared webis-use-m3 vectors): the German test accuracy must be clearly above chance (50%).

    200 steps: the task losses stay near chance (0.69) for the first 50-90 steps and then drop, and where within
    that range depends on the seed and on float rounding; at 100 steps one rounding of seed 42 had not left the
    plateau (test accuracy de 56.5, ja 45.0) while seed 43 had (de 69.3). At 200 steps: de 72.8 (seed 42) and 74.3
    (seed 43), one thread."""
    vectors = [f"{lang}={shared_dir}/embeddings/webis-use-m3/{lang}.vec.gz" for lang in LANGUAGES]
    argv = ["--source_languages", "en", "fr", "ja", "--target_language", "de", "--webis_dir",
            str(shared_dir / "data/webis-cls-10"), "--domain", "books", "--word_vectors", *vectors,
            "--output_dir", str(tmp_path / "run"), "--do_train", "--do_eval", "--do_predict", "--max_steps", "200",
            "--eval_steps", "100", "--learning_rate", "3e-3", "--max_words", "40", "--max_train_sentences", "800",
            "--max_eval_sentences", "400", "--per_device_eval_batch_size", "64", "--report_to", "none",
            "--disable_tqdm", "true"]  # fmt: skip
    results = load_run_classification().main(argv)
    assert results["train"]["global_step"] == 200
    assert results["data_and_vector_files"]["test/de"]["texts"] == 400
    assert results["test"]["en"]["accuracy"] > 60, results["test"]  # measured 78.0 (de 72.8), 1 thread
    assert results["test"]["de"]["accuracy"] > 60, results["test"]


def test_a_trained_classifier_is_trained_further_from_its_weights_with_its_own_languages(tmp_path):
    files, vectors = write_fixtures(tmp_path)
    common = ["--train_files", *files, "--test_files", *files, "--do_train", "--do_eval", "--max_steps", "2",
              "--eval_steps", "2", "--validation_fraction", "0.25", "--per_device_train_batch_size", "2",
              "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    languages = ["--source_languages", "en", "de", "fr", "--target_language", "ja"]
    first = tmp_path / "first"
    load_run_classification().main([*languages, *common, "--word_vectors", *vectors, "--output_dir", str(first)])
    results = load_run_classification().main([*languages, *common, "--model_name_or_path", str(first),
                                              "--output_dir", str(tmp_path / "further")])  # fmt: skip
    assert results["train"]["global_step"] == 2
    assert results["data_and_vector_files"]["initial_model"]["name_or_path"] == str(first)
    swapped = ["--source_languages", "en", "de", "ja", "--target_language", "fr"]
    with pytest.raises(ValueError, match=r"was trained with sources \['en', 'de', 'fr'\] and target \['ja'\]"):
        load_run_classification().main([*swapped, *common, "--model_name_or_path", str(first),
                                        "--output_dir", str(tmp_path / "swapped")])  # fmt: skip
