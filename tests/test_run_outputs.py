"""Run outputs: atomic writes, CoNLL prediction lines, file hashes, per-language scores."""

import hashlib
import json
import os

import pytest

from modeling_manmoe.run.outputs import atomic_write_text, conll_prediction_lines, sha256_file, write_json
from modeling_manmoe.run.setup import split_scores


def test_atomic_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "results.json"
    write_json(path, {"b": 1, "a": [1, 2]})
    write_json(path, {"f1": 61.5})
    assert json.loads(path.read_text()) == {"f1": 61.5}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "predictions.conll"
    atomic_write_text(path, "old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new and partial\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.conll"]


def test_conll_prediction_lines():
    text = conll_prediction_lines([(["Peter", "lives"], ["B-PER", "O"], ["B-PER", "B-LOC"]), (["Hi"], ["O"], ["O"])])
    assert text == "Peter B-PER B-PER\nlives O B-LOC\n\nHi O O\n\n"
    with pytest.raises(ValueError, match="sentence 0: 2 words, 2 gold and 1 predicted"):
        conll_prediction_lines([(["a", "b"], ["O", "O"], ["O"])])


def test_sha256_file(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc" * 1000)
    assert sha256_file(path, chunk_size=7) == hashlib.sha256(b"abc" * 1000).hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_split_scores_reads_the_trainers_flat_keys_per_language():
    metrics = {"test_nl_precision": 64.50123, "test_nl_recall": 55.32, "test_nl_f1": 59.55449, "test_en_f1": 80.0,
               "test_loss": 0.3}  # fmt: skip
    scores = split_scores(metrics, "test", ["en", "de", "nl"], ("precision", "recall", "f1"))
    assert scores == {"nl": {"precision": 64.5012, "recall": 55.32, "f1": 59.5545}}  # en lacks P/R, de everything
    assert split_scores({"eval_de_accuracy": 0.81234}, "eval", ["de", "ja"], ("accuracy",)) == {
        "de": {"accuracy": 0.8123}
    }
