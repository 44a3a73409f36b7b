"""What the gates share: the mean weight MAN-MoE's two gates give each source-language expert, per language (and per
entity type for NER), and a heat-map picture of it.

The private feature extractor F_p and the predictor C each mix one expert per source language with a gate (a softmax
over experts, expert i = `config.source_languages[i]`). Averaged over a language's words (F_p, and C for tagging) or
sentences (C for classification), the gate weights show which source languages the model finds similar to that
language. A gate that an ablation removed (`use_private_moe` / `use_predictor_moe` off) is left out.

    manmoe-gates runs/ner-nl --languages nl en --conll_dir ../shared/data             # writes runs/ner-nl/gates.png
    manmoe-gates runs/cls-de-books --languages de en --webis_dir ../shared/data/webis-cls-10 --domain books \\
        --max_sentences 100 --output /tmp/gates.png

The picture needs matplotlib (`pip install "modeling-manmoe[plots]"`), imported only when drawing.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import torch

from .outputs import atomic_write_bytes, atomic_write_text

GATES = {
    # gate name in the returned dict -> (output field of ManMoeClassifierOutput, panel title)
    "private": ("private_gate_logits", "F_p: private-feature gate"),
    "predictor": ("predictor_gate_logits", "C: predictor gate"),
}
ENTITY_ORDER = ("PER", "ORG", "LOC", "MISC")


def entity_type(tag: str) -> str:
    """The entity type of an IOB tag: the part after 'B-' / 'I-' (any 'X-'), or the tag itself ('O')."""
    return tag.split("-", 1)[1] if "-" in tag else tag


def _type_order(types) -> list[str]:
    """Entity types in a fixed order: PER, ORG, LOC, MISC, any others sorted, O last."""
    known = [t for t in ENTITY_ORDER if t in types]
    return known + sorted(set(types) - set(ENTITY_ORDER) - {"O"}) + (["O"] if "O" in types else [])


def gate_weights(
    model,
    tokenizer,
    sentences_by_language: dict[str, list[list[str]]],
    tags_by_language: dict[str, list[list[str]]] | None = None,
    batch_size: int = 32,
) -> dict:
    """Mean softmax weight of each gate over the source-language experts, per language (and per entity type).

    Runs `model` (a `ManMoeForTokenClassification` or `ManMoeForSequenceClassification`) in eval mode under
    `torch.no_grad` over each language's sentences (lists of words), `batch_size` at a time; the model's training
    mode is restored afterwards.

    Args:
        model: the MAN-MoE head; expert i is `model.config.source_languages[i]`.
        tokenizer: its `ManMoeTokenizer` (sentences are encoded with `language=` their language).
        sentences_by_language: language code -> sentences, each a non-empty list of words.
        tags_by_language: for a tagger only, language code -> gold IOB tags (one per word) of the same sentences;
            adds the mean weights per entity type (the tag after 'B-' / 'I-', and 'O').
        batch_size: sentences per forward pass.

    Returns:
        `{"task", "experts": [source languages], "languages": [...], "gates": {gate: {language: [weight per
        expert]}}, "entity_types": {gate: {language: {type: [weight per expert]}}} (tagging with tags only),
        "counts": {language: {"sentences", "words", "entity_types": {type: words}}}}`, gate being "private" (F_p,
        a mean over real words) and/or "predictor" (C: over real words for tagging, over sentences for
        classification); a gate the model does not have is absent. Each language's weights sum to 1 over experts.

    Raises:
        ValueError: a language without sentences, tags for a classifier, or tags that do not match the words.
    """
    from ..predictors import MoETagger

    tagging = isinstance(getattr(model, "predictor", None), MoETagger)
    if tags_by_language and not tagging:
        raise ValueError("tags_by_language is for a tagger (ManMoeForTokenClassification); this model classifies")
    tags_by_language = tags_by_language or {}
    device = next(model.parameters()).device
    sums: dict[str, dict[str, torch.Tensor]] = {gate: {} for gate in GATES}
    type_sums: dict[str, dict[str, dict[str, torch.Tensor]]] = {gate: {} for gate in GATES}
    counts: dict[str, dict] = {}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for lang, sentences in sentences_by_language.items():
                if not sentences:
                    raise ValueError(f"no sentences for language {lang!r}")
                tags = tags_by_language.get(lang)
                if tags is not None and len(tags) != len(sentences):
                    raise ValueError(f"language {lang!r}: {len(sentences)} sentences but {len(tags)} tag lists")
                count = counts[lang] = {"sentences": len(sentences), "words": 0}
                for start in range(0, len(sentences), batch_size):
                    batch = [list(words) for words in sentences[start : start + batch_size]]
                    batch_tags = (
                        None if tags is None else _type_rows(lang, start, batch, tags[start : start + batch_size])
                    )
                    encoded = tokenizer(batch, language=lang, is_split_into_words=True, return_tensors="pt")
                    output = model(**{key: value.to(device) for key, value in encoded.items()})
                    mask = encoded["attention_mask"].bool().to(device)
                    count["words"] += int(mask.sum())
                    for gate, (field, _) in GATES.items():
                        logits = getattr(output, field)
                        if logits is None:
                            continue
                        weights = torch.softmax(logits.double(), dim=-1)  # (batch, words, experts) or (batch, experts)
                        per_word = weights.dim() == 3
                        total = weights[mask].sum(0) if per_word else weights.sum(0)
                        sums[gate][lang] = sums[gate].get(lang, 0) + total
                        if batch_tags is not None and per_word:
                            _add_entity_types(type_sums[gate].setdefault(lang, {}), weights, batch_tags)
                if tags is not None:
                    found: dict[str, int] = {}
                    for sentence_tags in tags:
                        for tag in sentence_tags:
                            found[entity_type(tag)] = found.get(entity_type(tag), 0) + 1
                    count["entity_types"] = {kind: found[kind] for kind in _type_order(found)}
    finally:
        model.train(was_training)
    result = {
        "task": "token-classification" if tagging else "text-classification",
        "experts": list(model.config.source_languages),
        "languages": list(sentences_by_language),
        "gates": {},
        "counts": counts,
    }
    for gate in GATES:
        if sums[gate]:
            result["gates"][gate] = {lang: _normalise(total) for lang, total in sums[gate].items()}
        if type_sums[gate]:
            result.setdefault("entity_types", {})[gate] = {
                lang: {kind: _normalise(by_type[kind]) for kind in _type_order(by_type)}
                for lang, by_type in type_sums[gate].items()
            }
    return result


def _type_rows(lang: str, start: int, batch: list[list[str]], tags: list[list[str]]) -> list[list[str]]:
    """The entity type of every word of a batch, checked against the words."""
    rows = []
    for offset, (words, sentence_tags) in enumerate(zip(batch, tags, strict=True)):
        if len(words) != len(sentence_tags):
            raise ValueError(
                f"language {lang!r}, sentence {start + offset}: {len(words)} words but {len(sentence_tags)} tags"
            )
        rows.append([entity_type(tag) for tag in sentence_tags])
    return rows


def _add_entity_types(sums: dict[str, torch.Tensor], weights: torch.Tensor, types: list[list[str]]) -> None:
    """Add each word's gate weights (batch, words, experts) to the sum of its entity type."""
    for row, row_types in enumerate(types):
        for position, kind in enumerate(row_types):
            sums[kind] = sums.get(kind, 0) + weights[row, position]


def _normalise(total: torch.Tensor) -> list[float]:
    """Summed softmax weights -> their mean (the sum divided by the number of items, i.e. by its own total)."""
    return (total / total.sum()).tolist()


def gate_sentences(
    datasets_by_language: dict, max_sentences: int = 500, tag_column: str | None = None
) -> tuple[dict[str, list[list[str]]], dict[str, list[list[str]]] | None]:
    """The first `max_sentences` sentences (`tokens` column) of each language's dataset and, for a tagger
    (`tag_column`, a sequence of `ClassLabel`), their gold tags as names: the input of `gate_weights`. Empty
    sentences are left out (the gates are averaged over words)."""
    sentences, tags = {}, {}
    for lang, dataset in datasets_by_language.items():
        part = dataset.select(range(min(max_sentences, len(dataset))))
        words = part["tokens"]
        keep = [i for i, row in enumerate(words) if row]
        sentences[lang] = [list(words[i]) for i in keep]
        if tag_column is not None:
            names = part.features[tag_column].feature.names
            rows = part[tag_column]
            tags[lang] = [[names[t] for t in rows[i]] for i in keep]
    return sentences, (tags if tag_column is not None else None)


# --- the picture -------------------------------------------------------------------------------------------------------


def _columns(weights: dict, gate: str) -> list[tuple[str, list[float], str]]:
    """(label, weight per expert, language) for each column of a gate's panel: a language, then its entity types."""
    target = weights.get("target_language")
    by_type = weights.get("entity_types", {}).get(gate, {})
    counts = weights.get("counts", {})
    unit = "sentences" if weights.get("task") == "text-classification" and gate == "predictor" else "words"
    columns = []
    for lang, values in weights["gates"][gate].items():
        n = counts.get(lang, {}).get(unit)
        label = f"{lang} (target)" if lang == target else lang
        columns.append((f"{label}\nall\nn={n}" if by_type.get(lang) else f"{label}\nn={n}", values, lang))
        for kind, kind_values in by_type.get(lang, {}).items():
            n = counts.get(lang, {}).get("entity_types", {}).get(kind)
            columns.append((f"{lang}\n{kind}\nn={n}", kind_values, lang))
    return columns


def plot_gate_weights(weights: dict, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Draw `gate_weights(...)` as a PNG heat map and write it atomically (a temporary file, then `os.replace`).

    One panel per gate present (F_p, C); in each, one row per source-language expert and one column per language,
    followed by its entity types when the weights have them; every cell is annotated with its weight.

    Raises:
        ValueError: the weights hold no gate (both mixtures ablated).
        ImportError: matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError('the gate picture needs matplotlib: pip install "modeling-manmoe[plots]"') from error
    gates = [gate for gate in GATES if gate in weights.get("gates", {})]
    if not gates:
        raise ValueError("no gate weights to draw: the model has neither a private nor a predictor mixture of experts")
    experts = weights["experts"]
    panels = {gate: _columns(weights, gate) for gate in gates}
    width = max(len(columns) for columns in panels.values())
    largest = max(max(values) for columns in panels.values() for _, values, _ in columns)
    top = min(1.0, math.ceil(largest * 10) / 10 + 0.1)  # the colour scale: 0 to just above the largest weight
    figure = Figure(figsize=(2.2 + 1.05 * max(width, 3), 0.9 + len(gates) * (1.0 + 0.55 * len(experts))))
    FigureCanvasAgg(figure)
    figure.set_layout_engine("constrained")
    axes = figure.subplots(len(gates), 1, squeeze=False)[:, 0]
    image = None
    for ax, gate in zip(axes, gates, strict=True):
        columns = panels[gate]
        matrix = torch.tensor([values for _, values, _ in columns], dtype=torch.float64).T.numpy()  # experts x columns
        image = ax.imshow(matrix, vmin=0.0, vmax=top, cmap="viridis", aspect="auto")
        for (row, column), value in _cells(matrix):
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=9,
                    color="black" if value > 0.6 * top else "white")  # fmt: skip
        ax.set_xticks(range(len(columns)), [label for label, _, _ in columns], fontsize=8)
        ax.set_yticks(range(len(experts)), [f"{lang} expert" for lang in experts], fontsize=9)
        for column in range(1, len(columns)):
            if columns[column][2] != columns[column - 1][2]:
                ax.axvline(column - 0.5, color="white", linewidth=3)
        per = "sentence" if weights.get("task") == "text-classification" and gate == "predictor" else "word"
        ax.set_title(f"{GATES[gate][1]} (mean weight per {per})", fontsize=10)
    uniform = 1 / len(experts)
    bar = figure.colorbar(image, ax=list(axes), shrink=0.9)
    bar.set_label(f"mean gate weight (dashed: uniform, 1/{len(experts)})")
    bar.ax.axhline(uniform, color="white", linestyle="--", linewidth=1.5)
    if title:
        figure.suptitle(textwrap.fill(title, width=int(figure.get_figwidth() * 9)), fontsize=10)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=130)
    return atomic_write_bytes(path, image.getvalue())


def _cells(matrix):
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            yield (row, column), float(matrix[row, column])


# --- command line ------------------------------------------------------------------------------------------------------


def read_sentences(options, tokenizer, languages: list[str], max_words: int):
    """The first `--max_sentences` sentences (word lists, cut to `max_words` words when above 0) of each language, and
    their gold tags for CoNLL data (None for Webis-CLS-10)."""
    from ..data import conll_file_path, read_conll, read_webis_reviews, webis_file_path

    def cut(items: list) -> list:
        return items[:max_words] if max_words > 0 else items

    sentences, tags = {}, {}
    for lang in languages:
        if options.conll_dir is not None:
            dataset = read_conll(conll_file_path(options.conll_dir, lang, options.split), lang)
            words, names = gate_sentences({lang: dataset}, options.max_sentences, "ner_tags")
            sentences[lang] = [cut(row) for row in words[lang]]
            tags[lang] = [cut(row) for row in names[lang]]
        else:
            dataset = read_webis_reviews(webis_file_path(options.webis_dir, lang, options.domain, options.split), lang)
            words = [tokenizer.split_words(text, lang) for text in dataset["text"][: options.max_sentences]]
            sentences[lang] = [cut(w) for w in words if w]
    return sentences, tags or None


def main(argv: Sequence[str] | None = None) -> None:
    """`manmoe-gates RUN_DIR [--languages L ...] (--conll_dir DIR | --webis_dir DIR --domain D) [--split S]
    [--max_sentences N] [--max_words N] [--output PNG] [--json PATH]`."""
    parser = argparse.ArgumentParser(
        prog="manmoe-gates", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path, help="a finished run folder (saved model and tokenizer)")
    parser.add_argument("--languages", nargs="+", help="languages to read (default: the target, then the sources)")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--conll_dir", type=Path, help="CoNLL-2002/2003 folder (a tagger's data, with gold tags)")
    data.add_argument("--webis_dir", type=Path, help="Webis-CLS-10 folder (a classifier's data); needs --domain")
    parser.add_argument("--domain", help="Webis-CLS-10 domain: books, dvd or music")
    parser.add_argument("--split", default="test", help="data split to read (default: test)")
    parser.add_argument("--max_sentences", type=int, default=500, help="first N sentences per language (500)")
    parser.add_argument(
        "--max_words", type=int, help="first N words of each sentence (default: the run's max_words, else all)"
    )
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--output", type=Path, help="the PNG to write (default: RUN_DIR/gates.png)")
    parser.add_argument("--json", type=Path, help="also write the weights as JSON here")
    options = parser.parse_args(argv)
    if options.webis_dir is not None and not options.domain:
        parser.error("--webis_dir needs --domain (books, dvd or music)")
    if options.max_sentences < 1:
        parser.error("--max_sentences must be at least 1")

    from transformers import AutoTokenizer

    from ..modeling_manmoe import ManMoeForSequenceClassification, ManMoeForTokenClassification

    results_path = options.run_dir / "all_results.json"
    results = json.loads(results_path.read_text(encoding="utf-8")) if results_path.is_file() else {}
    config = json.loads((options.run_dir / "config.json").read_text(encoding="utf-8"))
    classifier = "ManMoeForSequenceClassification" in (config.get("architectures") or [])
    model_class = ManMoeForSequenceClassification if classifier else ManMoeForTokenClassification
    model = model_class.from_pretrained(options.run_dir)
    tokenizer = AutoTokenizer.from_pretrained(options.run_dir)
    languages = options.languages or list(
        dict.fromkeys([*model.config.unlabeled_languages, *model.config.source_languages])
    )
    max_words = options.max_words if options.max_words is not None else int(results.get("max_words") or 0)
    sentences, tags = read_sentences(options, tokenizer, languages, max_words)
    weights = gate_weights(model, tokenizer, sentences, tags if not classifier else None, options.batch_size)
    target = results.get("target_language")
    if target:
        weights["target_language"] = target
    output = options.output or options.run_dir / "gates.png"
    where = f"{options.domain} " if options.webis_dir is not None else ""
    title = f"{options.run_dir.name}: gate weights on {where}{options.split} data (first {options.max_sentences} per language)"
    if weights["gates"]:
        plot_gate_weights(weights, output, title=title)
        print(f"wrote {output}")
    else:
        print("the model has no gates (both mixtures ablated): no picture written")
    if options.json is not None:
        atomic_write_text(options.json, json.dumps(weights, indent=2, ensure_ascii=False) + "\n")  # keeps the order
        print(f"wrote {options.json}")
    for gate, by_language in weights["gates"].items():
        for lang, values in by_language.items():
            shares = ", ".join(
                f"{expert} {value:.3f}" for expert, value in zip(weights["experts"], values, strict=True)
            )
            print(f"{gate:9s} {lang}: {shares}")


if __name__ == "__main__":
    main()
