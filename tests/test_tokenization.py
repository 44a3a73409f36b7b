import pytest
import torch
from transformers import AutoTokenizer

import modeling_manmoe  # noqa: F401  (registers the Auto classes)
from modeling_manmoe import LanguageError, ManMoeTokenizer


@pytest.fixture
def tokenizer():
    return ManMoeTokenizer(
        vocabularies={"en": ["the", "Berlin", "lives"], "de": ["der", "Berlin"], "es": ["el"], "nl": ["de"]},
        characters=list("theBrlinvsd"),
        languages=["en", "de", "es", "nl"],
    )


def test_word_ids_are_per_language_rows(tokenizer):
    en = tokenizer(["Berlin", "the"], language="en", is_split_into_words=True)
    de = tokenizer(["Berlin", "der"], language="de", is_split_into_words=True)
    assert en["input_ids"].tolist() == [[3, 2]]
    assert de["input_ids"].tolist() == [[6, 5]]  # rows: 0 pad, 1 unk, en 2-4, de 5-6, es 7, nl 8
    assert en["lang_ids"].tolist() == [0] and de["lang_ids"].tolist() == [1]
    assert tokenizer.word_vocab_size == 9


def test_lowercase_fallback_then_unknown(tokenizer):
    enc = tokenizer(["The", "LIVES", "Paris", "berlin"], language="en", is_split_into_words=True)
    assert enc["input_ids"].tolist() == [[2, 4, 1, 1]]  # "berlin" is not in the vocab ("Berlin" is)


def test_char_ids_and_padding(tokenizer):
    enc = tokenizer([["the", "x"], ["Berlin"]], language="en", is_split_into_words=True, return_tensors="pt")
    assert enc["char_ids"].shape == (2, 2, 6)
    assert enc["char_ids"][0, 1].tolist() == [1, 0, 0, 0, 0, 0]  # unknown char, then padding
    assert enc["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert enc.word_ids(0) == [0, 1] and enc.word_ids(1) == [0, None]


def test_raw_text_is_split_into_words(tokenizer):
    enc = tokenizer("the Berlin, lives!", language="en")
    assert enc["input_ids"].tolist() == [[2, 3, 1, 4, 1]]


def test_language_errors(tokenizer):
    with pytest.raises(LanguageError, match="no language given"):
        tokenizer(["the"], is_split_into_words=True)
    with pytest.raises(LanguageError, match="'fr'"):
        tokenizer(["the"], language="fr", is_split_into_words=True)
    tokenizer.language = "nl"
    assert tokenizer(["de"], is_split_into_words=True)["input_ids"].tolist() == [[8]]


def test_empty_inputs_are_errors(tokenizer):
    with pytest.raises(ValueError, match="word 1"):
        tokenizer(["the", ""], language="en", is_split_into_words=True)
    with pytest.raises(ValueError, match="no words"):
        tokenizer("   ", language="en")


def test_save_and_auto_load(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, ManMoeTokenizer)
    words = [["the", "Berlin"], ["der"]]
    for key in ("input_ids", "char_ids", "attention_mask", "lang_ids"):
        assert torch.equal(
            loaded(words, language="de", is_split_into_words=True)[key],
            tokenizer(words, language="de", is_split_into_words=True)[key],
        )


def test_split_words_lower_cases_and_uses_the_regex_per_language():
    tokenizer = ManMoeTokenizer(vocabularies={"en": ["great"]}, characters=[], languages=["en"], do_lower_case=True)
    assert tokenizer.split_words("GREAT book!! Don't", "en") == ["great", "book", "!", "!", "don", "'", "t"]
    assert tokenizer("GREAT!", language="en")["input_ids"].tolist() == [[2, 1]]


def test_japanese_text_is_split_by_mecab_and_the_setting_is_saved(tmp_path):
    pytest.importorskip("fugashi", reason="MeCab splitting needs the 'ja' extra (fugashi, ipadic)")
    pytest.importorskip("ipadic", reason="MeCab splitting needs the 'ja' extra (fugashi, ipadic)")
    tokenizer = ManMoeTokenizer(
        vocabularies={"en": [], "ja": ["素晴らしい", "出来"]},
        characters=[],
        languages=["en", "ja"],
        do_lower_case=True,
        mecab_languages=["ja"],
    )
    # U+3000 (ideographic space) separates words like a space; Latin letters are lower-cased
    assert tokenizer.split_words("素晴らしい出来です!\u3000CD", "ja") == ["素晴らしい", "出来", "です", "!", "cd"]
    assert tokenizer.split_words("Great CD", "en") == ["great", "cd"]  # other languages keep the regex
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.mecab_languages == ["ja"] and loaded.do_lower_case
    assert loaded("素晴らしい出来", language="ja")["input_ids"].tolist() == [[2, 3]]


def test_collate_places_every_character_of_every_word():
    """The vectorised collation puts each word's character ids at [row, word, :len] and pads with 0 (words of
    different lengths, a word without characters, sentences of different lengths)."""
    from modeling_manmoe.tokenization_manmoe import collate_word_features

    items = [
        {"input_ids": [5, 6, 7], "char_ids": [[1, 2, 3], [], [4]], "lang_ids": 0, "labels": [1, 0, 2]},
        {"input_ids": [8], "char_ids": [[9, 9, 9, 9, 9]], "lang_ids": 2, "labels": [3]},
    ]
    batch = collate_word_features(items)
    expected = torch.zeros(2, 3, 5, dtype=torch.long)
    expected[0, 0, :3] = torch.tensor([1, 2, 3])
    expected[0, 2, 0] = 4
    expected[1, 0] = 9
    assert torch.equal(batch["char_ids"], expected)
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]] and batch["lang_ids"].tolist() == [0, 2]
    assert batch["labels"].tolist() == [[1, 0, 2], [3, -100, -100]]
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]


def test_pad_subtokens_places_each_sentence_left_aligned():
    """Encoder sub-tokens of sentences of different lengths: ids padded with 0 (masked out), word indices with -1."""
    from modeling_manmoe.tokenization_manmoe import pad_subtokens

    ids, mask, word_ids = pad_subtokens(
        ([101, 7, 8, 102], [101, 102], [101, 9, 102]), ([-1, 0, 0, -1], [-1, -1], [-1, 0, -1])
    )
    assert ids.tolist() == [[101, 7, 8, 102], [101, 102, 0, 0], [101, 9, 102, 0]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]]
    assert word_ids.tolist() == [[-1, 0, 0, -1], [-1, -1, -1, -1], [-1, 0, -1, -1]]
    assert ids.dtype == mask.dtype == word_ids.dtype == torch.long
    with pytest.raises(ValueError, match="one index per sub-token"):
        pad_subtokens(([101, 7, 102],), ([-1, 0],))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("char_ids", [[1]], "3 input ids but 2 char_ids lists"), ("labels", [1], "3 input ids but 2 labels")],
)
def test_collate_refuses_items_whose_lists_disagree_with_their_words(field, value, message):
    """An item with fewer character lists or labels than input ids is an error, not a silently shifted batch."""
    from modeling_manmoe.tokenization_manmoe import collate_word_features

    items = [
        {"input_ids": [5, 6], "char_ids": [[1], [2]], "lang_ids": 0, "labels": [1, 0]},
        {"input_ids": [8], "char_ids": [[9]], "lang_ids": 0, "labels": [3]},
    ]
    items[0][field] = value
    with pytest.raises(ValueError, match=message):
        collate_word_features(items)


def test_long_words_are_cut_for_the_char_cnn_and_counted(tokenizer, caplog):
    """A word longer than `max_word_characters` (64) gives the character ids of its first 64 characters: the batch's
    char_ids stay (batch, words, 64) whatever the input, the word id is the whole word's, and the count is logged."""
    import logging

    long_word = "Berlin" * 2000  # 12,000 characters
    with caplog.at_level(logging.INFO, logger="modeling_manmoe.tokenization_manmoe"):
        enc = tokenizer([["the", long_word], ["lives"]], language="en", is_split_into_words=True, return_tensors="pt")
    assert enc["char_ids"].shape == (2, 2, 64)
    assert enc["char_ids"][0, 1].tolist() == tokenizer.char_ids_of(long_word[:64])
    assert enc["input_ids"].tolist() == [[2, 1], [4, 0]]
    assert tokenizer.truncated_words == {"en": 1}
    assert "en: 1 word(s) so far longer than 64 characters (max_word_characters)" in caplog.text
    assert "(12000 characters): the CharCNN reads their first 64 characters" in caplog.text
    with caplog.at_level(logging.INFO, logger="modeling_manmoe.tokenization_manmoe"):
        for _ in range(9):  # logged again at the 10th, not in between
            tokenizer([long_word], language="en", is_split_into_words=True)
    messages = [record.getMessage() for record in caplog.records if "max_word_characters" in record.getMessage()]
    assert len(messages) == 2 and messages[1].startswith("en: 10 word(s) so far")


def test_words_up_to_the_limit_are_unchanged_and_the_setting_is_saved(tokenizer, tmp_path):
    """Words of at most `max_word_characters` characters (every CoNLL word) give the same ids as without a limit."""
    unlimited = ManMoeTokenizer(
        vocabularies=tokenizer.vocabularies,
        characters=tokenizer.characters,
        languages=tokenizer.languages,
        max_word_characters=10**9,
    )
    words = [["the", "Berlin", "x" * 64], ["lives"]]
    for key in ("input_ids", "char_ids", "attention_mask", "lang_ids"):
        assert torch.equal(
            tokenizer(words, language="en", is_split_into_words=True)[key],
            unlimited(words, language="en", is_split_into_words=True)[key],
        )
    assert tokenizer.truncated_words == {}
    short = ManMoeTokenizer(vocabularies={"en": []}, characters=list("ab"), languages=["en"], max_word_characters=3)
    short.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.max_word_characters == 3 and loaded.char_ids_of("abab") == [2, 3, 2]
    for value in (0, -1, 2.5, True, None):
        with pytest.raises(ValueError, match=rf"max_word_characters must be a positive integer, got {value!r}"):
            ManMoeTokenizer(vocabularies={"en": []}, characters=[], languages=["en"], max_word_characters=value)


def test_the_model_reads_a_long_word_as_its_first_characters(tokenizer, tiny_config):
    """The CharCNN's pooled windows of a 12,000-character word are those of its first 64 characters (not of all its
    windows), and the other words' are those they have in a sentence without it."""
    from modeling_manmoe.char_cnn import CharCNN

    torch.manual_seed(0)
    config = tiny_config.__class__(**{**tiny_config.to_dict(), "char_vocab_size": tokenizer.char_vocab_size})
    char_cnn = CharCNN(config).eval()
    char_cnn.char_vectors.normal_()[0] = 0  # random character vectors, the padding row zero
    long_word = "Berlin" * 10 + "dddd" + "sitv" * 2985  # windows past the 64th character ("sit", "itv", ...) are new

    def pooled(words: list[str], reader=tokenizer) -> torch.Tensor:  # (words, filters * widths)
        char_ids = reader([words], language="en", is_split_into_words=True)["char_ids"][0]
        with torch.no_grad():
            return char_cnn.pooled_convolutions(char_ids)

    features = pooled(["the", long_word])
    assert torch.equal(features, pooled(["the", long_word[:64]]))
    assert torch.allclose(features[0], pooled(["the"])[0])  # computed over another width: equal up to rounding
    unlimited = ManMoeTokenizer(
        vocabularies=tokenizer.vocabularies, characters=tokenizer.characters, max_word_characters=10**9
    )
    assert not torch.equal(features[1], pooled(["the", long_word], unlimited)[1])  # all its windows would differ
