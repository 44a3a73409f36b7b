"""A seeded synthetic workload shaped like CoNLL NER, and the file paths of either benchmark workload.

Usage: python benchmarks/synthetic_workload.py [--output DIR] [--seed 0] [--train_sentences 2000]
           [--dev_sentences 500] [--vocab_size 20000] [--dim 300]

Writes, for each of en, de, es, nl: `{lang}.train` and `{lang}.dev` (CoNLL: `word<TAB>tag` per line, a blank line
between sentences, IOB2 tags over PER/ORG/LOC/MISC, about 15% of the tokens in entities) and `{lang}.vec.gz`
(MUSE text format, gzip: a header `N D`, then a word and D values with 4 decimals per line, like the shared
vectors). Words are random strings of 2-12 characters (about a fifth of them capitalised, a few punctuation
tokens first); sentences draw them with Zipf-like frequencies, about 8% of their tokens are out of the
vocabulary, and their lengths are a clipped log-normal (mean about 14, max 60). Deterministic for a seed; a
folder whose `manifest.json` records the same parameters is reused, not rewritten. Default folder:
`$MANMOE_BENCH_DIR` (or `~/.cache/modeling_manmoe/bench`) / `synthetic-seed{seed}` (size suffix unless default).
Prints JSON (the manifest) and a one-line summary.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
from pathlib import Path

import numpy as np

LANGUAGES = ["en", "de", "es", "nl"]
ENTITY_TYPES = ["PER", "ORG", "LOC", "MISC"]
ENTITY_WEIGHTS = [0.28, 0.27, 0.30, 0.15]
PUNCTUATION = [",", ".", "(", ")", '"', "'", ":", "-"]
LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
EXTRA_LETTERS = {"en": "", "de": "äöüß", "es": "áéíóúñ", "nl": "éëï"}
FORMAT_VERSION = 1
DEFAULTS = dict(seed=0, train_sentences=2000, dev_sentences=500, vocab_size=20000, dim=300)


def default_folder(seed=0, train_sentences=2000, dev_sentences=500, vocab_size=20000, dim=300) -> Path:
    """The cache folder of these parameters: `synthetic-seed{seed}`, with a size suffix unless the defaults."""
    base = Path(os.environ.get("MANMOE_BENCH_DIR") or Path.home() / ".cache" / "modeling_manmoe" / "bench")
    name = f"synthetic-seed{seed}"
    if (train_sentences, dev_sentences, vocab_size, dim) != (2000, 500, 20000, 300):
        name += f"-{train_sentences}x{dev_sentences}-v{vocab_size}-d{dim}"
    return base / name


def _zipf_cdf(count: int) -> np.ndarray:
    """Cumulative Zipf-Mandelbrot frequencies of `count` ranks (draw with `_draw`: a binary search, not O(count))."""
    weights = 1.0 / (np.arange(1, count + 1) + 2.7)
    return np.cumsum(weights / weights.sum())


def _draw(rng: np.random.Generator, cdf: np.ndarray, size: int | None = None):
    return np.minimum(np.searchsorted(cdf, rng.random(size)), len(cdf) - 1)


def _random_words(rng: np.random.Generator, count: int, alphabet: str, exclude: set[str]) -> list[str]:
    """`count` distinct random words of 2-12 characters (log-normal lengths around 6), about 20% capitalised."""
    slope = np.linspace(2.0, 0.2, len(alphabet))  # a rough letter-frequency slope: "e" common, "z" rare
    letter_cdf = np.cumsum(slope / slope.sum())
    words: dict[str, None] = {}
    while len(words) < count:
        length = int(np.clip(round(rng.lognormal(np.log(5.8), 0.35)), 2, 12))
        word = "".join(alphabet[i] for i in _draw(rng, letter_cdf, length))
        if rng.random() < 0.2:
            word = word.capitalize()
        if word not in exclude:
            words.setdefault(word)
    return list(words)


def _sentences(rng, count: int, vocab: list[str], capitalised: list[str], alphabet: str):
    """`count` (words, tags) sentences: Zipf-like word draws, ~8% OOV tokens, ~15% entity tokens, IOB2 tags."""
    vocab_cdf, entity_cdf, type_cdf = _zipf_cdf(len(vocab)), _zipf_cdf(len(capitalised)), np.cumsum(ENTITY_WEIGHTS)
    lengths = np.clip(np.round(rng.lognormal(np.log(14) - 0.2, 0.65, size=count)), 1, 60).astype(int)
    vocab_set = set(vocab)
    sentences = []
    for length in lengths:
        words, tags = [], []
        while len(words) < length:
            if rng.random() < 0.11:  # an entity of 1-4 tokens (mean ~1.45), from the capitalised words
                kind = ENTITY_TYPES[_draw(rng, type_cdf)]
                size = min(1 + min(rng.geometric(2 / 3) - 1, 3), length - len(words))
                words += [capitalised[i] for i in _draw(rng, entity_cdf, size)]
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (size - 1)
            elif rng.random() < 0.08:  # out of the vocabulary
                words += _random_words(rng, 1, alphabet, vocab_set)
                tags.append("O")
            else:
                words.append(vocab[_draw(rng, vocab_cdf)])
                tags.append("O")
        sentences.append((words, tags))
    return sentences


def _write_conll(path: Path, sentences) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for words, tags in sentences:
            handle.write("".join(f"{word}\t{tag}\n" for word, tag in zip(words, tags, strict=True)) + "\n")


def _write_vectors(path: Path, rng, words: list[str], dim: int) -> None:
    vectors = rng.normal(0.0, 0.15, size=(len(words), dim)).astype(np.float32)
    row_format = " ".join(["%.4f"] * dim) + "\n"
    # compresslevel 1: the default 9 is ten times slower to write; mtime=0: the same bytes for the same seed
    with io.TextIOWrapper(gzip.GzipFile(path, "wb", compresslevel=1, mtime=0), encoding="utf-8") as handle:
        handle.write(f"{len(words)} {dim}\n")
        for word, row in zip(words, vectors.tolist(), strict=True):
            handle.write(word + " " + row_format % tuple(row))


def write_synthetic_workload(
    folder=None, seed=0, train_sentences=2000, dev_sentences=500, vocab_size=20000, dim=300
) -> dict:
    """Write (or reuse) the workload in `folder` (default: `default_folder(...)`); return its manifest: the
    parameters, `folder` and per-language `stats` (sentence length mean/max, entity token rate)."""
    folder = Path(folder or default_folder(seed, train_sentences, dev_sentences, vocab_size, dim))
    parameters = dict(format=FORMAT_VERSION, seed=seed, train_sentences=train_sentences, dev_sentences=dev_sentences,
                      vocab_size=vocab_size, dim=dim, languages=LANGUAGES)  # fmt: skip
    manifest_path = folder / "manifest.json"
    names = [f"{lang}.{kind}" for lang in LANGUAGES for kind in ("train", "dev", "vec.gz")]
    if manifest_path.is_file() and all((folder / name).is_file() for name in names):
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("parameters") == parameters:
            return manifest | {"folder": str(folder), "reused": True}
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)  # written last: a half-written folder is never reused
    stats = {}
    for index, lang in enumerate(LANGUAGES):
        rng = np.random.default_rng([seed, index])
        alphabet = LETTERS + EXTRA_LETTERS[lang]
        vocab = PUNCTUATION + _random_words(rng, vocab_size - len(PUNCTUATION), alphabet, set(PUNCTUATION))
        capitalised = [word for word in vocab if word[0].isupper()]
        _write_vectors(folder / f"{lang}.vec.gz", rng, vocab, dim)
        for split, count in (("train", train_sentences), ("dev", dev_sentences)):
            sentences = _sentences(rng, count, vocab, capitalised, alphabet)
            _write_conll(folder / f"{lang}.{split}", sentences)
            lengths = [len(words) for words, _ in sentences]
            entity = sum(tag != "O" for _, tags in sentences for tag in tags) / sum(lengths)
            stats[f"{lang}.{split}"] = dict(sentences=count, mean_length=round(float(np.mean(lengths)), 2),
                                            max_length=max(lengths), entity_token_rate=round(entity, 3))  # fmt: skip
    manifest = {"parameters": parameters, "stats": stats}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest | {"folder": str(folder), "reused": False}


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--workload` choice and the sizes of the synthetic workload (for the throughput scripts)."""
    parser.add_argument("--workload", choices=["synthetic", "conll"], default="synthetic",
                        help="synthetic: the seeded CoNLL-shaped workload; conll: real files in --shared")  # fmt: skip
    parser.add_argument(
        "--shared", default="../shared", help="the shared folder (data/, embeddings/) for --workload conll"
    )
    parser.add_argument("--synthetic_dir", default=None, help="folder of the synthetic workload (default: a cache dir)")
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name}", type=int, default=value, help=f"synthetic workload: {name} (default {value})")
    parser.add_argument(
        "--word_vocabulary",
        choices=["corpus", "file"],
        default="corpus",
        help="corpus (default): only the vector-file words of the workload's train and dev files, as the original "
        "implementation builds its vocabulary; file: every word of the vector files (run_ner.py's default)",
    )


def vocabulary_corpus(
    options: argparse.Namespace, files: dict, read: dict | None = None
) -> dict[str, list[str]] | None:
    """`build_word_vector_inputs(vocabulary_corpus=...)` for `--word_vocabulary`: None for `file`, else each
    language's words of its train and dev files; `read` ({split: {lang: Dataset}}) gives the files the caller has
    read already, the others are read here."""
    if options.word_vocabulary == "file":
        return None
    from modeling_manmoe.data import read_conll

    def tokens(split: str, lang: str) -> list[list[str]]:
        dataset = (read or {}).get(split, {}).get(lang)
        return (dataset if dataset is not None else read_conll(files[split][lang], lang))["tokens"]

    return {
        lang: [word for split in ("train", "dev") for words in tokens(split, lang) for word in words]
        for lang in LANGUAGES
    }


def workload_files(options: argparse.Namespace) -> dict:
    """{"train": {lang: path}, "dev": {lang: path}, "vectors": {lang: path}, "description": str} of the workload;
    writes the synthetic one first if needed."""
    if options.workload == "conll":
        from modeling_manmoe.data import conll_file_path

        data = f"{options.shared}/data"
        return {
            "train": {lang: conll_file_path(data, lang, "train") for lang in LANGUAGES},
            "dev": {lang: conll_file_path(data, lang, "validation") for lang in LANGUAGES},
            "vectors": {lang: f"{options.shared}/embeddings/conll-use-m3/{lang}.vec.gz" for lang in LANGUAGES},
            "description": f"CoNLL-2002/2003 in {data}, conll-use-m3 vectors",
        }
    manifest = write_synthetic_workload(options.synthetic_dir, **{name: getattr(options, name) for name in DEFAULTS})
    folder = Path(manifest["folder"])
    return {
        "train": {lang: folder / f"{lang}.train" for lang in LANGUAGES},
        "dev": {lang: folder / f"{lang}.dev" for lang in LANGUAGES},
        "vectors": {lang: folder / f"{lang}.vec.gz" for lang in LANGUAGES},
        "description": f"synthetic {folder}",
        "manifest": manifest,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=None, help="folder to write (default: a cache dir, see the docstring)")
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name}", type=int, default=value, help=f"default {value}")
    options = parser.parse_args()
    result = write_synthetic_workload(options.output, **{name: getattr(options, name) for name in DEFAULTS})
    print(json.dumps(result))
    train = [result["stats"][f"{lang}.train"] for lang in LANGUAGES]
    print(f"synthetic workload in {result['folder']} ({'reused' if result['reused'] else 'written'}): "
          f"train sentence length mean {np.mean([s['mean_length'] for s in train]):.2f}, "
          f"max {max(s['max_length'] for s in train)}, "
          f"entity tokens {np.mean([s['entity_token_rate'] for s in train]):.1%}")  # fmt: skip
