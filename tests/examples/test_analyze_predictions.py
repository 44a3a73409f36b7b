"""`examples/analyze_predictions.py`: per-type F1, token confusion and vocabulary coverage of a predictions file."""

from __future__ import annotations

import pytest

from tests.conftest import load_script

PREDICTIONS = """Angela B-PER B-PER
Merkel I-PER I-PER
besucht O O
Berlin B-LOC O
. O O

Die O O
UNO B-ORG B-LOC
tagt O B-MISC
"""


def load():
    return load_script("examples/analyze_predictions.py")


def test_scores_confusion_and_coverage(tmp_path, capsys):
    predictions = tmp_path / "predictions_test_de.conll"
    predictions.write_text(PREDICTIONS, encoding="utf-8")
    vectors = tmp_path / "de.vec"
    vectors.write_text("3 2\nangela 1 0\nBerlin 0 1\nDie 1 1\n", encoding="utf-8")
    text = load().main([str(predictions), "--word_vectors", str(vectors)])
    assert text == capsys.readouterr().out.rstrip("\n")
    assert "| PER | 1 | 100.0 | 100.0 | 100.0 |" in text and "| LOC | 1 | 0.0 | 0.0 | 0.0 |" in text
    assert "| ORG | 1 | 0.0 | 0.0 | 0.0 |" in text and "| all | 3 | | | 33.3 |" in text  # 1 right of 3
    assert "| LOC | 0 | 0 | 0 | 0 | 1 |" in text  # Berlin: LOC -> O
    assert "| ORG | 1 | 0 | 0 | 0 | 0 |" in text and "| O | 0 | 1 | 0 | 0 | 3 |" in text
    assert "| exact | 1 | 25.0% | 0.0% |" in text  # Berlin
    assert "| lower-cased | 1 | 25.0% | 100.0% |" in text  # Angela
    assert "| missing | 2 | 50.0% | 50.0% |" in text  # Merkel right, UNO wrong


def test_bad_line_and_empty_file_are_named(tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("Angela B-PER B-PER\nMerkel I-PER\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.conll, line 2: expected 'word gold predicted'"):
        load().read_predictions(bad)
    empty = tmp_path / "empty.conll"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty.conll: no sentences"):
        load().read_predictions(empty)
