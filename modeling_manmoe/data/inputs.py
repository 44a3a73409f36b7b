"""Build a model's inputs: the word-vector table and its tokenizer, or the frozen encoder's config and tokenizer."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Container, Iterable, Mapping

import torch

from ..errors import LanguageError, VectorFileError
from ..tokenization_manmoe import ManMoeTokenizer, corpus_entries, vocabulary_entry
from .vectors import check_same_dimension, read_word_vectors

logger = logging.getLogger(__name__)

MIN_TOKEN_COVERAGE = 0.10  # the least share of a corpus' tokens a language's vectors must hold (as looked up)
_EXACT_NORM_RANGE = (1e-15, 1e15)  # float32 norms outside it are computed again in float64 (squares under/overflow)


def vector_coverage(
    vocabularies: Mapping[str, Container[str]], corpus: Mapping[str, Iterable[str]]
) -> dict[str, dict[str, int | float | None]]:
    """How much of each language's `corpus` (its words, one per occurrence) the word vectors hold.

    `vocabularies` gives, per language, the words that have a vector (e.g. a vector file's words); a corpus word
    counts as found when the tokenizer's lookup finds it (`vocabulary_entry`: as written, else lower-cased). For a
    tokenizer built without `oov_corpus`, `tokenizer.word_to_id` is such a mapping (its `oov_corpus` rows are not
    vectors: use the `vector_coverage` attribute that `build_word_vector_inputs` sets instead).

    Returns {language: {"types", "types_found", "tokens", "tokens_found", "type_coverage", "token_coverage"}}: the
    distinct words and the occurrences of the corpus, those found, and the found shares (None for an empty corpus).

    Raises `LanguageError` naming the languages of `corpus` that `vocabularies` lacks.
    """
    missing = [lang for lang in corpus if lang not in vocabularies]
    if missing:
        raise LanguageError(f"no vocabulary for the corpus language(s) {missing}; got {sorted(vocabularies)}")
    coverage = {}
    for lang, words in corpus.items():
        counts = words if isinstance(words, Counter) else Counter(words)
        found = [count for word, count in counts.items() if vocabulary_entry(vocabularies[lang], word) is not None]
        tokens, tokens_found = sum(counts.values()), sum(found)
        coverage[lang] = {
            "types": len(counts),
            "types_found": len(found),
            "tokens": tokens,
            "tokens_found": tokens_found,
            "type_coverage": len(found) / len(counts) if counts else None,
            "token_coverage": tokens_found / tokens if tokens else None,
        }
    return coverage


def check_vector_coverage(
    coverage: Mapping[str, Mapping], vector_files: Mapping[str, str | os.PathLike], minimum: float = MIN_TOKEN_COVERAGE
) -> None:
    """Log each language's figures of `coverage` (from `vector_coverage`; one INFO line each) and raise
    `VectorFileError`, naming the file of `vector_files`, the language and its figures, for a language whose vectors
    hold less than `minimum` of its corpus' tokens. A language with an empty corpus is logged, never refused."""
    for lang, figures in coverage.items():
        path = os.fspath(vector_files[lang])
        if figures["tokens"] == 0:
            logger.info("%s: the corpus has no words; the coverage of %s is not measured", lang, path)
            continue
        summary = (
            f"{figures['token_coverage']:.1%} of the corpus' tokens ({figures['tokens_found']} of {figures['tokens']})"
            f" and {figures['type_coverage']:.1%} of its distinct words ({figures['types_found']} of "
            f"{figures['types']}), as written or lower-cased"
        )
        logger.info("%s: the word vectors %s hold %s", lang, path, summary)
        if figures["token_coverage"] < minimum:
            raise VectorFileError(
                f"{path}: the word vectors of language {lang!r} hold only {summary}, below the minimum of "
                f"{minimum * 100:g}% of the tokens (min_token_coverage); expected this language's vectors, split into "
                "words as the data is (another language's file, another script or case, or a file cut too short "
                "by max_words would lose most words). Check the file, or lower min_token_coverage"
            )


def _counted(corpus: Iterable[str], counts: dict[int, Counter]) -> Counter:
    """The `Counter` of `corpus`, counted once per object: each corpus may be a one-pass generator, given for several
    roles (`vocabulary_corpus`, `oov_corpus`, `coverage_corpus`)."""
    if isinstance(corpus, Counter):
        return corpus
    if id(corpus) not in counts:
        counts[id(corpus)] = Counter(corpus)
    return counts[id(corpus)]


def _normalize_rows(table: torch.Tensor) -> None:
    """Scale every row but row 0 (padding, zero) of `table` to unit L2 norm, in place: in float32 (the rows' own
    precision), and in float64 for rows whose float32 norm is not exact (squares that overflow or underflow)."""
    norms = table.norm(dim=-1, keepdim=True)
    low, high = _EXACT_NORM_RANGE
    extreme = ~torch.isfinite(norms[:, 0]) | (norms[:, 0] < low) | (norms[:, 0] > high)
    extreme[0] = False
    if extreme.any():
        rows = table[extreme].double()
        table[extreme] = (rows / rows.norm(dim=-1, keepdim=True)).float()
        norms[extreme] = 1
    table.div_(norms.clamp(min=1e-12))


def build_word_vector_inputs(
    vector_files: Mapping[str, str | os.PathLike],
    languages: list[str] | None = None,
    *,
    max_words: int | None = None,
    extra_characters: Iterable[str] = (),
    oov_corpus: Mapping[str, Iterable[str]] | None = None,
    vocabulary_corpus: Mapping[str, Iterable[str]] | None = None,
    coverage_corpus: Mapping[str, Iterable[str]] | None = None,
    min_token_coverage: float = MIN_TOKEN_COVERAGE,
    seed: int = 0,
    **tokenizer_kwargs,
) -> tuple[ManMoeTokenizer, torch.Tensor]:
    """Read one aligned vector file per language (`.vec` / `.vec.gz`) and return the tokenizer and the
    (word_vocab_size, dim) table to give to `model.set_word_vectors`.

    Rows are unit-normalised as in the reference; row 0 (padding) is zero and row 1 (unknown) a random unit
    vector drawn with `seed`. `oov_corpus` ({language: words of its corpus}) gives the reference's vocabulary: each
    word that the language's file lacks, as written and lower-cased, gets a row of its own (its lower-cased form,
    first-seen order, after the file's words), a random unit vector drawn with `seed`, frozen like the rest;
    without it, such words share the unknown row. `vocabulary_corpus` ({language: words of its corpus}, e.g. its
    train, dev and test tokens) keeps only the file's words that these words are looked up as (as written, else
    lower-cased), as the reference builds its vocabulary from the corpus: every corpus word gets the row it gets
    with the whole file, and the table holds only those rows (for 200,000-word files, a fraction of the memory),
    but the model then knows no other word; languages it leaves out keep all their words. The character
    vocabulary is every character of the vector files' words (all rows, kept or not) plus `extra_characters`
    (e.g. the training corpus), in first-seen order. `languages` (default: the keys of `vector_files`) fixes the
    order of `lang_ids`; give it `config.all_languages`.

    Coverage: for each language with a corpus (`coverage_corpus`, else `vocabulary_corpus`, else `oov_corpus`:
    {language: its words, one per occurrence}; each may be a one-pass generator, read once whatever its roles), the
    share of the corpus' tokens and distinct words that the file's words (the first `max_words`) hold, as the
    tokenizer looks them up (`vector_coverage`), is logged (one INFO line per language) and set as the returned
    tokenizer's `vector_coverage` attribute ({language: figures}; not saved with it). A language whose vectors hold
    less than `min_token_coverage` of its tokens (default `MIN_TOKEN_COVERAGE`, 10%; 0 accepts any) is refused.

    Raises `LanguageError` naming the languages of `languages` that have no file, `VectorFileError` for a
    malformed file, files of different dimensions, or a language below `min_token_coverage` (naming the file, the
    language and its figures).
    """
    languages = list(languages) if languages is not None else list(vector_files)
    missing = [lang for lang in languages if lang not in vector_files]
    if missing:
        raise LanguageError(f"no word-vector file for language(s) {missing}; got files for {sorted(vector_files)}")
    counts: dict[int, Counter] = {}
    keep = {lang: corpus_entries(_counted(words, counts)) for lang, words in (vocabulary_corpus or {}).items()}
    vector_sets = {
        lang: read_word_vectors(vector_files[lang], max_words=max_words, keep=keep.get(lang)) for lang in languages
    }
    check_same_dimension(vector_sets)
    coverage_words = {}
    for lang in languages:
        corpus = next((c for c in (coverage_corpus, vocabulary_corpus, oov_corpus) if c and lang in c), None)
        if corpus is not None:
            coverage_words[lang] = _counted(corpus[lang], counts)
    coverage = vector_coverage({lang: set(vector_sets[lang].words) for lang in coverage_words}, coverage_words)
    check_vector_coverage(coverage, vector_files, min_token_coverage)
    dim = next(iter(vector_sets.values())).dim
    generator = torch.Generator().manual_seed(seed)
    unknown = torch.randn(1, dim, generator=generator)
    vocabularies = {lang: vector_sets[lang].words for lang in languages}
    for lang, words in (oov_corpus or {}).items():
        known = set(vocabularies[lang])
        new_words = (word for word in _counted(words, counts) if vocabulary_entry(known, word) is None)
        missing = dict.fromkeys(word.lower() for word in new_words)
        vocabularies[lang] = vocabularies[lang] + list(missing)
    # One table filled in place, each file's array dropped once copied: peak memory ~2 tables, not ~3.
    table = torch.empty(2 + sum(len(words) for words in vocabularies.values()), dim)
    table[0] = 0
    table[1] = unknown[0]
    # Characters in first-seen order: each file's (all its rows, whatever `vocabulary_corpus` kept), its OOV rows'.
    characters: dict[str, None] = {}
    for lang in languages:
        characters.update(dict.fromkeys(vector_sets[lang].characters))
        for word in vocabularies[lang][len(vector_sets[lang]) :]:
            characters.update(dict.fromkeys(word))
    characters.update(dict.fromkeys(char for text in extra_characters for char in text))
    row = 2
    for lang in languages:
        vectors = torch.from_numpy(vector_sets.pop(lang).vectors)
        table[row : row + len(vectors)] = vectors
        extra = len(vocabularies[lang]) - len(vectors)
        table[row + len(vectors) : row + len(vectors) + extra] = torch.randn(extra, dim, generator=generator)
        row += len(vectors) + extra
    _normalize_rows(table)
    tokenizer = ManMoeTokenizer(
        vocabularies=vocabularies,
        characters=list(characters),
        languages=languages,
        **tokenizer_kwargs,
    )
    tokenizer.vector_coverage = coverage
    return tokenizer, table


def build_encoder_inputs(
    encoder_name_or_path: str,
    languages: list[str],
    *,
    characters: Iterable[str] = (),
    **tokenizer_kwargs,
) -> tuple[ManMoeTokenizer, dict]:
    """The tokenizer (the encoder's own sub-token tokenizer plus a character vocabulary for the CharCNN) and the
    encoder's config dict (`ManMoeConfig.encoder_config`) for encoder mode. `encoder_name_or_path` is a Hub
    name (e.g. `bert-base-multilingual-cased`) or a local folder; `characters` are e.g. the training corpus' words
    (their characters, in first-seen order). Load the weights with `model.load_pretrained_encoder`."""
    from transformers import AutoConfig

    seen: dict[str, None] = {}
    for text in characters:
        seen.update(dict.fromkeys(text))
    tokenizer = ManMoeTokenizer.for_encoder(encoder_name_or_path, list(languages), list(seen), **tokenizer_kwargs)
    return tokenizer, AutoConfig.from_pretrained(encoder_name_or_path).to_dict()
