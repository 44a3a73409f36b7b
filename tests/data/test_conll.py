"""Tests of `modeling_manmoe.data.conll`: CoNLL readers, file lookup and the Hub loader."""

from __future__ import annotations

import contextlib
import gzip
import logging
import re
import time

import datasets
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from modeling_manmoe.data import (
    CONLL_NER_LABELS,
    check_ner_label_names,
    conll_entity_types,
    conll_file_path,
    files,
    iob1_to_iob2,
    iobes_to_iob2,
    load_hub_ner,
    ner_label_names,
    read_conll,
    starts_chunk_with_inside,
)
from modeling_manmoe.errors import DataFormatError, LanguageError

SENTENCES = [
    (["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"]),
    (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
]


def write(tmp_path, text: str | bytes, name: str = "data.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def names_of(dataset) -> list[list[str]]:
    names = dataset.features["ner_tags"].feature.names
    return [[names[i] for i in row] for row in dataset["ner_tags"]]


def conll_text(columns: int = 4, separator: str = " ", newline: str = "\n") -> str:
    blocks = []
    for words, tags in SENTENCES:
        filler = ["X"] * (columns - 2)
        lines = [separator.join([word, *filler, tag]) for word, tag in zip(words, tags, strict=True)]
        blocks.append(newline.join(lines) + newline)
    return newline.join(blocks)


def assert_sentences(dataset, language: str = "en"):
    assert dataset["tokens"] == [words for words, _ in SENTENCES]
    assert names_of(dataset) == [tags for _, tags in SENTENCES]
    assert dataset["language"] == [language] * len(SENTENCES)


# --- read_conll: layout -------------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [2, 3, 4, 5])
def test_reads_two_to_five_columns(tmp_path, columns):
    assert_sentences(read_conll(write(tmp_path, conll_text(columns)), "en"))


def test_features_are_the_conll_labels(tmp_path):
    features = read_conll(write(tmp_path, conll_text()), "en").features
    assert features["ner_tags"].feature == datasets.ClassLabel(names=CONLL_NER_LABELS)
    assert features["tokens"].feature == datasets.Value("string")
    assert features["language"] == datasets.Value("string")


@pytest.mark.parametrize("separator", ["\t", "  ", " \t "])
def test_tabs_and_runs_of_whitespace_separate_columns(tmp_path, separator):
    assert_sentences(read_conll(write(tmp_path, conll_text(3, separator)), "de"), "de")


def test_crlf_line_endings(tmp_path):
    dataset = read_conll(write(tmp_path, conll_text(2, newline="\r\n")), "en")
    assert_sentences(dataset)
    assert all("\r" not in token for row in dataset["tokens"] for token in row)


def test_whitespace_only_lines_break_sentences(tmp_path):
    text = "EU NNP B-ORG\r\nrejects VBZ O\r\n \r\nPeter NNP B-PER\r\n\t\r\nBlackburn NNP B-PER\r\n"
    dataset = read_conll(write(tmp_path, text), "en")
    assert dataset["tokens"] == [["EU", "rejects"], ["Peter"], ["Blackburn"]]


def test_consecutive_blank_lines_and_missing_final_newline(tmp_path):
    text = "\n\n\nEU B-ORG\nrejects O\n\n\n\n  \nPeter B-PER\nBlackburn I-PER"
    dataset = read_conll(write(tmp_path, text), "en")
    assert dataset["tokens"] == [["EU", "rejects"], ["Peter", "Blackburn"]]


def test_docstart_lines_are_skipped_and_end_sentences(tmp_path):
    lines = [
        "-DOCSTART- -X- -X- O",
        "",
        "EU NNP I-NP B-ORG",
        "-DOCSTART- -X- -X- O",
        "Peter NNP I-NP B-PER",
        "",
    ]
    text = "\n".join([*lines, "-DOCSTART- O", ""])
    dataset = read_conll(write(tmp_path, text), "en")
    assert dataset["tokens"] == [["EU"], ["Peter"]]


def test_utf8_tokens_and_bom(tmp_path):
    dataset = read_conll(write(tmp_path, "\ufeffErzählung O\nLöwe B-PER\n"), "de")
    assert dataset["tokens"] == [["Erzählung", "Löwe"]]


def test_gzip_file(tmp_path):
    path = write(tmp_path, gzip.compress(conll_text().encode()), "eng.train.gz")
    assert_sentences(read_conll(path, "en"))


def test_gzip_detected_by_magic_bytes(tmp_path):
    assert_sentences(read_conll(write(tmp_path, gzip.compress(conll_text().encode()), "eng.train"), "en"))


@pytest.mark.parametrize("cut", [10, -5])
def test_truncated_gzip_names_the_file(tmp_path, cut):
    data = gzip.compress(conll_text().encode())
    path = write(tmp_path, data[:cut], "broken.gz")
    with pytest.raises(DataFormatError, match=r"broken\.gz.*gzip"):
        read_conll(path, "en")


def test_gz_suffix_without_gzip_data(tmp_path):
    with pytest.raises(DataFormatError, match=r"plain\.gz.*gzip"):
        read_conll(write(tmp_path, conll_text(), "plain.gz"), "en")


def test_latin1_fallback_is_reported(tmp_path, caplog):
    """A file without any valid UTF-8 character of 2 to 4 bytes is a single-byte legacy file: latin-1, warned."""
    path = write(tmp_path, "Peter O\nM\xfcller B-PER\nJos\xe9 I-PER\n".encode("latin-1"), "latin.txt")
    with caplog.at_level(logging.WARNING, logger="modeling_manmoe.data.conll"):
        dataset = read_conll(path, "de")
    assert dataset["tokens"] == [["Peter", "Müller", "José"]]
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(path) in message and "latin-1" in message and "line 2 (byte offset 9)" in message
    assert "2 non-ASCII byte(s)" in message


def test_utf8_file_with_stray_bytes_is_refused_naming_the_lines(tmp_path):
    """A UTF-8 file with a few bytes of another encoding is not decoded whole as latin-1 (which would garble every
    non-ASCII word): refused, naming the first offending lines and byte offsets."""
    lines = ["Löwe B-PER", "Peter O", "M\xfcller B-PER", "Straße O", "caf\xe9 O"]
    data = "\n".join(lines).encode("utf-8").replace("ü".encode(), b"\xfc").replace("é".encode(), b"\xe9")
    path = write(tmp_path, data, "stray.txt")
    expected = (
        r"stray\.txt: not valid UTF-8: 2 byte\(s\) that are not UTF-8, at line 3 \(byte offset 21\), line 5 "
        r"\(byte offset 46\), in a file that also holds 2 valid UTF-8 character\(s\) of 2 to 4 bytes; expected one "
        r"encoding per file"
    )
    with pytest.raises(DataFormatError, match=expected):
        read_conll(path, "de")
    assert read_conll(path, "de", encoding="latin-1")["tokens"][0][:3] == ["LÃ¶we", "Peter", "Müller"]


def test_many_stray_bytes_name_the_first_five(tmp_path):
    data = "Löwe O\n".encode() + b"".join(b"w\xe9%d O\n" % i for i in range(8))
    with pytest.raises(DataFormatError, match=r"8 byte\(s\) .* line 6 \(byte offset 33\) and 3 more, in a file"):
        read_conll(write(tmp_path, data, "many.txt"), "de")


def test_explicit_encoding_errors_name_the_file_and_line(tmp_path):
    path = write(tmp_path, "Peter O\nLöwe B-PER\n".encode(), "enc.txt")
    assert read_conll(path, "de", encoding="utf-8")["tokens"] == [["Peter", "Löwe"]]
    with pytest.raises(DataFormatError, match=r"enc\.txt:2: not valid ascii \(byte offset 9: ordinal not in range"):
        read_conll(path, "de", encoding="ascii")
    with pytest.raises(DataFormatError, match=r"enc\.txt: unknown encoding 'klingon'; expected a Python codec name"):
        read_conll(path, "de", encoding="klingon")


def test_byte_order_marks_inside_the_file_are_removed_with_a_warning(tmp_path, caplog):
    """Two UTF-8 files with a BOM each, joined together: the second BOM is removed from the word it would start."""
    path = write(tmp_path, "\ufeffEU B-ORG\n\n\ufeffPeter B-PER\nBlack\ufeffburn I-PER\n", "joined.txt")
    with caplog.at_level(logging.WARNING, logger="modeling_manmoe.data.conll"):
        dataset = read_conll(path, "en")
    assert dataset["tokens"] == [["EU"], ["Peter", "Blackburn"]]
    message = " ".join(record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)
    assert str(path) in message and "2 byte-order mark(s) (U+FEFF) inside the file" in message
    assert "on line(s) 3, 4" in message


def test_a_byte_order_mark_alone_leaves_a_line_with_one_column(tmp_path):
    path = write(tmp_path, "EU B-ORG\n\ufeff O\n", "bom.txt")
    with pytest.raises(DataFormatError, match=r"bom\.txt:2: expected 2 to 5 columns .* found 1: 'O'"):
        read_conll(path, "en")


def test_binary_file(tmp_path):
    with pytest.raises(DataFormatError, match=r"model\.bin.*binary.*expected text"):
        read_conll(write(tmp_path, b"PK\x03\x04\x00\x00\x01\x02", "model.bin"), "en")


@pytest.mark.parametrize("text", ["", "\n\n  \n", "-DOCSTART- -X- O\n\n-DOCSTART- O\n"])
def test_file_without_sentences(tmp_path, text):
    with pytest.raises(DataFormatError, match=r"empty\.txt.*no sentences"):
        read_conll(write(tmp_path, text, "empty.txt"), "en")


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        read_conll(tmp_path / "nowhere.txt", "en")


@pytest.mark.parametrize(
    ("bad_line", "found"),
    [("EU", 1), ("a b c d e f", 6)],
)
def test_wrong_column_count_names_file_and_line(tmp_path, bad_line, found):
    path = write(tmp_path, f"Peter B-PER\n\n{bad_line}\nrejects O\n", "cols.txt")
    with pytest.raises(DataFormatError, match=rf"cols\.txt:3: expected 2 to 5 columns.*found {found}"):
        read_conll(path, "en")


def test_mixed_column_counts_are_refused_naming_both_lines(tmp_path):
    """A line with another number of columns than the file's first: e.g. a word holding a space, whose second part
    would otherwise be silently dropped as a middle column."""
    path = write(tmp_path, "EU NNP B-ORG\nrejects VBZ O\n\nNew York NNP B-LOC\n", "mixed.txt")
    expected = r"mixed\.txt:4: 4 columns, but line 1 has 3: expected the same number of columns .*'New York NNP B-LOC'"
    with pytest.raises(DataFormatError, match=expected):
        read_conll(path, "en")


def test_docstart_lines_may_have_another_column_count(tmp_path):
    text = "-DOCSTART- -X- -X- O\n\nEU B-ORG\nrejects O\n-DOCSTART- O\n\nPeter B-PER\n"
    assert read_conll(write(tmp_path, text), "en")["tokens"] == [["EU", "rejects"], ["Peter"]]


@pytest.mark.parametrize("tag", ["PER", "B-", "X-PER", "s-LOC", "b-per", "0", "B_PER"])
def test_non_iob_tag_names_file_line_and_tag(tmp_path, tag):
    path = write(tmp_path, f"EU B-ORG\n\nPeter O\nBlackburn {tag}\n", "tags.txt")
    expected = rf"tags\.txt:4: bad NER tag '{tag}'; expected 'O' or 'B-TYPE' / 'I-TYPE' \(IOB1, IOB2\), also 'S-TYPE'"
    with pytest.raises(DataFormatError, match=expected):
        read_conll(path, "en")


@pytest.mark.parametrize("letters", ["IOBES", "BILOU"])
def test_iobes_files_are_detected_and_converted_to_iob2(tmp_path, letters):
    single, end = ("S", "E") if letters == "IOBES" else ("U", "L")
    path = write(tmp_path, f"EU {single}-ORG\nrejects O\nPeter B-PER\nBlackburn {end}-PER\nand O\nAnn B-PER\nLee "
                           f"I-PER\nMay {end}-PER\n")  # fmt: skip
    assert names_of(read_conll(path, "en")) == [["B-ORG", "O", "B-PER", "I-PER", "O", "B-PER", "I-PER", "I-PER"]]
    assert iobes_to_iob2(["S-X", "B-Y", "I-Y", "E-Y", "U-Z", "L-Z", "O"]) == [
        "B-X",
        "B-Y",
        "I-Y",
        "I-Y",
        "B-Z",
        "I-Z",
        "O",
    ]
    with pytest.raises(
        DataFormatError, match=rf"data\.txt:1: NER tag '{single}-ORG' is IOBES, but tag_scheme is 'iob2'"
    ):
        read_conll(path, "en", tag_scheme="iob2")
    with pytest.raises(
        DataFormatError, match=rf"data\.txt:1: IOBES tag '{single}-ORG' converts to 'B-ORG', which is not"
    ):
        read_conll(path, "en", label_names=["O", "B-PER", "I-PER"])
    assert conll_entity_types(path) == ["ORG", "PER"]


def test_unknown_label_names_file_line_tag_and_labels(tmp_path):
    path = write(tmp_path, "EU B-ORG\n1996 B-DATE\n", "dates.txt")
    with pytest.raises(DataFormatError, match=r"dates\.txt:2: NER tag 'B-DATE' is not one of .*'I-MISC'"):
        read_conll(path, "en")


def test_custom_label_names(tmp_path):
    labels = ["O", "B-DATE", "I-DATE"]
    dataset = read_conll(write(tmp_path, "in O\nMay B-DATE\n1996 I-DATE\n"), "en", label_names=labels)
    assert dataset.features["ner_tags"].feature.names == labels
    assert dataset["ner_tags"] == [[0, 1, 2]]


def test_bad_label_names():
    with pytest.raises(DataFormatError, match="label_names"):
        read_conll("unused", "en", label_names=["O", "O"])


def test_conversion_to_a_missing_b_label_names_the_line(tmp_path):
    path = write(tmp_path, "the O\nUN I-ORG\n", "iob1.txt")
    with pytest.raises(DataFormatError, match=r"iob1\.txt:2: IOB1 tag 'I-ORG' converts to 'B-ORG'"):
        read_conll(path, "en", label_names=["O", "I-ORG"])


def test_bad_language(tmp_path):
    with pytest.raises(LanguageError, match="language"):
        read_conll(write(tmp_path, conll_text()), "")


# --- limits: the size of a file and of its lines -------------------------------------------------------------


@contextlib.contextmanager
def limits(line_bytes: int, data_bytes: int):
    """Set `files.MAX_LINE_BYTES` and `files.MAX_DATA_BYTES` for the duration of the block."""
    saved = files.MAX_LINE_BYTES, files.MAX_DATA_BYTES
    files.MAX_LINE_BYTES, files.MAX_DATA_BYTES = line_bytes, data_bytes
    try:
        yield
    finally:
        files.MAX_LINE_BYTES, files.MAX_DATA_BYTES = saved


def test_a_gzip_file_that_expands_beyond_the_limit_is_refused(tmp_path):
    """A small gzip file that decompresses to more than `MAX_DATA_BYTES` (a "zip bomb") is refused as soon as the
    decompression passes the limit, naming the file and the limit; a plain file by its size."""
    bomb = write(tmp_path, gzip.compress(b"EU B-ORG\n" * 100_000), "bomb.conll.gz")
    with limits(files.MAX_LINE_BYTES, 50_000), pytest.raises(DataFormatError) as refused:
        read_conll(bomb, "en")
    assert str(refused.value).startswith(f"{bomb}: decompresses to more than 50000 bytes, the limit of a data file")
    assert "MAX_DATA_BYTES" in str(refused.value)
    plain = write(tmp_path, b"EU B-ORG\n" * 10_000, "big.conll")
    with limits(files.MAX_LINE_BYTES, 50_000), pytest.raises(DataFormatError) as refused:
        read_conll(plain, "en")
    assert str(refused.value).startswith(f"{plain}: 90000 bytes, more than the limit of 50000 bytes of a data file")
    assert len(read_conll(bomb, "en")) == 1  # within the default limit of 4 GiB


@pytest.mark.parametrize("compress", [False, True])
def test_a_line_longer_than_the_limit_is_refused_naming_the_line(tmp_path, compress):
    data = b"EU B-ORG\n\n" + b"x" * (2**20 + 1) + b" O\nrejects O\n"
    path = write(tmp_path, gzip.compress(data) if compress else data, "long.conll")
    expected = rf"long\.conll:3: a line of {2**20 + 3} bytes, longer than the limit of {2**20} bytes per line"
    with pytest.raises(DataFormatError, match=expected):
        read_conll(path, "en")
    with limits(2**21, files.MAX_DATA_BYTES):
        assert len(read_conll(path, "en")["tokens"][1][0]) == 2**20 + 1


@pytest.mark.parametrize(
    ("data", "line", "length"),
    [(b"a" * 11, 1, 11), (b"ab\n" + b"c" * 11, 2, 11), (b"ab\n\n" + b"c" * 11 + b"\n", 3, 11), (b"\n" * 5, None, 0)],
)
def test_check_line_lengths_finds_the_first_long_line(tmp_path, data, line, length):
    if line is None:
        files.check_line_lengths(tmp_path / "f", data, 10)
        return
    with pytest.raises(DataFormatError, match=rf"f:{line}: a line of {length} bytes, longer than the limit of 10"):
        files.check_line_lengths(tmp_path / "f", data, 10)


def test_check_line_lengths_across_scanning_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_CHUNK_BYTES", 7)
    data = b"abc\ndefghi\nj\n" + b"k" * 12 + b"\nl"
    files.check_line_lengths(tmp_path / "f", data, 12)
    with pytest.raises(DataFormatError, match=r"f:4: a line of 12 bytes"):
        files.check_line_lengths(tmp_path / "f", data, 11)
    with pytest.raises(DataFormatError, match=r"f:2: a line of 6 bytes"):
        files.check_line_lengths(tmp_path / "f", data, 5)


# --- IOB1 / IOB2 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iob1", "iob2"),
    [
        (["I-PER", "I-PER", "O", "I-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
        (["I-PER", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"]),
        (["I-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),
        (["O", "I-MISC", "O", "O"], ["O", "B-MISC", "O", "O"]),
        (["B-ORG", "I-ORG", "O"], ["B-ORG", "I-ORG", "O"]),
        ([], []),
    ],
)
def test_iob1_to_iob2(iob1, iob2):
    assert iob1_to_iob2(iob1) == iob2
    assert not starts_chunk_with_inside(iob2)


def test_auto_converts_iob1_file(tmp_path, caplog):
    text = "EU I-ORG\nrejects O\nGerman I-MISC\n\nPeter I-PER\nBlackburn I-PER\nSmith B-PER\n"
    with caplog.at_level(logging.INFO, logger="modeling_manmoe.data.conll"):
        dataset = read_conll(write(tmp_path, text), "en")
    assert names_of(dataset) == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER", "B-PER"]]
    assert "IOB1" in caplog.text


def test_auto_leaves_iob2_file_untouched(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="modeling_manmoe.data.conll"):
        assert_sentences(read_conll(write(tmp_path, conll_text()), "en"))
    assert "IOB2" in caplog.text


def test_forced_iob1_keeps_iob2_tags(tmp_path):
    assert_sentences(read_conll(write(tmp_path, conll_text()), "en", tag_scheme="iob1"))


def test_forced_iob2_leaves_inside_chunk_starts(tmp_path):
    dataset = read_conll(write(tmp_path, "EU I-ORG\nrejects O\n"), "en", tag_scheme="iob2")
    assert names_of(dataset) == [["I-ORG", "O"]]


def test_unknown_tag_scheme(tmp_path):
    with pytest.raises(DataFormatError, match="tag_scheme"):
        read_conll(write(tmp_path, conll_text()), "en", tag_scheme="bioes")


tags_strategy = st.lists(st.sampled_from(CONLL_NER_LABELS), min_size=1, max_size=8)
words_strategy = st.text(st.characters(codec="utf-8", exclude_categories=["Z", "C"]), min_size=1, max_size=6)


@given(st.lists(tags_strategy, min_size=1, max_size=4), st.data())
def test_round_trip_of_iob2_sentences(tmp_path, tag_lists, data):
    tag_lists = [iob1_to_iob2(tags) for tags in tag_lists]
    words = [data.draw(st.lists(words_strategy, min_size=len(t), max_size=len(t))) for t in tag_lists]
    words = [[word if word != "-DOCSTART-" else "x" for word in row] for row in words]
    blocks = zip(words, tag_lists, strict=True)
    text = "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(ws, ts, strict=True)) for ws, ts in blocks)
    dataset = read_conll(write(tmp_path, text, "round.txt"), "xx")
    assert dataset["tokens"] == words
    assert names_of(dataset) == tag_lists


# --- fuzzing: whatever the file holds, only DataFormatError escapes and what is read is consistent -------------
# The Hypothesis profile (tests/conftest.py) sets the number of examples: `HYPOTHESIS_PROFILE=fuzz` runs 2,000.

FUZZ_LABEL_NAMES = [None, ["O", "B-DATE", "I-DATE"], ["O", "I-ORG"]]
FUZZ_TAG = st.one_of(
    st.sampled_from(CONLL_NER_LABELS),
    st.sampled_from(["B-DATE", "I-DATE", "PER", "B-", "I-", "0", "b-per", "E-LOC", "S-PER", "B_PER", "O-X", "-X-"]),
    st.text(st.characters(codec="utf-8", exclude_characters=" \t\n"), min_size=1, max_size=5),
)
FUZZ_FIELD = st.one_of(words_strategy, st.sampled_from(["-DOCSTART-", "-X-", "NNP", "I-NP", "O"]))
SEPARATORS = st.sampled_from([" ", "\t", "  ", " \t ", "\t\t"])
FUZZ_PIECES = [
    "EU B-PER\n",
    "Löwe O\n",
    "x NN I-LOC\n",
    "\n",
    "\r\n",
    "-DOCSTART- -X- O\n",
    "EU",
    "Löwe",
    "東京",
    "O",
    "B-PER",
    "I-PER",
    "I-LOC",
    "B-DATE",
    "-DOCSTART-",
    "-X-",
    " ",
    "\t",
    "\n",
]
FUZZ_PIECES += ["\n", "\r\n", "\r", "\x00", "\ufeff", "\xa0", "\x85", "\u2028", "\x1c"]


def read_or_format_error(path, **kwargs):
    """`read_conll(path, "xx")`, or None when it raises a DataFormatError naming the file."""
    try:
        dataset = read_conll(path, "xx", **kwargs)
    except DataFormatError as error:
        assert str(path) in str(error)
        event("DataFormatError")
        return None
    event("read")
    return dataset


def assert_consistent(dataset, label_names=None, tag_scheme="auto", source_words=True):
    """The invariants of any dataset a reader returns."""
    names = list(label_names or CONLL_NER_LABELS)
    assert dataset.column_names == ["tokens", "ner_tags", "language"]
    assert dataset.features["ner_tags"].feature.names == names
    assert len(dataset) > 0 and set(dataset["language"]) == {"xx"}
    for words, tags in zip(dataset["tokens"], names_of(dataset), strict=True):
        assert len(words) == len(tags) > 0
        assert all(re.fullmatch(r"O|[BI]-\S+", tag) for tag in tags)
        if tag_scheme != "iob2":
            assert not starts_chunk_with_inside(tags)
        if source_words:  # words of a CoNLL file: one whitespace-free field, never a -DOCSTART- marker
            assert all(word and not word[0].isspace() and not set(word) & {" ", "\t", "\n", "\ufeff"} for word in words)
            assert "-DOCSTART-" not in words


def contain(data: bytes, draw, noisy: bool = True) -> tuple[bytes, str, bool]:
    """Store `data` plain or gzipped (named .gz or not), or if `noisy` maybe as a truncated gzip or plain under a
    .gz name. Returns the bytes, the file name and whether the file still holds `data` intact."""
    containers = ["plain", "plain", "gzip", "gzip.gz"] + (["truncated", "plain.gz"] if noisy else [])
    container = draw(st.sampled_from(containers))
    if container in ("gzip", "gzip.gz", "truncated"):
        data = gzip.compress(data)
    if container == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    name = (
        "fuzz.conll.gz"
        if container.endswith(".gz") or (container == "truncated" and draw(st.booleans()))
        else "fuzz.conll"
    )
    return data, name, container in ("plain", "gzip", "gzip.gz")


@st.composite
def conll_like_files(draw, label_names=None):
    """(file name, bytes, expected): random columns, tags, blank and -DOCSTART- lines, CRLF, BOM, latin-1 or
    invalid UTF-8, gzip or truncated gzip. Half the files are noisy (broken lines, bytes or gzip); the others
    hold 2-5 columns and tags of `label_names`. `expected` holds the sentences ([(word, tag), ...] each) when
    the text of the file is valid (the same number of columns on every token line), else None."""
    labels = list(label_names or CONLL_NER_LABELS)
    noisy = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines, sentences, current, valid = [], [], [], True
    columns = None  # the number of columns of the file's first token line: every token line must have as many
    for _ in range(draw(st.integers(0, 25))):
        kinds = ["token"] * 4 + ["blank", "docstart"] + (["garbage"] if noisy else [])
        kind = draw(st.sampled_from(kinds))
        ends_sentence = kind in ("blank", "docstart")
        if kind == "token":
            extra = draw(st.integers(0, 6) if noisy else st.integers(1, 4))
            fields = [draw(FUZZ_FIELD) for _ in range(extra)] + [draw(FUZZ_TAG if noisy else st.sampled_from(labels))]
            line = draw(SEPARATORS).join(fields)
            line = draw(st.sampled_from(["", " ", "\t"])) + line + draw(st.sampled_from(["", " ", "\t"]))
            ends_sentence = fields[0] == "-DOCSTART-"
            if not ends_sentence:
                columns = len(fields) if columns is None else columns
                valid &= 2 <= len(fields) <= 5 and fields[-1] in labels and len(fields) == columns
                current.append((fields[0], fields[-1]))
        elif kind == "blank":
            line = draw(st.sampled_from(["", " ", "\t", " \t "]))
        elif kind == "docstart":
            line = draw(st.sampled_from(["-DOCSTART- -X- -X- O", "-DOCSTART-", "-DOCSTART- O"]))
        else:
            line, valid = draw(st.text(st.characters(codec="utf-8"), max_size=20)), False
        if ends_sentence and current:
            sentences.append(current)
            current = []
        lines.append(line)
    if current:
        sentences.append(current)
    text = ("\ufeff" if draw(st.booleans()) else "") + newline.join(lines) + draw(st.sampled_from(["", newline]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1"] + (["invalid-utf-8"] if noisy else [])))
    if encoding == "latin-1":
        data = text.encode("latin-1", "replace")
        valid &= text.isascii()
    else:
        data = text.encode("utf-8")
    if encoding == "invalid-utf-8":
        position = draw(st.integers(0, len(data)))
        data = data[:position] + bytes([draw(st.integers(0x80, 0xFF))]) + data[position:]
        valid = False
    data, name, intact = contain(data, draw, noisy)
    return name, data, sentences if valid and intact else None


@given(st.sampled_from(FUZZ_LABEL_NAMES), st.sampled_from(["auto", "iob1", "iob2"]), st.data())
def test_fuzz_read_conll_of_conll_like_files(tmp_path, label_names, tag_scheme, data):
    name, content, expected = data.draw(conll_like_files(label_names), label="file")
    dataset = read_or_format_error(write(tmp_path, content, name), label_names=label_names, tag_scheme=tag_scheme)
    if dataset is not None:
        assert_consistent(dataset, label_names, tag_scheme)
    if expected is not None:  # a valid text: read exactly, or refused when it has no sentence or a tag converts
        event("valid text")  # to a B- tag that is not a label name (IOB1 conversion)
        tags = [[tag for _, tag in sentence] for sentence in expected]
        if tag_scheme == "iob1" or (tag_scheme == "auto" and any(map(starts_chunk_with_inside, tags))):
            tags = [iob1_to_iob2(row) for row in tags]
        labels = label_names or CONLL_NER_LABELS
        assert (dataset is None) == (not expected or any(tag not in labels for row in tags for tag in row))
        if dataset is not None:
            assert dataset["tokens"] == [[word for word, _ in sentence] for sentence in expected]
            assert names_of(dataset) == tags


@st.composite
def arbitrary_files(draw):
    """(file name, bytes): random bytes, or random CoNLL-ish pieces in UTF-8 or latin-1, maybe gzipped."""
    if draw(st.booleans()):
        data = draw(st.binary(max_size=300))
    else:
        text = "".join(draw(st.lists(st.sampled_from(FUZZ_PIECES), max_size=60)))
        data = text.encode(draw(st.sampled_from(["utf-8", "latin-1"])), "replace")
    data, name, _ = contain(data, draw)
    return name, data


@given(arbitrary_files(), st.sampled_from(["auto", "iob1", "iob2"]), st.sampled_from(FUZZ_LABEL_NAMES))
def test_fuzz_read_conll_of_arbitrary_bytes(tmp_path, file, tag_scheme, label_names):
    name, data = file
    dataset = read_or_format_error(write(tmp_path, data, name), label_names=label_names, tag_scheme=tag_scheme)
    if dataset is not None:
        assert_consistent(dataset, label_names, tag_scheme)


@st.composite
def files_with_long_lines(draw):
    """(file name, bytes, the bytes once decompressed or None for a truncated gzip): CoNLL lines whose words are
    up to 200 characters long, maybe a stray byte of another encoding, plain or gzipped."""
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        word = draw(st.sampled_from(["EU", "Löwe", "東京", "x", "-"])) * draw(st.integers(1, 100))
        lines.append(draw(st.sampled_from(["", f"{word} {draw(st.sampled_from(CONLL_NER_LABELS))}"])))
    data = "\n".join(lines).encode("utf-8")
    if draw(st.booleans()):
        position = draw(st.integers(0, len(data)))
        data = data[:position] + bytes([draw(st.integers(0x80, 0xFF))]) + data[position:]
    stored, name, intact = contain(data, draw)
    return name, stored, data if intact else None


def read_or_error(path) -> tuple[object, str | None]:
    """(dataset tokens and tags, None) or (None, the message of the DataFormatError, which names the file)."""
    try:
        dataset = read_conll(path, "xx")
    except DataFormatError as error:
        assert str(path) in str(error)
        return None, str(error)
    return (dataset["tokens"], dataset["ner_tags"]), None


@given(
    files_with_long_lines() | arbitrary_files().map(lambda file: (*file, None)),
    st.integers(1, 120),
    st.integers(1, 3000),
)
def test_fuzz_read_conll_within_small_limits(tmp_path, file, max_line_bytes, max_data_bytes):
    """Whatever the file, with any limits only DataFormatError escapes; a file over a limit is refused naming the
    limit (and the first long line); a file within the limits reads as it does with the default limits."""
    name, stored, plain = file
    path = write(tmp_path, stored, name)
    with limits(max_line_bytes, max_data_bytes):
        result, message = read_or_error(path)
    if plain is None:
        return
    lengths = [len(line) for line in plain.split(b"\n")]
    if len(plain) > max_data_bytes:
        event("over the size limit")
        assert f"more than the limit of {max_data_bytes} bytes" in message or (
            f"decompresses to more than {max_data_bytes} bytes" in message
        )
    elif max(lengths) > max_line_bytes:
        event("over the line limit")
        number = next(i for i, length in enumerate(lengths, start=1) if length > max_line_bytes)
        assert f":{number}: a line of {lengths[number - 1]} bytes, longer than the limit of {max_line_bytes}" in message
    else:
        event("within the limits")
        assert (result, message) == read_or_error(path)


@given(
    st.lists(st.sampled_from(["EU", "x", "Peter"]), min_size=1, max_size=12)
    | st.lists(st.sampled_from(["EU", "Löwe", "東京", "€", "Ñandú", "x", "😀"]), min_size=1, max_size=12),
    st.lists(st.integers(0x80, 0xFF), max_size=3),
    st.data(),
)
def test_fuzz_one_encoding_per_file(tmp_path, words, stray, data):
    """A UTF-8 file reads as UTF-8; with stray bytes inserted it is refused when it still holds a valid UTF-8
    character of 2 to 4 bytes, else (a single-byte legacy file) read as latin-1: never a mix of both."""
    raw = "".join(f"{word} O\n" for word in words).encode("utf-8")
    for byte in stray:
        position = data.draw(st.integers(0, len(raw)))
        raw = raw[:position] + bytes([byte]) + raw[position:]
    path = write(tmp_path, raw, "enc.conll")
    text = raw.decode("utf-8", "surrogateescape")
    has_stray = any("\udc80" <= char <= "\udcff" for char in text)
    multibyte = any(not char.isascii() and not "\udc80" <= char <= "\udcff" for char in text)
    result, message = read_or_error(path)
    if has_stray and multibyte:
        event("refused")
        assert "not valid UTF-8" in message and "expected one encoding per file" in message
        return
    # otherwise read in one encoding, or refused for another reason (a stray byte can make a bad tag)
    assert message is None or "not valid UTF-8" not in message
    if message is None:
        event("latin-1" if has_stray else "UTF-8")
        decoded = raw.decode("latin-1" if has_stray else "utf-8")
        rows = [re.split(r"[ \t]+", line.strip()) for line in decoded.split("\n") if line.strip()]
        assert result[0] == [[fields[0] for fields in rows]]


# --- conll_file_path -----------------------------------------------------------------------------------


def test_conll_file_path_in_folder_and_subfolders(tmp_path):
    (tmp_path / "conll2003").mkdir()
    (tmp_path / "conll2002").mkdir()
    eng = write(tmp_path / "conll2003", "x O\n", "eng.testa")
    ned = write(tmp_path / "conll2002", "x O\n", "ned.testb.gz")
    deu = write(tmp_path, "x O\n", "deu.train")
    assert conll_file_path(tmp_path, "en", "validation") == eng
    assert conll_file_path(tmp_path / "conll2003", "en", "validation") == eng
    assert conll_file_path(tmp_path, "nl", "test") == ned
    assert conll_file_path(str(tmp_path), "de", "train") == deu
    assert conll_file_path(tmp_path, "en", "testa") == eng


def test_conll_file_path_lists_the_paths_tried(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'es'.*esp\.testb.*conll2002/esp\.testb\.gz") as info:
        conll_file_path(tmp_path, "es", "test")
    assert str(info.value).count("esp.testb") == 6


def test_conll_file_path_names_other_languages_by_their_code(tmp_path):
    (tmp_path / "conll2003").mkdir()
    fi_train = write(tmp_path, "x O\n", "fi.train")
    fi_test = write(tmp_path / "conll2003", "x O\n", "fi.testb.gz")
    en_train = write(tmp_path, "x O\n", "en.train")
    assert conll_file_path(tmp_path, "fi", "train") == fi_train
    assert conll_file_path(tmp_path, "fi", "test") == fi_test
    assert conll_file_path(tmp_path, "en", "train") == en_train  # no eng.train: the code is the second choice
    eng_train = write(tmp_path, "x O\n", "eng.train")
    assert conll_file_path(tmp_path, "en", "train") == eng_train  # the shared task's name comes first
    with pytest.raises(FileNotFoundError, match=r"'fi'.*fi\.testa") as info:
        conll_file_path(tmp_path, "fi", "validation")
    assert str(info.value).count("fi.testa") == 6


def test_conll_file_path_bad_language_and_split(tmp_path):
    for language in ("", "../en", "en/x", "e n"):
        with pytest.raises(LanguageError, match="not a language code"):
            conll_file_path(tmp_path, language, "train")
    with pytest.raises(DataFormatError, match="'dev'"):
        conll_file_path(tmp_path, "en", "dev")


# --- load_hub_ner --------------------------------------------------------------------------------------


STRING_COLUMNS = datasets.Features(
    {
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.Value("string")),
    }
)


@pytest.fixture
def fake_hub(monkeypatch):
    """Make `datasets.load_dataset` return `calls["dataset"]` and record its arguments."""
    calls = {}

    def load_dataset(name, config_name=None, *, split=None):
        calls["args"] = (name, config_name, split)
        return calls["dataset"]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_load_hub_ner_remaps_class_labels_by_name(fake_hub):
    hub_names = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    fake_hub["dataset"] = datasets.Dataset.from_dict(
        {
            "id": ["0", "1", "2"],
            "tokens": [["Paris", "Hilton"], [], ["in", "Berlin"]],
            "ner_tags": [[3, 4], [], [0, 1]],
        },
        features=datasets.Features(
            {
                "id": datasets.Value("string"),
                "tokens": datasets.Sequence(datasets.Value("string")),
                "ner_tags": datasets.Sequence(datasets.ClassLabel(names=hub_names)),
            }
        ),
    )
    dataset = load_hub_ner("someone/ner", "fr", "train", config_name="fr")
    assert fake_hub["args"] == ("someone/ner", "fr", "train")
    assert dataset.column_names == ["tokens", "ner_tags", "language"]
    assert dataset.features["ner_tags"].feature.names == CONLL_NER_LABELS
    assert dataset["tokens"] == [["Paris", "Hilton"], ["in", "Berlin"]]
    assert names_of(dataset) == [["B-PER", "I-PER"], ["O", "B-LOC"]]
    assert dataset["language"] == ["fr", "fr"]


def test_load_hub_ner_string_tags_and_custom_columns(fake_hub):
    fake_hub["dataset"] = datasets.Dataset.from_dict({"words": [["UN", "says"]], "labels": [["I-ORG", "O"]]})
    dataset = load_hub_ner("x/y", "en", "test", tokens_column="words", tags_column="labels")
    assert names_of(dataset) == [["B-ORG", "O"]]


@pytest.mark.parametrize("missing", ["tokens", "ner_tags"])
def test_load_hub_ner_missing_column(fake_hub, missing):
    columns = {"tokens": [["a"]], "ner_tags": [["O"]]}
    del columns[missing]
    fake_hub["dataset"] = datasets.Dataset.from_dict({**columns, "other": [1]})
    with pytest.raises(DataFormatError, match=rf"'x/y'.*no column '{missing}'"):
        load_hub_ner("x/y", "en", "train")


def test_entity_types_decide_the_tag_set(tmp_path):
    """CoNLL's nine labels for CoNLL's types or fewer (WikiANN's PER/ORG/LOC); other types get O and B-/I- of each
    type, sorted; a file's types are read as read_conll reads it, IOB1 included."""
    path = write(tmp_path, "-DOCSTART- O\n\nTampere I-LOC\nhas O\nTuesday B-DATE\n\nJani I-PER\n")
    assert conll_entity_types(path) == ["DATE", "LOC", "PER"]
    assert ner_label_names(["LOC", "PER"]) == CONLL_NER_LABELS and ner_label_names([]) == CONLL_NER_LABELS
    names = ner_label_names(["DATE", "LOC", "PER"])
    assert names == ["O", "B-DATE", "I-DATE", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    dataset = read_conll(path, "fi", label_names=names)
    assert names_of(dataset) == [["B-LOC", "O", "B-DATE"], ["B-PER"]]  # IOB1 converted, DATE kept
    with pytest.raises(DataFormatError, match=r"data\.txt:3: NER tag 'I-LOC' is not one of the label names"):
        read_conll(path, "fi", label_names=["O", "B-PER", "I-PER"], tag_scheme="iob2")
    bad = write(tmp_path, "Jani B-PER\nasuu DATE\n", "bad.txt")
    with pytest.raises(DataFormatError, match=r"bad\.txt:2: bad NER tag 'DATE'; expected 'O' or 'B-TYPE'"):
        conll_entity_types(bad)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["O", "B-PER", "I-PER", "B-PER"], "names repeat"),
        (["B-PER", "I-PER"], "'O' is missing"),
        (["O", "PER", "B-LOC", "I-LOC"], r"\['PER'\] are not 'O', 'B-TYPE' or 'I-TYPE'"),
        (["O", "B-PER", "I-PER", "B-DATE"], r"\['B-DATE'\] lack their B-/I- partner"),
    ],
)
def test_a_tag_set_must_be_iob2(names, message):
    assert check_ner_label_names(["O", "B-DATE", "I-DATE"]) == ["O", "B-DATE", "I-DATE"]
    with pytest.raises(DataFormatError, match=rf"--ner_labels .*{message}.*expected an IOB2 tag set"):
        check_ner_label_names(names, "--ner_labels")


def test_load_hub_ner_bad_tags(fake_hub):
    fake_hub["dataset"] = datasets.Dataset.from_dict(
        {"tokens": [["a"], ["b", "c"]], "ner_tags": [["O"], ["O", "B-DATE"]]}
    )
    with pytest.raises(DataFormatError, match=r"'x/y'.*row 1, token 1: NER tag 'B-DATE'"):
        load_hub_ner("x/y", "en", "train")
    fake_hub["dataset"] = datasets.Dataset.from_dict({"tokens": [["a"]], "ner_tags": [[3]]})
    with pytest.raises(DataFormatError, match=r"'x/y'.*ner_tags.*ClassLabel"):
        load_hub_ner("x/y", "en", "train")
    fake_hub["dataset"] = datasets.Dataset.from_dict({"tokens": [["a", "b"]], "ner_tags": [["O"]]})
    with pytest.raises(DataFormatError, match=r"row 0: 2 tokens but 1 tags"):
        load_hub_ner("x/y", "en", "train")
    fake_hub["dataset"] = datasets.Dataset.from_dict({"tokens": [["a", "b"]], "ner_tags": [["O", None]]})
    with pytest.raises(DataFormatError, match=r"row 0, token 1: bad NER tag None"):
        load_hub_ner("x/y", "en", "train")


def test_load_hub_ner_class_label_id_out_of_range(fake_hub):
    fake_hub["dataset"] = datasets.Dataset.from_dict(
        {"tokens": [["a", "b"]], "ner_tags": [[0, -1]]},
        features=datasets.Features(
            {
                "tokens": datasets.Sequence(datasets.Value("string")),
                "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER"])),
            }
        ),
    )
    with pytest.raises(DataFormatError, match=r"row 0, token 1: bad NER tag None"):
        load_hub_ner("x/y", "en", "train")


def test_load_hub_ner_forced_scheme_and_empty_dataset(fake_hub):
    fake_hub["dataset"] = datasets.Dataset.from_dict({"tokens": [["UN"]], "ner_tags": [["I-ORG"]]})
    assert names_of(load_hub_ner("x/y", "en", "train", tag_scheme="iob2")) == [["I-ORG"]]
    empty = {"tokens": [[]], "ner_tags": [[]]}
    fake_hub["dataset"] = datasets.Dataset.from_dict(empty, features=STRING_COLUMNS)
    with pytest.raises(DataFormatError, match=r"'x/y'.*no sentences"):
        load_hub_ner("x/y", "en", "train")
    fake_hub["dataset"] = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"tokens": [["a"]]})})
    with pytest.raises(DataFormatError, match=r"expected one split"):
        load_hub_ner("x/y", "en", None)


@st.composite
def hub_datasets(draw):
    """A Hub-like dataset: tokens and tags as strings or ClassLabel ids. Noisy ones have empty rows or words,
    -1 ids ("unlabelled"), bad tags and sometimes one tag too many or too few."""
    noisy = draw(st.booleans())
    class_label = draw(st.booleans())
    extra_names = st.lists(st.sampled_from([*CONLL_NER_LABELS, "B-DATE", "PER"]), min_size=1, unique=True)
    hub_names = draw(st.permutations(CONLL_NER_LABELS) | extra_names) if noisy else CONLL_NER_LABELS
    if class_label:
        tag = st.sampled_from(list(range(len(hub_names))) + ([-1] if noisy else []))
    else:
        tag = FUZZ_TAG if noisy else st.sampled_from(CONLL_NER_LABELS)
    word = st.one_of(words_strategy, st.text(max_size=3)) if noisy else words_strategy
    tokens, tags = [], []
    for _ in range(draw(st.integers(0 if noisy else 1, 5))):
        words = draw(st.lists(word, min_size=0 if noisy else 1, max_size=5))
        length = len(words) + (draw(st.sampled_from([-1, 0, 0, 0, 1])) if words and noisy else 0)
        tokens.append(words)
        tags.append([draw(tag) for _ in range(length)])
    inner = datasets.ClassLabel(names=hub_names) if class_label else datasets.Value("string")
    features = datasets.Features(
        {"tokens": datasets.Sequence(datasets.Value("string")), "ner_tags": datasets.Sequence(inner)}
    )
    return datasets.Dataset.from_dict({"tokens": tokens, "ner_tags": tags}, features=features)


@given(hub_datasets(), st.sampled_from(["auto", "iob1", "iob2"]))
def test_fuzz_load_hub_ner(fake_hub, dataset, tag_scheme):
    fake_hub["dataset"] = dataset
    try:
        loaded = load_hub_ner("x/y", "xx", "train", tag_scheme=tag_scheme)
    except DataFormatError as error:
        assert "'x/y'" in str(error)
        event("DataFormatError")
        return
    event("read")
    assert_consistent(loaded, None, tag_scheme, source_words=False)
    assert loaded["tokens"] == [words for words in dataset["tokens"] if words]


# --- the real CoNLL-2002/2003 files ---------------------------------------------------------------------

REAL_FILES = {
    "conll2002/esp.train": ("es", 8323, 264715),
    "conll2002/esp.testa": ("es", 1915, 52923),
    "conll2002/esp.testb": ("es", 1517, 51533),
    "conll2002/ned.train": ("nl", 15806, 202644),
    "conll2002/ned.testa": ("nl", 2895, 37687),
    "conll2002/ned.testb": ("nl", 5195, 68875),
    "conll2003/eng.train": ("en", 14041, 203621),
    "conll2003/eng.testa": ("en", 3250, 51362),
    "conll2003/eng.testb": ("en", 3453, 46435),
    "conll2003/deu.train": ("de", 12153, 206931),
    "conll2003/deu.testa": ("de", 2867, 51444),
    "conll2003/deu.testb": ("de", 3005, 51943),
}


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_conll_files(shared_dir, name):
    language, sentences, tokens = REAL_FILES[name]
    start = time.perf_counter()
    dataset = read_conll(shared_dir / "data" / name, language)
    assert time.perf_counter() - start < 20
    assert len(dataset) == sentences
    assert sum(map(len, dataset["tokens"])) == tokens
    assert set(dataset["language"]) == {language}
    tags = names_of(dataset)
    assert not any(starts_chunk_with_inside(row) for row in tags)
    assert {tag for row in tags for tag in row} == set(CONLL_NER_LABELS)
    split = {"train": "train", "testa": "validation", "testb": "test"}[name.rsplit(".", 1)[1]]
    assert conll_file_path(shared_dir / "data", language, split) == shared_dir / "data" / name
