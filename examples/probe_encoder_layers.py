#!/usr/bin/env python
"""Which hidden layer of a frozen encoder transfers best to an unlabeled language? A linear probe that takes
minutes, to choose `--encoder_layers` and `--encoder_pooling` before a MAN-MoE run that takes an hour.

For each target language, a linear tagger (one softmax layer over a word's encoder features: no BiLSTM, no
adversary, no experts) is trained on a seeded sample of the other languages' labeled training sentences and
scored with seqeval F1 on a seeded sample of the target's dev sentences, once per hidden state of the encoder
(0 = embeddings) and once per layer average asked for (`--layer_averages 6,8,10`: the starting point of the
learned layer mix). The features are those MAN-MoE training reads: `EncoderFeatureCache` with the same pooling and
windows, all hidden states computed in one pass.

    python examples/probe_encoder_layers.py --conll_dir ../shared/data \
        --encoder_name_or_path ../shared/models/multilingual-e5-small-trimmed --encoder_pooling mean \
        --layer_averages 6,8,10 --output_file runs/probe-e5-mean.json

Prints a Markdown table (one row per layer or average, one column per target, and the mean). The probe ranks
layers; its F1 is far below a trained MAN-MoE tagger's and is not a result to publish. Like the runs' model
selection it looks at target dev sentences, never at target test sentences.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from seqeval.metrics import f1_score
from transformers import AutoConfig, HfArgumentParser

from modeling_manmoe import ManMoeForTokenClassification
from modeling_manmoe.data import CONLL_NER_LABELS, conll_file_path, read_conll
from modeling_manmoe.data.feature_cache import EncoderFeatureCache
from modeling_manmoe.run.outputs import atomic_write_text
from modeling_manmoe.run.setup import ModelArguments, build_model, limit

logger = logging.getLogger("probe_encoder_layers")


@dataclass
class ProbeArguments:
    """The encoder, the data and the size of the probe."""

    conll_dir: str = field(
        metadata={"help": "Folder with CoNLL files (`conll_file_path` names: eng.train or fi.train, ...)."}
    )
    encoder_name_or_path: str = field(metadata={"help": "The frozen encoder: a Hub name or a local folder."})
    languages: list[str] = field(
        default_factory=lambda: ["en", "de", "es", "nl"], metadata={"help": "All languages of the experiment."}
    )
    target_languages: list[str] = field(
        default_factory=lambda: ["de", "es", "nl"],
        metadata={"help": "Targets to probe; each is scored with a tagger trained on the other languages."},
    )
    encoder_pooling: str = field(default="first", metadata={"help": "Word feature: 'first' sub-token or 'mean'."})
    layer_averages: list[str] = field(
        default_factory=list, metadata={"help": "Layer sets to average, e.g. 6,8,10 (several allowed)."}
    )
    train_sentences: int = field(default=1000, metadata={"help": "Labeled training sentences per language."})
    dev_sentences: int = field(default=600, metadata={"help": "Target dev sentences scored per target."})
    steps: int = field(default=300, metadata={"help": "Full-batch Adam steps per linear tagger."})
    learning_rate: float = field(default=1e-2)
    seed: int = field(default=0, metadata={"help": "Seeds the sentence samples and the taggers."})
    feature_cache_dir: str | None = field(
        default=None, metadata={"help": "Keep the probe's features here (default: a temporary folder, removed)."}
    )
    output_file: str | None = field(default=None, metadata={"help": "Also write the table as JSON here."})


def parse_layer_sets(args: ProbeArguments, num_states: int) -> dict[str, list[int]]:
    """Row name -> hidden-state indices: every single state, then each `--layer_averages` set."""
    rows = {f"layer {index}": [index] for index in range(num_states)}
    for text in args.layer_averages:
        try:
            layers = [int(part) for part in text.split(",")]
        except ValueError:
            raise ValueError(
                f"--layer_averages {text!r}: expected comma-separated layer numbers, e.g. 6,8,10"
            ) from None
        bad = [layer for layer in layers if not 0 <= layer < num_states]
        if bad or len(set(layers)) != len(layers):
            raise ValueError(f"--layer_averages {text!r}: expected distinct layers in 0..{num_states - 1}")
        rows[f"average {','.join(map(str, layers))}"] = layers
    return rows


def fit_linear_tagger(features: torch.Tensor, labels: torch.Tensor, num_labels: int, steps: int,
                      learning_rate: float) -> Callable[[torch.Tensor], torch.Tensor]:  # fmt: skip
    """Softmax regression on standardised features (N, H) -> labels (N,); returns words (M, H) -> label ids (M,)."""
    mean, scale = features.mean(0), features.std(0) + 1e-5
    standardised = (features - mean) / scale
    layer = torch.nn.Linear(features.shape[1], num_labels)
    optimizer = torch.optim.Adam(layer.parameters(), lr=learning_rate, weight_decay=1e-4)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(layer(standardised), labels).backward()
        optimizer.step()
    return lambda words: layer((words - mean) / scale).argmax(-1)


def probe(args: ProbeArguments) -> dict[str, dict[str, float]]:
    """Row name -> {target: dev F1 (percent), "mean": ...}."""
    unknown = [target for target in args.target_languages if target not in args.languages]
    if unknown:
        raise ValueError(f"--target_languages {unknown} are not among --languages {args.languages}")
    if args.encoder_pooling not in ("first", "mean"):
        raise ValueError(f"--encoder_pooling: expected 'first' or 'mean', got {args.encoder_pooling!r}")
    num_states = AutoConfig.from_pretrained(args.encoder_name_or_path).num_hidden_layers + 1
    rows = parse_layer_sets(args, num_states)
    train = {lang: limit(read_conll(conll_file_path(args.conll_dir, lang, "train"), lang), args.train_sentences,
                         args.seed) for lang in args.languages}  # fmt: skip
    dev = {lang: limit(read_conll(conll_file_path(args.conll_dir, lang, "validation"), lang), args.dev_sentences,
                       args.seed) for lang in args.target_languages}  # fmt: skip
    model_args = ModelArguments(encoder_name_or_path=args.encoder_name_or_path, encoder_layers=list(range(num_states)),
                                encoder_pooling=args.encoder_pooling, use_char_cnn=False)  # fmt: skip
    target = args.target_languages[0]
    sources = [lang for lang in args.languages if lang != target]
    model, tokenizer = build_model(ManMoeForTokenClassification, model_args, sources, target, CONLL_NER_LABELS, [], {})
    with tempfile.TemporaryDirectory(prefix="manmoe-probe-") as scratch:
        device = "cuda" if torch.cuda.is_available() else None  # the encoder on the GPU where there is one
        cache = EncoderFeatureCache.for_model(model, tokenizer, cache_dir=args.feature_cache_dir or scratch,
                                              device=device)  # fmt: skip
        features = {(lang, "train"): torch.cat(cache.features(data["tokens"], f"{lang} train")).float()
                    for lang, data in train.items()}  # fmt: skip
        features.update({(lang, "dev"): cache.features(data["tokens"], f"{lang} dev") for lang, data in dev.items()})
    tags = {
        lang: torch.tensor([tag for sentence in data["ner_tags"] for tag in sentence]) for lang, data in train.items()
    }
    results: dict[str, dict[str, float]] = {}
    for name, layers in rows.items():
        scores = {}
        for target in args.target_languages:
            sources = [lang for lang in args.languages if lang != target]
            torch.manual_seed(args.seed)
            tagger = fit_linear_tagger(
                torch.cat([features[lang, "train"][:, layers].mean(1) for lang in sources]),
                torch.cat([tags[lang] for lang in sources]), len(CONLL_NER_LABELS), args.steps, args.learning_rate,
            )  # fmt: skip
            with torch.no_grad():
                predicted = [[CONLL_NER_LABELS[i] for i in tagger(words[:, layers].float().mean(1)).tolist()]
                             for words in features[target, "dev"]]  # fmt: skip
            gold = [[CONLL_NER_LABELS[i] for i in sentence] for sentence in dev[target]["ner_tags"]]
            scores[target] = round(100 * f1_score(gold, predicted), 1)
        scores["mean"] = round(sum(scores.values()) / len(args.target_languages), 1)
        results[name] = scores
        logger.info("%s: %s", name, scores)
    return results


def markdown_table(results: dict[str, dict[str, float]], args: ProbeArguments) -> str:
    """One row per layer or average; the best mean in bold."""
    best = max(results, key=lambda name: results[name]["mean"])
    header = ["features", *(f"{target} dev F1" for target in args.target_languages), "mean"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, scores in results.items():
        mean = f"**{scores['mean']}**" if name == best else str(scores["mean"])
        lines.append(f"| {name} | " + " | ".join(str(scores[t]) for t in args.target_languages) + f" | {mean} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    (args,) = HfArgumentParser(ProbeArguments).parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    results = probe(args)
    print(f"Linear probe of {os.path.basename(os.path.normpath(args.encoder_name_or_path))} ({args.encoder_pooling} "
          f"sub-token pooling), {args.train_sentences} training sentences per source, {args.dev_sentences} target "
          f"dev sentences, seed {args.seed}:\n")  # fmt: skip
    print(markdown_table(results, args))
    if args.output_file:
        record = {"arguments": vars(args), "dev_f1": results}
        atomic_write_text(args.output_file, json.dumps(record, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
