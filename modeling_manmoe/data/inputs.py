"""Build a model's inputs: the word-vector table and its tokenizer, or the frozen encoder's config and tokenizer."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import torch

from ..errors import LanguageError
from ..tokenization_manmoe import ManMoeTokenizer, corpus_entries, vocabulary_entry
from .vectors import check_same_dimension, read_word_vectors


def build_word_vector_inputs(
    vector_files: Mapping[str, str | os.PathLike],
    languages: list[str] | None = None,
    *,
    max_words: int | None = None,
    extra_characters: Iterable[str] = (),
    oov_corpus: Mapping[str, Iterable[str]] | None = None,
    vocabulary_corpus: Mapping[str, Iterable[str]] | None = None,
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

    Raises `LanguageError` naming the languages of `languages` that have no file, `VectorFileError` for a
    malformed file or files of different dimensions.
    """
    languages = list(languages) if languages is not None else list(vector_files)
    missing = [lang for lang in languages if lang not in vector_files]
    if missing:
        raise LanguageError(f"no word-vector file for language(s) {missing}; got files for {sorted(vector_files)}")
    keep = {lang: corpus_entries(words) for lang, words in (vocabulary_corpus or {}).items()}
    vector_sets = {
        lang: read_word_vectors(vector_files[lang], max_words=max_words, keep=keep.get(lang)) for lang in languages
    }
    check_same_dimension(vector_sets)
    dim = next(iter(vector_sets.values())).dim
    generator = torch.Generator().manual_seed(seed)
    unknown = torch.randn(1, dim, generator=generator)
    vocabularies = {lang: vector_sets[lang].words for lang in languages}
    for lang, words in (oov_corpus or {}).items():
        known = set(vocabularies[lang])
        missing = dict.fromkeys(word.lower() for word in words if vocabulary_entry(known, word) is None)
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
    table.div_(table.norm(dim=-1, keepdim=True).clamp(min=1e-12))
    tokenizer = ManMoeTokenizer(
        vocabularies=vocabularies,
        characters=list(characters),
        languages=languages,
        **tokenizer_kwargs,
    )
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
