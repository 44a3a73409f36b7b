#!/usr/bin/env python
"""Where a tagger's errors are: read a `predictions_test_LANG.conll` file (`word gold predicted`, as `run_ner.py`
writes it) and print, as Markdown, entity-level F1 per entity type (seqeval, conlleval mode), a token-level
confusion of entity types, and with `--word_vectors` how often the words inside gold entities are in the vector
file (exactly, only lower-cased, or not at all) and how often their entity type was predicted right.

    python examples/analyze_predictions.py runs/ner-de/predictions_test_de.conll \\
        --word_vectors ../shared/embeddings/conll-use-m3/de.vec.gz
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from seqeval.metrics import classification_report, f1_score

from modeling_manmoe.data.vectors import read_word_vectors

Sentence = list[tuple[str, str, str]]


def read_predictions(path: str | Path) -> list[Sentence]:
    """Sentences of (word, gold tag, predicted tag) from a `word gold predicted` file; blank lines end sentences.
    Raises ValueError naming the file and line when a line does not have exactly three fields."""
    sentences: list[Sentence] = []
    current: Sentence = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                if current:
                    sentences.append(current)
                current = []
                continue
            if len(fields) != 3:
                raise ValueError(f"{path}, line {number}: expected 'word gold predicted', got {line.rstrip()!r}")
            current.append((fields[0], fields[1], fields[2]))
    if current:
        sentences.append(current)
    if not sentences:
        raise ValueError(f"{path}: no sentences")
    return sentences


def entity_type(tag: str) -> str:
    return "O" if tag == "O" else tag.split("-", 1)[-1]


def type_scores(sentences: list[Sentence]) -> dict[str, dict[str, float]]:
    """Entity-level precision/recall/F1 (percent) and gold count per entity type, and `all` (micro)."""
    gold = [[g for _, g, _ in sentence] for sentence in sentences]
    predicted = [[p for _, _, p in sentence] for sentence in sentences]
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    scores = {
        name: {"precision": 100 * r["precision"], "recall": 100 * r["recall"], "f1": 100 * r["f1-score"],
               "support": r["support"]}
        for name, r in report.items() if not name.endswith(" avg")
    }  # fmt: skip
    scores["all"] = {"f1": 100 * f1_score(gold, predicted), "support": sum(s["support"] for s in scores.values())}
    return scores


def token_confusion(sentences: list[Sentence]) -> Counter:
    """(gold entity type, predicted entity type) -> tokens; "O" outside entities."""
    return Counter((entity_type(g), entity_type(p)) for sentence in sentences for _, g, p in sentence)


def vocabulary_coverage(sentences: list[Sentence], words: set[str]) -> dict[str, tuple[int, int]]:
    """For the tokens inside gold entities: found "exact"ly in `words`, only "lower-cased", or "missing" ->
    (tokens, tokens whose entity type was predicted right)."""
    lowered = {word.lower() for word in words}
    counts: dict[str, list[int]] = {"exact": [0, 0], "lower-cased": [0, 0], "missing": [0, 0]}
    for sentence in sentences:
        for word, gold, predicted in sentence:
            if gold == "O":
                continue
            found = "exact" if word in words else "lower-cased" if word.lower() in lowered else "missing"
            counts[found][0] += 1
            counts[found][1] += entity_type(gold) == entity_type(predicted)
    return {found: (total, right) for found, (total, right) in counts.items()}


def markdown(sentences: list[Sentence], words: set[str] | None) -> str:
    scores = type_scores(sentences)
    lines = ["| entity type | gold entities | precision | recall | F1 |", "|---|---|---|---|---|"]
    for name, s in scores.items():
        if name != "all":
            lines.append(f"| {name} | {s['support']} | {s['precision']:.1f} | {s['recall']:.1f} | {s['f1']:.1f} |")
    lines.append(f"| all | {scores['all']['support']} | | | {scores['all']['f1']:.1f} |")
    confusion = token_confusion(sentences)
    types = sorted({t for pair in confusion for t in pair} - {"O"}) + ["O"]
    lines += ["", "Tokens, gold type (rows) by predicted type (columns):", "",
              "| gold \\ predicted | " + " | ".join(types) + " |", "|---" * (len(types) + 1) + "|"]  # fmt: skip
    lines += [f"| {g} | " + " | ".join(str(confusion[g, p]) for p in types) + " |" for g in types]
    if words is not None:
        coverage = vocabulary_coverage(sentences, words)
        total = sum(n for n, _ in coverage.values()) or 1
        lines += ["", "Tokens inside gold entities, by whether the vector file has the word:", "",
                  "| in the vectors | tokens | share | entity type right |", "|---|---|---|---|"]  # fmt: skip
        for found, (n, right) in coverage.items():
            rate = f"{100 * right / n:.1f}%" if n else "–"
            lines.append(f"| {found} | {n} | {100 * n / total:.1f}% | {rate} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path, help="a `word gold predicted` file (run_ner.py's predictions)")
    parser.add_argument("--word_vectors", type=Path, default=None, help="the language's .vec/.vec.gz file")
    options = parser.parse_args(argv)
    sentences = read_predictions(options.predictions)
    words = set(read_word_vectors(options.word_vectors).words) if options.word_vectors else None
    text = markdown(sentences, words)
    print(text)
    return text


if __name__ == "__main__":
    main()
