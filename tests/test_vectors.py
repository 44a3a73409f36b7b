import gzip
import logging

import numpy as np
import pytest
import torch

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification, VectorFileError
from modeling_manmoe.inputs import build_word_vector_inputs
from modeling_manmoe.vectors import check_same_dimension, read_word_vectors


def write(path, text, compress=False):
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_reads_plain_and_gzip(tmp_path, compress):
    path = write(tmp_path / "v.vec", "2 3\nhello 1 2 3\nwörld 0.5 0 -1\n", compress)
    vectors = read_word_vectors(path)
    assert vectors.words == ["hello", "wörld"] and vectors.dim == 3 and vectors.vectors.dtype == np.float32
    assert np.allclose(read_word_vectors(path, normalize=True).vectors[0], np.array([1, 2, 3]) / np.sqrt(14))


@pytest.mark.parametrize(
    "text, message",
    [
        ("hello 1 2 3\n", ":1: expected a header"),
        ("3 3\nhello 1 2 3\n", "announces 3 words but the file has 1"),
        ("2 3\nhello 1 2 3\nbad 1 2\n", ":3: expected a word and 3 values, got 2"),
        ("1 3\nhello 1 x 3\n", "'hello' has a value that is not a number"),
        ("1 3\nhello 1 nan 3\n", "'hello' contains NaN or inf"),
        ("1 3\nhello 1 inf 3\n", "'hello' contains NaN or inf"),
        ("", ":1: expected a header"),
    ],
)
def test_errors_name_file_and_line(tmp_path, text, message):
    path = write(tmp_path / "bad.vec", text)
    with pytest.raises(VectorFileError, match=message) as error:
        read_word_vectors(path)
    assert str(path) in str(error.value)


def test_duplicates_keep_first_and_are_reported(tmp_path, caplog):
    path = write(tmp_path / "d.vec", "3 2\na 1 0\nb 0 1\na 5 5\n")
    with caplog.at_level(logging.WARNING):
        vectors = read_word_vectors(path)
    assert vectors.words == ["a", "b"] and vectors.vectors[0].tolist() == [1, 0]
    assert "1 duplicate word(s)" in caplog.text and str(path) in caplog.text


def test_truncated_gzip_and_bad_utf8(tmp_path):
    data = gzip.compress(b"2 2\na 1 0\nb 0 1\n" * 50)
    (tmp_path / "t.vec.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(VectorFileError, match="truncated gzip"):
        read_word_vectors(tmp_path / "t.vec.gz")
    (tmp_path / "l.vec").write_bytes(b"1 2\ncaf\xe9 1 0\n")
    with pytest.raises(VectorFileError, match=":2: not valid UTF-8"):
        read_word_vectors(tmp_path / "l.vec")
    with pytest.raises(FileNotFoundError, match="missing.vec"):
        read_word_vectors(tmp_path / "missing.vec")


def test_different_dimensions_and_max_words(tmp_path):
    a = read_word_vectors(write(tmp_path / "a.vec", "2 2\na 1 0\nb 0 1\n"), max_words=1)
    b = read_word_vectors(write(tmp_path / "b.vec", "1 3\nc 1 0 0\n"))
    assert a.words == ["a"]
    with pytest.raises(VectorFileError, match="different dimensions"):
        check_same_dimension({"en": a, "de": b})


def test_build_inputs_table_and_tokenizer(tmp_path):
    files = {
        "en": write(tmp_path / "en.vec", "2 2\nBerlin 3 4\nthe 1 0\n"),
        "nl": write(tmp_path / "nl.vec.gz", "1 2\nde 0 2\n", compress=True),
    }
    tokenizer, table = build_word_vector_inputs(files, ["en", "nl"], extra_characters=["ß"])
    assert table.shape == (5, 2) and torch.equal(table[0], torch.zeros(2))
    assert torch.allclose(table.norm(dim=-1)[1:], torch.ones(4))
    assert torch.allclose(table[2], torch.tensor([0.6, 0.8]))
    assert tokenizer(["berlin", "ß"], language="en", is_split_into_words=True)["input_ids"].tolist() == [[1, 1]]
    assert tokenizer(["Berlin"], language="en", is_split_into_words=True)["input_ids"].tolist() == [[2]]
    assert "ß" in tokenizer.char_to_id
    with pytest.raises(ValueError, match=r"no word-vector file for language\(s\) \['de'\]"):
        build_word_vector_inputs(files, ["en", "de"])


@pytest.mark.integration
def test_real_vector_files(shared_dir):
    for language in ["en", "de", "es", "nl"]:
        vectors = read_word_vectors(shared_dir / "embeddings" / "conll-use-m3" / f"{language}.vec.gz")
        assert len(vectors) == 20_000 and vectors.dim == 300 and np.isfinite(vectors.vectors).all()


@pytest.mark.integration
def test_paper_configuration_on_real_vectors(shared_dir, tmp_path):
    """The paper's CoNLL configuration built from the real vectors: 3,092,765 trainable parameters, the frozen
    table survives save/load."""
    folder = shared_dir / "embeddings" / "conll-use-m3"
    languages = ["en", "de", "es", "nl"]
    tokenizer, table = build_word_vector_inputs({lang: folder / f"{lang}.vec.gz" for lang in languages}, languages)
    config = ManMoeConfig(word_vocab_size=table.shape[0], char_vocab_size=tokenizer.char_vocab_size, num_labels=9)
    model = ManMoeForTokenClassification(config)
    model.set_word_vectors(table)
    assert model.num_trainable_parameters() == 3_092_765
    model.save_pretrained(tmp_path)
    loaded = ManMoeForTokenClassification.from_pretrained(tmp_path)
    assert torch.equal(loaded.manmoe.inputs.word_embeddings.weight, table)
