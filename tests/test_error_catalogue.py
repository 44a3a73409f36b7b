"""The catalogue of bad inputs (docs/errors.md): each case raises a specific error whose message names the culprit.

Every case writes its own small fixture under `tmp_path` and never trains. Cases already tested elsewhere (the
pickled `pytorch_model.bin` and the corrupt `model.safetensors` in tests/test_safe_loading.py, the Hub loader in
tests/data/test_conll.py) are listed in docs/errors.md rather than repeated here.
"""

from __future__ import annotations

import gzip
import re

import datasets
import pytest
import transformers
from huggingface_hub.errors import StrictDataclassFieldValidationError

from modeling_manmoe import (
    CheckpointError,
    DataFormatError,
    LabelError,
    LanguageError,
    ManMoeConfig,
    ManMoeConfigError,
    ManMoeForTokenClassification,
    ManMoeTokenizer,
    VectorFileError,
)
from modeling_manmoe.data import files, load_text_classification, read_conll, read_webis_reviews, webis_file_path
from modeling_manmoe.data.inputs import build_word_vector_inputs
from modeling_manmoe.data.vectors import read_word_vectors
from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments
from tests.conftest import TINY
from tests.synthetic import synthetic_model, synthetic_task

transformers.logging.set_verbosity_error()

GOOD_CONLL = "Peter B-PER\nlives O\nin O\nBerlin B-LOC\n"


def write(path, content: str | bytes, compress: bool = False):
    """Write `content` (UTF-8 if text, gzip-compressed if asked) to `path`; return the path."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def truncated_gzip(text: str) -> bytes:
    """The first half of the gzip compression of `text`: a download that stopped half-way."""
    data = gzip.compress(text.encode("utf-8"))
    return data[: len(data) // 2]


def at(path, detail: str = "") -> str:
    """A regex matching the file `path` followed (anywhere later) by the regex `detail`."""
    return re.escape(str(path)) + detail


# -- CoNLL data files (modeling_manmoe.data.read_conll) ------------------------------------------------------


def test_conll_missing_file(tmp_path):
    path = tmp_path / "missing.conll"
    with pytest.raises(FileNotFoundError, match=at(path)):
        read_conll(path, "en")


def test_conll_empty_file(tmp_path):
    path = write(tmp_path / "empty.conll", "")
    with pytest.raises(DataFormatError, match=at(path, ": no sentences found")):
        read_conll(path, "en")


def test_conll_line_with_one_column(tmp_path):
    path = write(tmp_path / "one_column.conll", "Peter B-PER\nlives\nin O\n")
    with pytest.raises(DataFormatError, match=at(path, r":2: expected 2 to 5 columns .* found 1: 'lives'")):
        read_conll(path, "en")


def test_conll_tag_outside_iob(tmp_path):
    path = write(tmp_path / "tags.conll", "Peter B-PER\nBerlin LOC\n")
    with pytest.raises(DataFormatError, match=at(path, r":2: bad NER tag 'LOC'")):
        read_conll(path, "en")


def test_conll_tag_not_in_label_names(tmp_path):
    path = write(tmp_path / "dates.conll", "Peter B-PER\nMonday B-DATE\n")
    with pytest.raises(DataFormatError, match=at(path, r":2: NER tag 'B-DATE' is not one of the label names")):
        read_conll(path, "en")


def test_conll_binary_file_with_nul_bytes(tmp_path):
    """NUL bytes mark a binary file: refused before any decoding."""
    path = write(tmp_path / "weights.conll", b"Peter B-PER\n\x00\x01\x02 O\n")
    with pytest.raises(DataFormatError, match=at(path, r": looks like a binary file \(it contains NUL bytes\)")):
        read_conll(path, "en")


def test_conll_truncated_gzip(tmp_path):
    path = write(tmp_path / "train.conll.gz", truncated_gzip(GOOD_CONLL * 50))
    with pytest.raises(DataFormatError, match=at(path, ": truncated or corrupt gzip data")):
        read_conll(path, "en")


def test_conll_utf8_file_with_stray_bytes(tmp_path):
    """A UTF-8 file with one latin-1 byte: refused naming the line and byte offset, never decoded whole as latin-1."""
    path = write(tmp_path / "stray.conll", "Löwe B-PER\nlives O\nin O\n".encode() + b"M\xfcnchen B-LOC\n")
    expected = r": not valid UTF-8: 1 byte\(s\) that are not UTF-8, at line 4 \(byte offset 26\), in a file that also"
    with pytest.raises(DataFormatError, match=at(path, expected)):
        read_conll(path, "de")


def test_conll_mixed_column_counts(tmp_path):
    """A word holding a space splits into two columns: the line has more columns than the file's others."""
    path = write(tmp_path / "mixed.conll", "Peter B-PER\nlives O\nin O\nNew York B-LOC\n")
    with pytest.raises(DataFormatError, match=at(path, r":4: 3 columns, but line 1 has 2: expected the same number")):
        read_conll(path, "en")


def test_conll_gzip_beyond_the_size_limit(tmp_path, monkeypatch):
    """A small gzip file that expands beyond `MAX_DATA_BYTES` (default 4 GiB; here lowered to keep the test small)."""
    monkeypatch.setattr(files, "MAX_DATA_BYTES", 1_000_000)
    path = write(tmp_path / "bomb.conll.gz", GOOD_CONLL * 100_000, compress=True)
    with pytest.raises(DataFormatError, match=at(path, ": decompresses to more than 1000000 bytes, the limit of a")):
        read_conll(path, "en")


def test_conll_line_longer_than_the_limit(tmp_path):
    path = write(tmp_path / "long.conll", GOOD_CONLL + "x" * 2**20 + " O\n")
    with pytest.raises(
        DataFormatError, match=at(path, r":5: a line of 1048578 bytes, longer than the limit of 1048576")
    ):
        read_conll(path, "en")


# -- sentiment review files (modeling_manmoe.data.read_webis_reviews, load_text_classification) --------------


def review(rating: str = "5.0", summary: str = "Great", text: str = "I liked it.") -> str:
    """One Webis `<item>` (5 lines)."""
    return f"<item>\n\t<summary>{summary}</summary>\n\t<rating>{rating}</rating>\n\t<text>{text}</text>\n</item>\n"


def reviews(*items: str) -> str:
    """A Webis review document: the XML declaration on line 1, the first item from line 2."""
    return '<?xml version="1.0" encoding="utf-8"?>\n<items>' + "".join(items) + "</items>\n"


def test_reviews_missing_file(tmp_path):
    path = tmp_path / "train.review.gz"
    with pytest.raises(FileNotFoundError, match=at(path)):
        read_webis_reviews(path, "en")


def test_reviews_empty_file(tmp_path):
    path = write(tmp_path / "empty.review", "")
    with pytest.raises(
        DataFormatError, match=at(path, r": empty file; expected a Webis review document <items><item>")
    ):
        read_webis_reviews(path, "en")


def test_reviews_not_xml(tmp_path):
    """A CoNLL file given as a review file."""
    path = write(tmp_path / "eng.review", GOOD_CONLL)
    with pytest.raises(DataFormatError, match=at(path, r":1: malformed XML \(expat: syntax error: line 1, column 0\)")):
        read_webis_reviews(path, "en")


def test_reviews_malformed_xml(tmp_path):
    path = write(tmp_path / "unclosed.review", reviews(review(), review(text="unclosed</item>\n<text>")))
    expected = r":10: malformed XML in item 2 \(starting at line 7\) \(expat: mismatched tag: line 10, column 17\)"
    with pytest.raises(DataFormatError, match=at(path, expected)):
        read_webis_reviews(path, "en")


def test_reviews_dtd_with_entities_refused(tmp_path):
    """A "billion laughs" document: entities that expand to gigabytes. Refused before any entity is declared."""
    dtd = '<!DOCTYPE items [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
    path = write(tmp_path / "laughs.review", dtd + reviews(review(text="&lol2;")))
    with pytest.raises(
        DataFormatError, match=at(path, r":1: the document declares a DTD \(<!DOCTYPE items …>\); refused")
    ):
        read_webis_reviews(path, "en")


def test_reviews_without_items(tmp_path):
    path = write(tmp_path / "none.review", reviews())
    with pytest.raises(DataFormatError, match=at(path, r": no <item> elements; expected a Webis review document")):
        read_webis_reviews(path, "en")


def test_reviews_item_without_rating(tmp_path):
    path = write(tmp_path / "norating.review", reviews(review(), review().replace("<rating>5.0</rating>", "")))
    with pytest.raises(DataFormatError, match=at(path, r":7: item 2: no <rating>; expected a rating from 1.0 to 5.0")):
        read_webis_reviews(path, "en")


def test_reviews_rating_not_a_number(tmp_path):
    path = write(tmp_path / "stars.review", reviews(review("five stars")))
    expected = r":2: item 1: <rating> 'five stars' \(line 4\) is not a number; expected a rating from 1\.0 to 5\.0"
    with pytest.raises(DataFormatError, match=at(path, expected)):
        read_webis_reviews(path, "en")


def test_reviews_rating_outside_one_to_five(tmp_path):
    path = write(tmp_path / "ten.review", reviews(review(), review(), review("10.0")))
    expected = r":12: item 3: <rating> '10\.0' \(line 14\) is outside 1 to 5; expected a rating from 1\.0 to 5\.0"
    with pytest.raises(DataFormatError, match=at(path, expected)):
        read_webis_reviews(path, "en")


def test_reviews_item_without_summary_and_text(tmp_path):
    path = write(tmp_path / "blank.review", reviews(review(summary=" ", text="")))
    with pytest.raises(DataFormatError, match=at(path, r":2: item 1: neither <summary> nor <text> holds text")):
        read_webis_reviews(path, "en")


def test_reviews_truncated_gzip(tmp_path):
    path = write(tmp_path / "train.review.gz", truncated_gzip(reviews(*[review()] * 50)))
    with pytest.raises(DataFormatError, match=at(path, ": truncated or corrupt gzip data")):
        read_webis_reviews(path, "en")


def test_reviews_binary_file(tmp_path):
    path = write(tmp_path / "model.review", b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00")
    with pytest.raises(DataFormatError, match=at(path, r": looks like a binary file \(it contains NUL bytes\)")):
        read_webis_reviews(path, "en")


def test_webis_file_path_not_found(tmp_path):
    expected = r"no Webis-CLS-10 file for language 'ja', domain 'books', split 'test'; tried: " + at(tmp_path / "jp")
    with pytest.raises(FileNotFoundError, match=expected):
        webis_file_path(tmp_path, "ja", "books", "test")


def test_text_classification_missing_column(tmp_path):
    path = write(tmp_path / "reviews.csv", "review,stars\ngreat,5\n")
    with pytest.raises(
        DataFormatError, match=at(path, r" has no column 'text' \(text_column\); columns: \['review', 'stars'\]")
    ):
        load_text_classification(path, "en", cache_dir=str(tmp_path / "cache"))


def test_text_classification_empty_text(tmp_path):
    path = write(tmp_path / "reviews.jsonl", '{"text": "great", "label": "pos"}\n{"text": "", "label": "neg"}\n')
    with pytest.raises(DataFormatError, match=at(path, r", row 1: empty text '' in column 'text'")):
        load_text_classification(path, "en", cache_dir=str(tmp_path / "cache"))


def test_text_classification_label_not_in_label_names(tmp_path):
    path = write(tmp_path / "reviews.tsv", "text\tlabel\ngreat\tpositive\nso-so\tneutral\n")
    expected = r", row 1: label 'neutral' is not one of the label names \['negative', 'positive'\]"
    with pytest.raises(DataFormatError, match=at(path, expected)):
        load_text_classification(path, "en", label_names=["negative", "positive"], cache_dir=str(tmp_path / "cache"))


def test_text_classification_unparsable_file(tmp_path):
    path = write(tmp_path / "reviews.jsonl", '{"text": "great", "label": "pos"}\n{"text": "bad", "label": \n')
    with pytest.raises(
        DataFormatError, match=at(path, r": cannot be read as a JSONL file \(ArrowInvalid: JSON parse error")
    ):
        load_text_classification(path, "en", cache_dir=str(tmp_path / "cache"))


# -- word-vector files (modeling_manmoe.data.vectors, modeling_manmoe.data.inputs) --------------------------------------


@pytest.mark.parametrize(
    "content, expected",
    [
        pytest.param("", r":1: expected a header 'N DIM' .* got an empty file", id="empty-file"),
        pytest.param("a 1 0\nb 0 1\n", r":1: expected a header 'N DIM' .* got 'a 1 0'", id="no-header"),
        pytest.param("3 2\na 1 0\nb 0 1\n", r": the header announces 3 words but the file has 2 rows", id="count"),
        pytest.param("2 3\na 1 0\nb 0 1\n", r":2: expected a word and 3 values, got 2 values", id="dimension"),
        pytest.param("3 2\na 1 0\nb 1\nc 0 1\n", r":3: expected a word and 2 values, got 1 values", id="short-row"),
        pytest.param("2 2\na 1 0\nb 1 x\n", r":3: expected a number, got 'x'", id="not-a-number"),
        pytest.param("2 2\na 1 0\nb nan 1\n", r":3: the vector of word 'b' contains NaN, inf", id="nan"),
        pytest.param("2 2\na 1 0\nb 1 -inf\n", r":3: the vector of word 'b' contains NaN, inf", id="inf"),
        pytest.param(b"2 2\na 1 0\ncaf\xe9 1 0\n", r":3: not valid UTF-8", id="not-utf8"),
        pytest.param("2 2\na 1 0\nb 1e39 1\n", r":3: the vector of word 'b' contains NaN, inf", id="overflow"),
        pytest.param("2 2\na 1 0\nb 0 0\n", r":3: the vector of word 'b' is all zeros", id="zero-row"),
        pytest.param("2 2\na 1 0 0\nb 0 1 0\n", r":2: every row holds more numbers than the header", id="dim-smaller"),
        pytest.param("1 2\na 1 0\nb 0 1\n", r":3: the header announces 1 words but the file has more", id="extra-row"),
    ],
)
def test_vec_malformed_file(tmp_path, content, expected):
    path = write(tmp_path / "en.vec", content)
    with pytest.raises(VectorFileError, match=at(path, expected)):
        read_word_vectors(path)


def test_vec_line_longer_than_the_limit(tmp_path):
    """A line is read with a bound: a compressed file of one endless line is refused as soon as it passes the limit."""
    path = write(tmp_path / "en.vec.gz", "1 2\n" + "1" * (2**20 + 1), compress=True)
    with pytest.raises(VectorFileError, match=at(path, r":2: a line longer than the limit of 1048576 bytes per line")):
        read_word_vectors(path)


def test_vec_coverage_below_the_minimum(tmp_path):
    """German vectors given for English data: few of the data's words are found (as written or lower-cased)."""
    files = {"en": write(tmp_path / "en.vec", "3 2\nder 1 0\ndie 0 1\nBerlin 1 1\n")}
    corpus = {"en": "the man lives in Berlin and the woman lives in London".split()}
    expected = r": the word vectors of language 'en' hold only 9\.1% of the corpus' tokens \(1 of 11\)"
    with pytest.raises(VectorFileError, match=at(files["en"], expected)):
        build_word_vector_inputs(files, ["en"], coverage_corpus=corpus)


def test_vec_missing_file(tmp_path):
    path = tmp_path / "missing.vec"
    with pytest.raises(FileNotFoundError, match=at(path)):
        read_word_vectors(path)


def test_vec_truncated_gzip(tmp_path):
    path = write(tmp_path / "en.vec.gz", truncated_gzip("200 2\n" + "".join(f"w{i} 1 0\n" for i in range(200))))
    with pytest.raises(VectorFileError, match=at(path, r": corrupt or truncated gzip data \(EOFError\)")):
        read_word_vectors(path)


def test_vec_files_of_different_dimensions(tmp_path):
    files = {"en": write(tmp_path / "en.vec", "1 2\nthe 1 0\n"), "de": write(tmp_path / "de.vec", "1 3\nder 1 0 0\n")}
    expected = at(files["en"], r" \(en\) has dim 2, ") + at(files["de"], r" \(de\) has dim 3")
    with pytest.raises(VectorFileError, match=expected):
        build_word_vector_inputs(files, ["en", "de"])


def test_vec_language_without_a_file(tmp_path):
    files = {"en": write(tmp_path / "en.vec", "1 2\nthe 1 0\n")}
    with pytest.raises(LanguageError, match=r"no word-vector file for language\(s\) \['nl'\]"):
        build_word_vector_inputs(files, ["en", "nl"])


def test_vec_table_that_does_not_fit_the_config(tmp_path, tiny_config):
    """A table whose dimension differs from `word_embedding_dim`, e.g. from a header with a too small DIM."""
    files = {lang: write(tmp_path / f"{lang}.vec", "1 2\nword 1 0\n") for lang in tiny_config.all_languages}
    _, table = build_word_vector_inputs(files, tiny_config.all_languages)
    model = ManMoeForTokenClassification(tiny_config)
    with pytest.raises(ValueError, match=r"shape \(6, 2\), the config expects \(20, 6\) \(word_vocab_size, word_emb"):
        model.set_word_vectors(table)


# -- model configuration (ManMoeConfig) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, expected",
    [
        pytest.param(
            "shared_hidden_size", -2, r"shared_hidden_size: must be a positive even number", id="negative-size"
        ),
        pytest.param("char_num_filters", -1, r"char_num_filters: must be positive, got -1", id="negative-filters"),
        pytest.param("source_languages", [], r"source_languages: at least one labeled source language", id="no-source"),
        pytest.param(
            "source_languages",
            ["en", "nl"],
            r"unlabeled_languages: \['nl'\] also listed in source_languages",
            id="overlap",
        ),
        pytest.param("input_dropout", 1.5, r"input_dropout: a dropout probability must be in \[0, 1\)", id="dropout"),
        pytest.param("kernels", "cuda", r"kernels: 'cuda' is not one of \['fast', 'torch'\]", id="kernels"),
    ],
)
def test_config_invalid_field(field, value, expected):
    with pytest.raises(ManMoeConfigError, match=r"^ManMoeConfig\." + expected):
        ManMoeConfig(**{**TINY, field: value})


@pytest.mark.parametrize(
    "field, value, expected",
    [
        pytest.param("source_languages", "en", "expected a list, got str", id="bare-string"),
        pytest.param("shared_hidden_size", 8.0, "expected int, got float", id="float-size"),
        pytest.param("word_embedding_dim", "300", "expected int, got str", id="string-dim"),
    ],
)
def test_config_field_of_the_wrong_type(field, value, expected):
    """Types are checked by the `@strict` dataclass (huggingface_hub), whose error names the field."""
    with pytest.raises(StrictDataclassFieldValidationError, match=rf"field '{field}'(.|\n)*{expected}"):
        ManMoeConfig(**{**TINY, field: value})


# -- languages and sentences given to the tokenizer -----------------------------------------------------------


@pytest.fixture
def tokenizer():
    return ManMoeTokenizer(vocabularies={"en": ["the"], "nl": ["de"]}, characters=list("thed"), languages=["en", "nl"])


def test_tokenizer_unknown_language(tokenizer):
    with pytest.raises(LanguageError, match=r"language 'fr' is not one of the tokenizer's languages \['en', 'nl'\]"):
        tokenizer(["le"], language="fr", is_split_into_words=True)


def test_config_unknown_language(tiny_config):
    with pytest.raises(LanguageError, match=r"language 'fr' is not in the model's languages"):
        tiny_config.language_id("fr")


def test_tokenizer_empty_sentence(tokenizer):
    with pytest.raises(ValueError, match="sentence 1 of the batch has no words"):
        tokenizer([["the"], []], language="en", is_split_into_words=True)


def test_tokenizer_empty_word(tokenizer):
    with pytest.raises(ValueError, match=r"word 1 of a 'en' sentence is empty or not a string: ''"):
        tokenizer(["the", ""], language="en", is_split_into_words=True)


# -- training arguments (ManMoeTrainingArguments) -------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, expected",
    [
        pytest.param(
            "per_device_train_batch_size", 0, r"per_device_train_batch_size must be positive, got 0", id="batch-0"
        ),
        pytest.param(
            "per_device_train_batch_size", -4, r"per_device_train_batch_size must be positive, got -4", id="batch-neg"
        ),
        pytest.param("adversarial_lambda", -0.1, r"adversarial_lambda must be >= 0, got -0.1", id="lambda"),
        pytest.param("n_critic", 0, r"n_critic must be positive in alternating mode, got 0", id="n-critic"),
        pytest.param("adversarial_mode", "wgan", r"adversarial_mode='wgan'; expected one of \[", id="mode"),
        pytest.param("torch_compile", True, r"torch_compile=True is not supported: the model's shapes", id="compile"),
        pytest.param(
            "torch_compile_mode", "default", r"torch_compile=True is not supported: the model's", id="compile-mode"
        ),
    ],
)
def test_training_arguments_invalid_field(tmp_path, field, value, expected):
    with pytest.raises(ValueError, match=expected):
        ManMoeTrainingArguments(output_dir=str(tmp_path), use_cpu=True, **{field: value})


# -- trainer: training data and resuming (ManMoeTrainer) ------------------------------------------------------


@pytest.fixture(scope="module")
def task():
    """A tiny synthetic task: config (sources en/de/es, target nl), tokenizer, model and one Dataset per language."""
    config, tokenizer, table, data = synthetic_task(sentences_per_language=4, concepts=6, dim=4)
    return config, tokenizer, synthetic_model(config, table), data


def make_trainer(task, tmp_path, data):
    _, tokenizer, model, _ = task
    args = ManMoeTrainingArguments(output_dir=str(tmp_path), use_cpu=True, save_strategy="no", disable_tqdm=True)
    return ManMoeTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)


def test_trainer_target_language_without_data(task, tmp_path):
    data = {lang: dataset for lang, dataset in task[3].items() if lang != "nl"}
    with pytest.raises(LanguageError, match=r"train_dataset has no data for language\(s\) \['nl'\]"):
        make_trainer(task, tmp_path, data)


def test_trainer_language_not_in_the_config(task, tmp_path):
    data = {**task[3], "fr": task[3]["nl"]}
    with pytest.raises(LanguageError, match=r"train_dataset has language\(s\) \['fr'\] not in the model config"):
        make_trainer(task, tmp_path, data)


def test_trainer_empty_sentence(task, tmp_path):
    data = {**task[3], "nl": datasets.Dataset.from_dict({"tokens": [["nl0", "nl1"], []]})}
    with pytest.raises(DataFormatError, match=r"the 'nl' dataset has an empty sentence at row 1"):
        make_trainer(task, tmp_path, data)


def test_trainer_source_without_labels(task, tmp_path):
    data = {**task[3], "de": task[3]["de"].remove_columns("ner_tags")}
    with pytest.raises(DataFormatError, match=r"the 'de' dataset has no 'ner_tags' column"):
        make_trainer(task, tmp_path, data)


def test_trainer_label_set_differs_from_the_model(task, tmp_path):
    """A model (a checkpoint) trained on labels ['O', 'B-PER', 'B-LOC'] given data labelled with another set."""
    names = ["O", "B-ORG", "B-LOC"]
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    data = {**task[3], "de": datasets.Dataset.from_dict(task[3]["de"].to_dict(), features=features)}
    expected = r"the 'de' dataset's 'ner_tags' labels \['O', 'B-ORG', 'B-LOC'\] differ from the model's labels \['O', 'B-PER', 'B-LOC'\]"
    with pytest.raises(
        LabelError, match=expected + r" \(config\.id2label\); the model has no \['B-ORG'\]: .* Train a new model"
    ):
        make_trainer(task, tmp_path, data)


def test_trainer_label_id_out_of_range(task, tmp_path):
    """An evaluation dataset of plain int labels, one of them not an id of the model's 3 labels."""
    _, tokenizer, model, data = task
    evaluation = {"nl": datasets.Dataset.from_dict({"tokens": [["nl0"], ["nl1", "nl2"]], "ner_tags": [[0], [2, 7]]})}
    args = ManMoeTrainingArguments(output_dir=str(tmp_path), use_cpu=True, save_strategy="no", disable_tqdm=True)
    expected = r"the 'nl' dataset's 'ner_tags' column has label 7 at row 1, not one of the model's 3 label ids 0\.\.2"
    with pytest.raises(LabelError, match=expected):
        ManMoeTrainer(model=model, args=args, train_dataset=data, eval_dataset=evaluation, processing_class=tokenizer)


def checkpoint(folder, files: dict[str, str]):
    """A checkpoint folder holding `files` (name -> text)."""
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_resume_from_incomplete_checkpoint(task, tmp_path):
    folder = checkpoint(tmp_path / "checkpoint-4", {"model.safetensors": "x", "trainer_state.json": "{}"})
    trainer = make_trainer(task, tmp_path / "run", task[3])
    expected = at(folder, r"' is incomplete .*: no optimizer\.pt, discriminator_optimizer\.pt")
    with pytest.raises(CheckpointError, match=expected):
        trainer.train(resume_from_checkpoint=str(folder))


def test_resume_from_checkpoint_with_truncated_state(task, tmp_path):
    files = {"model.safetensors": "x", "trainer_state.json": '{"global_st', "optimizer.pt": "x"}
    folder = checkpoint(tmp_path / "checkpoint-6", files | {"discriminator_optimizer.pt": "x"})
    trainer = make_trainer(task, tmp_path / "run", task[3])
    with pytest.raises(CheckpointError, match=at(folder, r"' is incomplete .*: no trainer_state\.json")):
        trainer.train(resume_from_checkpoint=str(folder))


def test_resume_from_a_path_that_is_not_a_folder(task, tmp_path):
    path = write(tmp_path / "checkpoint-8.zip", b"PK")
    trainer = make_trainer(task, tmp_path / "run", task[3])
    with pytest.raises(CheckpointError, match=at(path, "' is not a folder")):
        trainer.train(resume_from_checkpoint=str(path))


def test_resume_last_without_a_complete_checkpoint(task, tmp_path):
    checkpoint(tmp_path / "run" / "checkpoint-2", {"model.safetensors": "x"})
    trainer = make_trainer(task, tmp_path / "run", task[3])
    with pytest.raises(CheckpointError, match="no complete checkpoint-N folder in '" + at(tmp_path / "run", "'")):
        trainer.train(resume_from_checkpoint="last")


def test_resume_under_another_run_fingerprint(task, tmp_path):
    """A checkpoint saved with other source languages in another order and other label names."""
    import json

    from modeling_manmoe.training.checkpoints import CHECKPOINT_RECORD, run_fingerprint

    saved = run_fingerprint(task[0]) | {"source_languages": ["de", "en", "es"], "labels": ["O", "B-ORG", "B-LOC"]}
    record = json.dumps({"run_fingerprint": saved, "train_loss_sum": 4.0, "train_loss_steps": [1, 4]})
    folder = checkpoint(tmp_path / "checkpoint-4", {"model.safetensors": "x", "trainer_state.json": '{"global_step": 4}',
                                                    "optimizer.pt": "x", "discriminator_optimizer.pt": "x",
                                                    CHECKPOINT_RECORD: record})  # fmt: skip
    trainer = make_trainer(task, tmp_path / "run", task[3])
    expected = at(folder, r"' was saved by a run of another configuration, and resuming would mix the two: ") + (
        r"source_languages: \['de', 'en', 'es'\] in the checkpoint, \['en', 'de', 'es'\] now; labels: \['O', 'B-ORG', "
        r"'B-LOC'\] in the checkpoint, \['O', 'B-PER', 'B-LOC'\] now\. Resume with the arguments of the run that saved it"
    )
    with pytest.raises(CheckpointError, match=expected):
        trainer.train(resume_from_checkpoint=str(folder))


def test_trainer_max_steps_zero(task, tmp_path):
    _, tokenizer, model, data = task
    args = ManMoeTrainingArguments(output_dir=str(tmp_path), use_cpu=True, save_strategy="no", max_steps=0)
    trainer = ManMoeTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    with pytest.raises(ValueError, match=r"max_steps=0 \(--max_steps 0\): the Trainer would still train one step"):
        trainer.train()


@pytest.mark.parametrize("value", [False, 0])
def test_pickled_weights_with_use_safetensors_false(tmp_path, tiny_config, value):
    import torch

    model = ManMoeForTokenClassification(tiny_config)
    model.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # a pickle beside the safetensors: never read
    expected = rf"ManMoeForTokenClassification\.from_pretrained: use_safetensors={value} is refused: MAN-MoE weights"
    with pytest.raises(ValueError, match=expected + r" load from safetensors only \(model\.safetensors\), never from"):
        ManMoeForTokenClassification.from_pretrained(tmp_path, use_safetensors=value)
