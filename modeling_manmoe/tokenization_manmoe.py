"""`ManMoeTokenizer`: words of a given language -> rows of the frozen multilingual word table + character ids.

One word is one token, so `word_ids()` is the identity on real words (None on padding); labels align per word.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from collections.abc import Container, Iterable, Sequence

import numpy as np
import torch
from transformers import BatchEncoding, PreTrainedTokenizer

from .errors import LanguageError

logger = logging.getLogger(__name__)

VOCAB_FILE = "manmoe_vocab.json"
PAD, UNK = "<pad>", "<unk>"
WORD_PATTERN = re.compile(r"\w+|[^\w\s]")
MAX_WORD_CHARACTERS = 64  # the characters of a word the CharCNN reads (its first ones); no CoNLL word is longer


class ManMoeEncoding(BatchEncoding):
    """A `BatchEncoding` whose `word_ids(i)` maps each position of sentence `i` to its word (None = padding)."""

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        mask = self["attention_mask"][batch_index]
        mask = mask.tolist() if isinstance(mask, torch.Tensor) else list(mask)
        return [i if m else None for i, m in enumerate(mask)]


def vocabulary_entry(vocabulary: Container[str], word: str) -> str | None:
    """The entry `word` is looked up as in a language's `vocabulary`: the word as written, else lower-cased, else
    None (the unknown row)."""
    if word in vocabulary:
        return word
    lowered = word.lower()
    return lowered if lowered in vocabulary else None


def corpus_entries(words: Iterable[str]) -> set[str]:
    """Every entry that `vocabulary_entry` can return for the corpus `words` (each as written and lower-cased): the
    vector-file words that `build_word_vector_inputs(vocabulary_corpus=...)` keeps."""
    entries: set[str] = set()
    for word in words:
        entries.add(word)
        entries.add(word.lower())
    return entries


def reference_lowercases_characters(target_language: str) -> bool:
    """The reference's rule: the CharCNN reads lower-cased characters for a German target only (German capitalises
    every noun, so the sources' capitalisation would mark German common nouns as names)."""
    return target_language == "de"


class ManMoeTokenizer(PreTrainedTokenizer):
    """Maps `(language, words)` to word ids in one frozen table shared by all languages and to character ids.

    Word table rows: 0 = padding, 1 = unknown, then each language's words in `vocabularies` order. A word is
    looked up as is, then lower-cased, then falls back to unknown. Characters: one vocabulary for all languages
    (0 = padding, 1 = unknown). Raw text is split into words by `split_words`: lower-cased when `do_lower_case`,
    then the regex `\\w+|[^\\w\\s]`, or MeCab (`fugashi` + `ipadic`, the `ja` extra) for the languages in
    `mecab_languages` (U+3000 ideographic spaces become spaces first). Both settings are saved with the tokenizer,
    so inference splits text as training did (the Webis-CLS-10 vectors were made with exactly this splitting).
    The CharCNN reads at most `max_word_characters` characters of a word (default `MAX_WORD_CHARACTERS`, 64): the
    character ids of a longer word are its first ones, so one very long token cannot ask for an unbounded tensor;
    such words are counted per language in `truncated_words` and the count is logged (INFO) at the first one, the
    10th, the 100th, ... `max_word_characters` is saved with the tokenizer, like the other settings.

    Encoder mode: give `encoder_tokenizer`, the frozen encoder's fast tokenizer as `tokenizer.json` text (see
    `ManMoeTokenizer.for_encoder`); it is stored in the vocabulary file, and every sentence is also encoded into
    `encoder_input_ids` and `encoder_word_ids` (the word of each sub-token, -1 for the encoder's special tokens),
    never truncated. The word table is then empty: `input_ids` are 1 (unknown) for every word and only mark words.

    Example:

    ```python
    >>> enc = tokenizer([["Peter", "lives", "in", "Berlin"]], language="en", is_split_into_words=True,
    ...                 return_tensors="pt")
    >>> enc["input_ids"].shape, enc["char_ids"].shape, enc.word_ids(0)
    ```
    """

    vocab_files_names = {"vocab_file": VOCAB_FILE}
    model_input_names = ["input_ids", "char_ids", "attention_mask", "lang_ids"]

    def __init__(
        self,
        vocab_file: str | None = None,
        vocabularies: dict[str, list[str]] | None = None,
        characters: list[str] | None = None,
        languages: list[str] | None = None,
        language: str | None = None,
        do_lower_case: bool = False,
        lowercase_characters: bool = False,
        encoder_tokenizer: str | None = None,
        mecab_languages: list[str] | None = None,
        max_word_characters: int = MAX_WORD_CHARACTERS,
        **kwargs,
    ):
        if type(max_word_characters) is not int or max_word_characters < 1:
            raise ValueError(f"max_word_characters must be a positive integer, got {max_word_characters!r}")
        if vocab_file is not None:
            with open(vocab_file, encoding="utf-8") as handle:
                saved = json.load(handle)
            vocabularies, characters = saved["vocabularies"], saved["characters"]
            encoder_tokenizer = saved.get("encoder_tokenizer", encoder_tokenizer)
        if vocabularies is None or characters is None:
            raise ValueError("ManMoeTokenizer needs `vocab_file` or both `vocabularies` and `characters`")
        self.vocabularies = {lang: list(words) for lang, words in vocabularies.items()}
        self.characters = list(characters)
        self.word_to_id: dict[str, dict[str, int]] = {}
        offset = 2
        for lang, words in self.vocabularies.items():
            self.word_to_id[lang] = {word: offset + i for i, word in enumerate(words)}
            offset += len(words)
        self.word_vocab_size = offset
        self.char_to_id = {char: 2 + i for i, char in enumerate(self.characters)}
        self.char_vocab_size = 2 + len(self.characters)
        self.languages = list(languages) if languages is not None else list(self.vocabularies)
        self.language = language
        self.do_lower_case = do_lower_case
        self.lowercase_characters = lowercase_characters
        self.mecab_languages = list(mecab_languages or [])
        self.max_word_characters = max_word_characters
        self.truncated_words: dict[str, int] = {}  # per language: words whose character ids were cut
        self._mecab = None
        self.encoder_tokenizer_json = encoder_tokenizer
        self.encoder_tokenizer = load_encoder_tokenizer(encoder_tokenizer) if encoder_tokenizer else None
        kwargs.setdefault("pad_token", PAD)
        kwargs.setdefault("unk_token", UNK)
        super().__init__(
            languages=self.languages,
            language=language,
            do_lower_case=do_lower_case,
            lowercase_characters=lowercase_characters,
            mecab_languages=self.mecab_languages,
            max_word_characters=max_word_characters,
            **kwargs,
        )

    # -- vocabulary ---------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.word_vocab_size

    def get_vocab(self) -> dict[str, int]:
        """Specials plus the default language's words (one table holds every language; see `word_to_id`)."""
        vocab = {PAD: 0, UNK: 1}
        if self.language in self.word_to_id:
            vocab.update(self.word_to_id[self.language])
        return vocab

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return self.split_words(text)

    def split_words(self, text: str, language: str | None = None) -> list[str]:
        """Raw text of `language` (default: `self.language`) -> words: lower-cased when `do_lower_case`, then MeCab
        for the `mecab_languages` (after U+3000 -> space), the regex `\\w+|[^\\w\\s]` for the others."""
        language = language or self.language
        if self.do_lower_case:
            text = text.lower()
        if language in self.mecab_languages:
            return [word.surface for word in self._mecab_tagger()(text.replace("\u3000", " ")) if word.surface.strip()]
        return WORD_PATTERN.findall(text)

    def words_with_offsets(self, text: str, language: str | None = None) -> list[tuple[str, int, int]]:
        """`split_words` with each word's character span in `text`: [(word, start, end), ...] (`word` lower-cased
        when `do_lower_case`, `text[start:end]` as written)."""
        language = language or self.language
        if language in self.mecab_languages:
            searched = text.replace("\u3000", " ")
            searched = searched.lower() if self.do_lower_case else searched
            spans, position = [], 0
            for node in self._mecab_tagger()(searched):
                if node.surface.strip():
                    start = searched.find(node.surface, position)
                    position = (start if start >= 0 else position) + len(node.surface)
                    spans.append((node.surface, position - len(node.surface), position))
            return spans
        return [
            (match.group().lower() if self.do_lower_case else match.group(), match.start(), match.end())
            for match in WORD_PATTERN.finditer(text)
        ]

    def _mecab_tagger(self):
        if self._mecab is None:
            try:
                import fugashi
                import ipadic
            except ImportError as error:
                raise ImportError(
                    f"splitting {self.mecab_languages} text needs MeCab: pip install 'modeling-manmoe[ja]' "
                    "(fugashi and ipadic)"
                ) from error
            self._mecab = fugashi.GenericTagger(ipadic.MECAB_ARGS)
        return self._mecab

    def _convert_token_to_id(self, token: str) -> int:
        return self.word_id(self._require_language(None), token)

    def _convert_id_to_token(self, index: int) -> str:
        if index < 2:
            return (PAD, UNK)[index]
        for lang, words in self.vocabularies.items():
            start = next(iter(self.word_to_id[lang].values()), None)
            if start is not None and start <= index < start + len(words):
                return words[index - start]
        return UNK

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILE)
        with open(path, "w", encoding="utf-8") as handle:
            saved = {"vocabularies": self.vocabularies, "characters": self.characters}
            if self.encoder_tokenizer_json is not None:
                saved["encoder_tokenizer"] = self.encoder_tokenizer_json
            json.dump(saved, handle, ensure_ascii=False)
        return (path,)

    # -- encoding -----------------------------------------------------------------------------------------
    def _require_language(self, language: str | None) -> str:
        language = language or self.language
        if language is None:
            raise LanguageError(
                f"no language given: pass language=... (one of {self.languages}) or set tokenizer.language"
            )
        if language not in self.languages:
            raise LanguageError(f"language {language!r} is not one of the tokenizer's languages {self.languages}")
        return language

    def word_id(self, language: str, word: str) -> int:
        """Row of `word` in the frozen table: exact match, then lower-cased, else 1 (unknown)."""
        vocab = self.word_to_id.get(language, {})
        entry = vocabulary_entry(vocab, word)
        return 1 if entry is None else vocab[entry]

    def char_ids_of(self, word: str) -> list[int]:
        """The character ids the CharCNN reads for `word`: its first `max_word_characters` characters (lower-cased
        when `lowercase_characters`), unknown characters as 1; [1] for a word without characters."""
        if self.lowercase_characters:
            word = word.lower()
        return [self.char_to_id.get(char, 1) for char in word[: self.max_word_characters]] or [1]

    def _count_truncated_words(self, language: str, words: list[str]) -> None:
        """Count the `words` longer than `max_word_characters` in `truncated_words[language]`; log the count when it
        reaches 1, 10, 100, ..."""
        longer = [word for word in words if len(word) > self.max_word_characters]
        if not longer:
            return
        before = self.truncated_words.get(language, 0)
        after = self.truncated_words[language] = before + len(longer)
        if len(str(after)) > len(str(before)) or before == 0:
            logger.info(
                "%s: %d word(s) so far longer than %d characters (max_word_characters), e.g. %r (%d characters): "
                "the CharCNN reads their first %d characters",
                language,
                after,
                self.max_word_characters,
                longer[-1][:80] + ("..." if len(longer[-1]) > 80 else ""),
                len(longer[-1]),
                self.max_word_characters,
            )

    def encode_words(self, words: list[str], language: str | None = None, encoder_inputs: bool = True) -> dict:
        """One sentence (a list of words) -> `input_ids`, `char_ids` (per word), `lang_ids` (the language's index
        in `self.languages`); in encoder mode also `encoder_input_ids`/`encoder_word_ids`, unless `encoder_inputs`
        is False (the encoder's features come from a feature cache)."""
        language = self._require_language(language)
        for position, word in enumerate(words):
            if not isinstance(word, str) or word == "" or word.isspace():
                raise ValueError(f"word {position} of a {language!r} sentence is empty or not a string: {word!r}")
        self._count_truncated_words(language, words)
        encoded = {
            "input_ids": [self.word_id(language, word) for word in words],
            "char_ids": [self.char_ids_of(word) for word in words],
            "lang_ids": self.languages.index(language),
        }
        if self.encoder_tokenizer is not None and encoder_inputs:
            encoded["encoder_input_ids"], encoded["encoder_word_ids"] = self.encoder_subtokens(words)
        return encoded

    def encoder_subtokens(self, words: list[str]) -> tuple[list[int], list[int]]:
        """The encoder's sub-token ids of a sentence (with its special tokens, never truncated) and the word index
        of each sub-token (-1 for special tokens)."""
        if self.encoder_tokenizer is None:
            raise ValueError("this ManMoeTokenizer has no encoder tokenizer (word-vector mode)")
        encoding = self.encoder_tokenizer.encode(words, is_pretokenized=True)
        return encoding.ids, [-1 if word is None else word for word in encoding.word_ids]

    @classmethod
    def for_encoder(cls, encoder_name_or_path: str, languages: list[str], characters: list[str], **kwargs):
        """A tokenizer for encoder mode: the encoder's own fast tokenizer (Hub name or folder) for sub-tokens,
        `characters` for the CharCNN, no word table."""
        from transformers import AutoTokenizer

        fast = AutoTokenizer.from_pretrained(encoder_name_or_path)
        if not getattr(fast, "is_fast", False):
            raise ValueError(f"encoder mode needs a fast (Rust) tokenizer; {encoder_name_or_path!r} has none")
        return cls(
            vocabularies={lang: [] for lang in languages},
            characters=characters,
            languages=languages,
            encoder_tokenizer=fast.backend_tokenizer.to_str(),
            **kwargs,
        )

    def __call__(
        self,
        text: str | list[str] | list[list[str]],
        language: str | None = None,
        is_split_into_words: bool = False,
        padding: bool | str = True,
        return_tensors: str | None = None,
        **kwargs,
    ) -> ManMoeEncoding:
        """Encode a sentence or a batch. `text`: a raw string, a list of raw strings, a list of words
        (`is_split_into_words=True`) or a list of word lists. Returns `input_ids` (words), `char_ids`
        (words x chars), `attention_mask` and `lang_ids`; padded (and tensors) for batches."""
        if isinstance(text, str):
            batch, single = [self.split_words(text, language)], True
        elif is_split_into_words:
            single = bool(text) and isinstance(text[0], str)
            batch = [list(text)] if single else [list(words) for words in text]
        else:
            batch, single = [self.split_words(sentence, language) for sentence in text], False
        for index, words in enumerate(batch):
            if not words:
                raise ValueError(f"sentence {index} of the batch has no words")
        encoded = [self.encode_words(words, language) for words in batch]
        features = (
            collate_word_features(encoded)
            if (padding or return_tensors)
            else {key: [item[key] for item in encoded] for key in ("input_ids", "char_ids", "lang_ids")}
        )
        if "attention_mask" not in features:
            features["attention_mask"] = [[1] * len(item["input_ids"]) for item in encoded]
        if single and not return_tensors and not padding:
            features = {key: value[0] for key, value in features.items()}
        return ManMoeEncoding(features, tensor_type=return_tensors)


def load_encoder_tokenizer(tokenizer_json: str):
    """A `tokenizers.Tokenizer` from its JSON text, with truncation and padding switched off (a sentence is
    never silently cut; windows handle long ones)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def pad_subtokens(
    input_ids: Sequence[Sequence[int]], word_ids: Sequence[Sequence[int]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad per-sentence encoder sub-token ids and their word indices (from `encoder_subtokens`) into
    `encoder_input_ids`, `encoder_attention_mask` (padding id 0, masked out) and `encoder_word_ids` (-1), each (B, S)."""
    lengths = _lengths(input_ids)
    if not np.array_equal(lengths, _lengths(word_ids)):
        raise ValueError(
            "encoder word ids must match the sub-token ids: one list per sentence, one index per sub-token"
        )
    real = _left_aligned(lengths)  # (B, S)
    padded_ids = torch.zeros(real.shape, dtype=torch.long)
    padded_ids[real] = torch.from_numpy(_flat_ints(input_ids))
    padded_word_ids = torch.full(real.shape, -1, dtype=torch.long)
    padded_word_ids[real] = torch.from_numpy(_flat_ints(word_ids))
    return padded_ids, real.long(), padded_word_ids


def _flat_ints(lists) -> np.ndarray:
    """The integers of an iterable of integer lists, concatenated, as one int64 array."""
    return np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64)


def _lengths(lists) -> np.ndarray:
    """The length of each of a sequence of lists, as an int64 array."""
    return np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))


def _left_aligned(lengths: np.ndarray) -> torch.Tensor:
    """(B, max length) bool mask of the first `lengths[b]` positions of each row: assigning a flat tensor of the rows'
    values to it fills them in row-major order, i.e. each row left-aligned."""
    return torch.from_numpy(np.arange(lengths.max(initial=0)) < lengths[:, None])


def collate_word_features(items: list[dict]) -> dict[str, torch.Tensor]:
    """Pad a list of `encode_words` outputs: input_ids/attention_mask (B, W), char_ids (B, W, C), lang_ids (B,);
    in encoder mode also encoder_input_ids/encoder_attention_mask/encoder_word_ids (B, S) or the cached
    input_features (B, W, layers, hidden) as float32.
    `labels`, when present, are padded with -100 (per word, for tagging) or stacked (one int per sentence)."""
    batch = len(items)
    word_counts = _lengths([item["input_ids"] for item in items])
    real = _left_aligned(word_counts)  # (B, W)
    max_words = real.shape[1]
    attention_mask = real.long()
    input_ids = torch.zeros(batch, max_words, dtype=torch.long)
    num_words = int(word_counts.sum())
    input_ids[real] = torch.from_numpy(_flat_ints(item["input_ids"] for item in items))
    # every character of every word scattered at once (no Python work per word beyond reading the lists)
    words = [chars for item in items for chars in item["char_ids"]]
    if len(words) != num_words:
        raise ValueError(f"the items have {num_words} input ids but {len(words)} char_ids lists: expected one per word")
    char_counts = _lengths(words)
    max_chars = max(int(char_counts.max(initial=0)), 1)
    char_ids = torch.zeros(batch * max_words, max_chars, dtype=torch.long)
    word_slots = np.repeat(np.flatnonzero(real.numpy()), char_counts)  # each character's word in the (B x W) grid
    offsets = np.arange(int(char_counts.sum())) - np.repeat(np.cumsum(char_counts) - char_counts, char_counts)
    char_ids[torch.from_numpy(word_slots), torch.from_numpy(offsets)] = torch.from_numpy(_flat_ints(words))
    char_ids = char_ids.view(batch, max_words, max_chars)
    features = {
        "input_ids": input_ids,
        "char_ids": char_ids,
        "attention_mask": attention_mask,
        "lang_ids": torch.tensor([item["lang_ids"] for item in items], dtype=torch.long),
    }
    if "encoder_input_ids" in items[0]:  # encoder mode, live
        (features["encoder_input_ids"], features["encoder_attention_mask"], features["encoder_word_ids"]) = (
            pad_subtokens([item["encoder_input_ids"] for item in items], [item["encoder_word_ids"] for item in items])
        )
    if "input_features" in items[0]:  # encoder mode, cached: (words, layers, hidden) per sentence, any float dtype
        first = items[0]["input_features"]
        features["input_features"] = torch.zeros(batch, max_words, *first.shape[1:], dtype=torch.float32)
        for row, item in enumerate(items):
            features["input_features"][row, : len(item["input_features"])] = item["input_features"]
    if "labels" in items[0] and not isinstance(items[0]["labels"], list):
        features["labels"] = torch.tensor([item["labels"] for item in items], dtype=torch.long)
    elif "labels" in items[0]:
        labels = torch.full((batch, max_words), -100, dtype=torch.long)
        flat_labels = _flat_ints(item["labels"] for item in items)
        if len(flat_labels) != num_words:
            raise ValueError(
                f"the items have {num_words} input ids but {len(flat_labels)} labels: expected one per word"
            )
        labels[real] = torch.from_numpy(flat_labels)
        features["labels"] = labels
    return features


__all__ = ["ManMoeEncoding", "ManMoeTokenizer", "collate_word_features", "pad_subtokens"]
