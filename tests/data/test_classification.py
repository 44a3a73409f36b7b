"""Tests of `modeling_manmoe.data.classification`: the Webis-CLS-10 review reader, file lookup and the loader of
users' own sentence-classification files and Hub datasets."""

from __future__ import annotations

import gzip
import json
import logging
import re
import time
from xml.sax.saxutils import escape

import datasets
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from modeling_manmoe.data import (
    SENTIMENT_LABELS,
    WEBIS_DOMAINS,
    WEBIS_LANGUAGE_FOLDERS,
    classification_features,
    files,
    load_text_classification,
    read_webis_reviews,
    webis_file_path,
)
from modeling_manmoe.errors import DataFormatError, LanguageError

datasets.disable_progress_bars()

DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'


def write(tmp_path, content: str | bytes, name: str = "train.review", compress: bool = False):
    data = content.encode("utf-8") if isinstance(content, str) else content
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def item(rating="4.0", summary="Great", text="I liked it.", category="books", **extra) -> str:
    """One `<item>` in the layout of the English files; a field given as None is left out."""
    fields = {"summary": summary, "rating": rating, "text": text, "category": category, **extra}
    body = "".join(f"\n\t<{name}>{value}</{name}>" for name, value in fields.items() if value is not None)
    return f"<item>{body}\n\t</item>\n"


def document(*items: str, newline: str = "\n", declaration: str = DECLARATION) -> str:
    return (declaration + "<items>" + "".join(items) + "</items>\n").replace("\n", newline)


def read_error(path, language: str = "en") -> str:
    """The message of the DataFormatError `read_webis_reviews` raises; it must name the file."""
    with pytest.raises(DataFormatError) as info:
        read_webis_reviews(path, language)
    message = str(info.value)
    assert str(path) in message
    return message


# --- read_webis_reviews: layout -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "compress"),
    [("train.review", False), ("train.review.gz", True), ("gzip-without-suffix.review", True)],
)
def test_reads_plain_and_gzip_files(tmp_path, name, compress):
    path = write(tmp_path, document(item("1.0", "Bad", "Dull."), item("5.0", "Good", "Fun.")), name, compress)
    dataset = read_webis_reviews(path, "en")
    assert dataset.column_names == ["text", "label", "language", "rating"]
    assert dataset["text"] == ["Bad\nDull.", "Good\nFun."]
    assert dataset["label"] == [0, 1]
    assert dataset["language"] == ["en", "en"]
    assert dataset["rating"] == [1.0, 5.0]


def test_features():
    features = classification_features(SENTIMENT_LABELS)
    assert list(features) == ["text", "label", "language"]
    assert features["label"] == datasets.ClassLabel(names=["negative", "positive"])
    assert features["text"] == features["language"] == datasets.Value("string")


def test_reader_features(tmp_path):
    features = read_webis_reviews(write(tmp_path, document(item())), "de").features
    assert features["label"].names == SENTIMENT_LABELS
    assert features["rating"] == datasets.Value("float32")


@pytest.mark.parametrize(
    ("rating", "label"),
    [("1.0", 0), ("2.0", 0), ("3.0", 0), ("3", 0), ("3.5", 1), ("4.0", 1), ("5.0", 1), (" 4.0\n", 1), ("1e0", 0)],
)
def test_label_is_positive_above_three(tmp_path, rating, label):
    dataset = read_webis_reviews(write(tmp_path, document(item(rating))), "en")
    assert dataset["label"] == [label]
    assert dataset["rating"] == [float(rating)]


@pytest.mark.parametrize(
    ("summary", "text", "expected"),
    [
        ("\n  Great  \n", "\n Fun to read. \n", "Great\nFun to read."),
        ("Great", "", "Great"),
        ("Great", None, "Great"),
        (" ", "Fun to read.", "Fun to read."),
        (None, "Fun to read.", "Fun to read."),
        ("Line 1\nline 2", "a\n\nb", "Line 1\nline 2\na\n\nb"),
    ],
)
def test_text_is_summary_and_text_stripped(tmp_path, summary, text, expected):
    dataset = read_webis_reviews(write(tmp_path, document(item(summary=summary, text=text))), "en")
    assert dataset["text"] == [expected]


def test_entities_and_numeric_character_references(tmp_path):
    text = "Tom &amp; Jerry &lt;3 &gt; &quot;x&quot; &apos;y&apos; caf&#233; &#x4E2D;&#25991; <![CDATA[a & <b>]]>"
    dataset = read_webis_reviews(write(tmp_path, document(item(summary="R&amp;B", text=text))), "en")
    assert dataset["text"] == ["R&B\nTom & Jerry <3 > \"x\" 'y' café 中文 a & <b>"]


def test_entities_escaped_twice_are_kept_as_written(tmp_path):
    """The corpus holds HTML entities escaped a second time: `&amp;quot;` in the file is `&quot;` in the text."""
    dataset = read_webis_reviews(write(tmp_path, document(item(text="a &amp;quot;b&amp;quot; &amp;amp; c"))), "en")
    assert dataset["text"] == ["Great\na &quot;b&quot; &amp; c"]


def test_crlf_line_endings(tmp_path):
    path = write(tmp_path, document(item(text="line 1\nline 2"), item("2.0"), newline="\r\n"))
    dataset = read_webis_reviews(path, "en")
    assert dataset["text"] == ["Great\nline 1\nline 2", "Great\nI liked it."]
    assert not any("\r" in text for text in dataset["text"])


def test_child_order_varies_and_other_fields_are_ignored(tmp_path):
    """The Japanese, German and French items: more fields, in another order, some with children of their own."""
    japanese = (
        "<item><category>本</category><rating>2.0</rating><asin>4048680609</asin>"
        "<url>http://www.amazon.co.jp/product-reviews/4048680609/</url><text>あずまんが10周年記念で出た。\n 前半は資料。</text>"
        "<title>大阪万博</title><summary>これはトリビュート漫画</summary><date>2009/1/4</date>"
        "<helpfulness_votes><value>1</value><value>3</value></helpfulness_votes><badges><value>REAL NAME</value>"
        "</badges></item>\n"
    )
    dataset = read_webis_reviews(write(tmp_path, document(japanese, item("5.0"))), "ja")
    assert dataset["text"] == [
        "これはトリビュート漫画\nあずまんが10周年記念で出た。\n 前半は資料。",
        "Great\nI liked it.",
    ]
    assert dataset["label"] == [0, 1]
    assert dataset["language"] == ["ja", "ja"]


@pytest.mark.parametrize("prefix", ["", "\ufeff", "\n\n", "<!-- a comment -->\n"])
def test_declaration_bom_and_comments_are_optional(tmp_path, prefix):
    path = write(tmp_path, prefix + document(item(), declaration=""))
    assert read_webis_reviews(path, "en")["text"] == ["Great\nI liked it."]


def test_other_declared_encodings_are_decoded(tmp_path):
    latin1 = document(item(text="Müller"), declaration='<?xml version="1.0" encoding="ISO-8859-1"?>\n')
    assert read_webis_reviews(write(tmp_path, latin1.encode("latin-1")), "de")["text"] == ["Great\nMüller"]
    utf16 = write(tmp_path, document(item(text="東京")).replace("utf-8", "utf-16").encode("utf-16"))
    assert read_webis_reviews(utf16, "ja")["text"] == ["Great\n東京"]


# --- read_webis_reviews: errors -----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.review"):
        read_webis_reviews(tmp_path / "nowhere.review", "en")


@pytest.mark.parametrize(("content", "compress"), [("", False), ("  \n\r\n", False), ("", True)])
def test_empty_file(tmp_path, content, compress):
    message = read_error(write(tmp_path, content, "empty.review.gz" if compress else "empty.review", compress))
    assert ": empty file; expected a Webis review document <items><item>" in message


@pytest.mark.parametrize("content", ["hello world", "Peter B-PER\n", '{"text": "a"}', "<items"])
def test_not_xml_gives_expat_line_and_column(tmp_path, content):
    message = read_error(write(tmp_path, content))
    assert re.search(r"train\.review:1: malformed XML \(expat: .*: line 1, column \d+\)", message), message


def test_malformed_xml_names_the_line_column_and_item(tmp_path):
    broken = "<item>\n<rating>2.0</rating>\n<text>unclosed</item>\n"
    message = read_error(write(tmp_path, document(item(), broken)))
    assert "train.review:10: malformed XML in item 2 (starting at line 8)" in message
    assert "(expat: mismatched tag: line 10, column 16)" in message


def test_undefined_entity(tmp_path):
    message = read_error(write(tmp_path, document(item(text="a&nbsp;b"))))
    assert (
        "train.review:5: malformed XML in item 1 (starting at line 2) (expat: undefined entity: line 5, column 8)"
        in message
    )


@pytest.mark.parametrize(
    "declaration",
    [
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>',
        '<!DOCTYPE items [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE items SYSTEM "http://example.com/items.dtd">',
        "<!DOCTYPE items>",
    ],
)
def test_dtd_and_entity_declarations_are_refused(tmp_path, declaration):
    content = DECLARATION + declaration + "\n" + document(item(text="&lol2;"), declaration="")
    message = read_error(write(tmp_path, content))
    assert "train.review:2: the document declares a DTD (<!DOCTYPE" in message
    assert "refused: DTDs and entity declarations are not allowed" in message


def test_entity_declaration_outside_a_doctype_is_refused(tmp_path):
    message = read_error(write(tmp_path, DECLARATION + '<!ENTITY a "b">\n' + document(item(), declaration="")))
    assert "train.review:2: the document declares an entity or DTD outside a DOCTYPE (expat: syntax error" in message


@pytest.mark.parametrize("content", ["<items></items>", "<items/>", "<items>\n  \n</items>", DECLARATION + "<items/>"])
def test_document_without_items(tmp_path, content):
    assert ": no <item> elements; expected a Webis review document" in read_error(write(tmp_path, content))


def test_wrong_root_and_other_elements_inside_items(tmp_path):
    assert "train.review:1: root element <reviews>" in read_error(write(tmp_path, "<reviews><item/></reviews>"))
    message = read_error(write(tmp_path, document(item(), "<review>\n</review>\n")))
    assert "train.review:8: element <review> inside <items>; expected only <item> elements" in message


def test_item_without_rating(tmp_path):
    message = read_error(write(tmp_path, document(item(), item(rating=None))))
    assert "train.review:8: item 2: no <rating>; expected a rating from 1.0 to 5.0" in message


@pytest.mark.parametrize("rating", ["", "five", "4,0", "nan", "inf", "4.0 stars", "٤", "0x4"])
def test_rating_that_is_not_a_number(tmp_path, rating):
    message = read_error(write(tmp_path, document(item(), item(), item(rating))))
    assert f"train.review:14: item 3: <rating> {rating.strip()!r} (line 16) is not a number" in message


@pytest.mark.parametrize("rating", ["0", "0.5", "5.5", "-4", "10", "1e400"])
def test_rating_outside_one_to_five(tmp_path, rating):
    message = read_error(write(tmp_path, document(item(rating))))
    assert f"train.review:2: item 1: <rating> {rating!r} (line 4) is outside 1 to 5" in message


@pytest.mark.parametrize(("summary", "text"), [("", ""), (None, None), (" \n ", None), (None, "&#32;&#10;")])
def test_item_without_summary_and_text(tmp_path, summary, text):
    message = read_error(write(tmp_path, document(item(summary=summary, text=text))))
    assert "train.review:2: item 1: neither <summary> nor <text> holds text; expected at least one of them" in message


def test_item_with_two_ratings(tmp_path):
    message = read_error(write(tmp_path, document(item().replace("<text>", "<rating>1</rating><text>"))))
    assert "train.review:2: item 1: a second <rating> at line 5 (the first at line 4); expected one" in message


def test_element_inside_a_text_field(tmp_path):
    message = read_error(write(tmp_path, document(item(text="line 1<br/>line 2"))))
    assert "train.review:2: item 1: element <br> inside <text> at line 5; expected text only" in message


def test_stray_text_is_not_dropped(tmp_path):
    message = read_error(write(tmp_path, document(item().replace("<item>", "<item>oops"))))
    assert "train.review:2: item 1: text 'oops' at line 2, outside the item's fields" in message
    message = read_error(write(tmp_path, document(item(), "a lost review\n")))
    assert "train.review:8: text 'a lost review' inside <items>, outside any <item>" in message


def test_not_utf8_names_the_line_and_byte(tmp_path):
    path = write(tmp_path, document(item(text="M\xfcller")).encode("latin-1"))
    message = read_error(path)
    assert (
        "train.review:5: malformed XML in item 1 (starting at line 2) (expat: not well-formed (invalid token)"
        in message
    )
    assert "the file is not valid UTF-8 (byte offset 109)" in message


def test_byte_order_marks_inside_texts_are_removed_with_a_warning(tmp_path, caplog):
    """Two review files joined together leave a BOM inside a text: removed, never left inside a word."""
    content = document(item(summary="\ufeffGreat", text="I liked\ufeff it."), item(), item(text="Fine\ufeff"))
    path = write(tmp_path, "\ufeff" + content)
    with caplog.at_level(logging.WARNING, logger="modeling_manmoe.data.classification"):
        dataset = read_webis_reviews(path, "en")
    assert dataset["text"] == ["Great\nI liked it.", "Great\nI liked it.", "Great\nFine"]
    message = " ".join(record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)
    assert f"{path}: byte-order marks (U+FEFF) inside the texts of 2 item(s)" in message
    assert "removed: item 1 (line 2), item 3 (line 14)" in message


def test_size_and_line_limits(tmp_path, monkeypatch):
    """The limits every reader shares (`modeling_manmoe.data.files`): a gzip file that decompresses beyond
    `MAX_DATA_BYTES`, a line longer than `MAX_LINE_BYTES`."""
    path = write(tmp_path, document(*[item()] * 2000), "bomb.review.gz", compress=True)
    monkeypatch.setattr(files, "MAX_DATA_BYTES", 10_000)
    assert "decompresses to more than 10000 bytes, the limit of a data file" in read_error(path)
    monkeypatch.setattr(files, "MAX_DATA_BYTES", 2**30)
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 100)
    long_line = write(tmp_path, document(item(), item(text="x" * 100)), "long.review")
    assert ":11: a line of 114 bytes, longer than the limit of 100 bytes per line" in read_error(long_line)
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 114)
    assert read_webis_reviews(long_line, "en")["text"][1] == "Great\n" + "x" * 100


def test_binary_file(tmp_path):
    message = read_error(write(tmp_path, b"PK\x03\x04\x00\x00<items>", "model.bin"))
    assert "model.bin: looks like a binary file (it contains NUL bytes), expected XML text" in message


@pytest.mark.parametrize("cut", [10, -5])
def test_truncated_gzip(tmp_path, cut):
    data = gzip.compress(document(*[item()] * 20).encode())[:cut]
    message = read_error(write(tmp_path, data, "train.review.gz"))
    assert "train.review.gz: truncated or corrupt gzip data (" in message


def test_gz_suffix_without_gzip_data(tmp_path):
    message = read_error(write(tmp_path, document(item()), "train.review.gz"))
    assert "train.review.gz: truncated or corrupt gzip data (Not a gzipped file" in message


def test_bad_language(tmp_path):
    with pytest.raises(LanguageError, match="language"):
        read_webis_reviews(write(tmp_path, document(item())), "")


# --- webis_file_path ----------------------------------------------------------------------------------------


def test_webis_file_path_gz_plain_subfolder_and_japanese(tmp_path):
    (tmp_path / "en" / "books").mkdir(parents=True)
    (tmp_path / "webis-cls-10" / "jp" / "music").mkdir(parents=True)
    gz = write(tmp_path / "en" / "books", b"", "train.review.gz")
    plain = write(tmp_path / "en" / "books", b"", "test.review")
    japanese = write(tmp_path / "webis-cls-10" / "jp" / "music", b"", "test.review.gz")
    assert webis_file_path(tmp_path, "en", "books", "train") == gz
    assert webis_file_path(str(tmp_path), "en", "books", "test") == plain
    assert webis_file_path(tmp_path, "ja", "music", "test") == japanese
    write(tmp_path / "en" / "books", b"", "train.review")
    assert webis_file_path(tmp_path, "en", "books", "train") == gz  # .gz first


def test_webis_file_path_errors(tmp_path):
    with pytest.raises(LanguageError, match=r"language 'jp' is not a Webis-CLS-10 language; .*language code 'ja'"):
        webis_file_path(tmp_path, "jp", "books", "train")
    with pytest.raises(LanguageError, match=r"'es'.*known: \['de', 'en', 'fr', 'ja'\]"):
        webis_file_path(tmp_path, "es", "books", "train")
    with pytest.raises(ValueError, match=r"domain 'kitchen'; expected one of \['books', 'dvd', 'music'\]"):
        webis_file_path(tmp_path, "en", "kitchen", "train")
    with pytest.raises(ValueError, match=r"split 'validation'; expected one of \['train', 'test'\]"):
        webis_file_path(tmp_path, "en", "books", "validation")


def test_webis_file_path_lists_the_paths_tried(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"'ja', domain 'dvd', split 'test'; tried: .*jp/dvd/test\.review\.gz"
    ) as info:
        webis_file_path(tmp_path, "ja", "dvd", "test")
    message = str(info.value)
    assert message.count("test.review") == 4 and "webis-cls-10/jp/dvd/test.review" in message


# --- load_text_classification: files ------------------------------------------------------------------------


@pytest.fixture
def load(tmp_path):
    """`load_text_classification` with the `datasets` cache under tmp_path."""

    def load(path, language="en", **kwargs):
        return load_text_classification(path, language, cache_dir=str(tmp_path / "cache"), **kwargs)

    return load


ROWS = [
    {"text": "great film", "label": "pos"},
    {"text": "NA", "label": "neg"},
    {"text": "boring, long", "label": "neg"},
]


def as_csv(rows, separator=",") -> str:
    lines = [separator.join(rows[0])] + [separator.join(json.dumps(v) for v in row.values()) for row in rows]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("data.csv", as_csv(ROWS)),
        ("data.tsv", as_csv(ROWS, "\t")),
        ("data.json", json.dumps(ROWS)),
        ("data.jsonl", "\n".join(map(json.dumps, ROWS)) + "\n"),
        ("data.csv.gz", as_csv(ROWS)),
    ],
)
def test_loads_csv_tsv_json_and_jsonl_files(tmp_path, load, name, content):
    path = write(tmp_path, content, name, compress=name.endswith(".gz"))
    dataset = load(path, "fr")
    assert dataset.column_names == ["text", "label", "language"]
    assert dataset.features == classification_features(["neg", "pos"])  # sorted distinct string labels
    assert dataset["text"] == ["great film", "NA", "boring, long"]  # "NA" is a text, not a null
    assert dataset["label"] == [1, 0, 0]
    assert dataset["language"] == ["fr"] * 3
    assert load(str(path), "fr")["label"] == [1, 0, 0]


def test_label_names_custom_columns_and_extra_columns(tmp_path, load):
    rows = [{"id": 1, "review": "good", "stars": "pos"}, {"id": 2, "review": "bad", "stars": "neg"}]
    path = write(tmp_path, "\n".join(map(json.dumps, rows)), "data.jsonl")
    dataset = load(path, text_column="review", label_column="stars", label_names=["pos", "neg", "neutral"])
    assert dataset.column_names == ["text", "label", "language"]
    assert dataset.features["label"].names == ["pos", "neg", "neutral"]
    assert dataset["label"] == [0, 1]


def test_integer_labels(tmp_path, load):
    path = write(tmp_path, "text,label\na,2\nb,0\nc,2\n", "data.csv")
    dataset = load(path)
    assert dataset.features["label"].names == ["LABEL_0", "LABEL_1", "LABEL_2"]
    assert dataset["label"] == [2, 0, 2]
    dataset = load(path, label_names=["negative", "neutral", "positive"])
    assert dataset.features["label"].names == ["negative", "neutral", "positive"]
    assert dataset["label"] == [2, 0, 2]
    with pytest.raises(DataFormatError, match=r"data\.csv, row 0: label id 2 is outside the 2 label names"):
        load(path, label_names=SENTIMENT_LABELS)


def test_missing_data_file_and_unsupported_type(tmp_path, load):
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load(tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        load(tmp_path / "missing.parquet")
    with pytest.raises(DataFormatError, match=r"train\.review: unsupported data file type; expected \.csv"):
        load(write(tmp_path, document(item())))


@pytest.mark.parametrize("missing", ["text", "label"])
def test_missing_column_lists_the_columns(tmp_path, load, missing):
    rows = [{key: value for key, value in row.items() if key != missing} | {"id": i} for i, row in enumerate(ROWS)]
    path = write(tmp_path, json.dumps(rows), "data.json")
    other = {"text": "label", "label": "text"}[missing]
    expected = rf"data\.json has no column '{missing}' \({missing}_column\); columns: \['{other}', 'id'\]"
    with pytest.raises(DataFormatError, match=expected):
        load(path)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([{"text": "a", "label": "x"}, {"text": "", "label": "x"}], r"row 1: empty text '' in column 'text'"),
        ([{"text": "a", "label": "x"}, {"text": " \n", "label": "x"}], r"row 1: empty text ' \\n' in column 'text'"),
        ([{"text": None, "label": "x"}], r"row 0: text None \(NoneType\) in column 'text'; expected a non-empty"),
        ([{"text": 3, "label": "x"}, {"text": 4, "label": "y"}], r"row 0: text 3 \(int\) in column 'text'"),
        ([{"text": "a", "label": "x"}, {"text": "b", "label": None}], r"row 1: empty or missing label None"),
        ([{"text": "a", "label": "x"}, {"text": "b", "label": ""}], r"row 1: empty or missing label ''"),
        ([{"text": "a", "label": 1}, {"text": "b", "label": -1}], r"row 1: label -1; expected an integer label id"),
        ([{"text": "a", "label": 0.5}], r"column 'label' has type Value\('float64'\); expected label names"),
        ([{"text": "a", "label": True}], r"column 'label' has type Value\('bool'\)"),
    ],
)
def test_bad_rows_name_the_file_and_row(tmp_path, load, rows, expected):
    path = write(tmp_path, "\n".join(map(json.dumps, rows)), "data.jsonl")
    with pytest.raises(DataFormatError, match=re.escape(str(path)) + ".*" + expected):
        load(path)


def test_label_not_in_label_names(tmp_path, load):
    path = write(tmp_path, as_csv(ROWS), "data.csv")
    with pytest.raises(DataFormatError, match=r"data\.csv, row 1: label 'neg' is not one of the label names \['pos'"):
        load(path, label_names=["pos", "neutral"])


def test_bad_label_names_and_language(tmp_path, load):
    path = write(tmp_path, as_csv(ROWS), "data.csv")
    with pytest.raises(DataFormatError, match="label_names must be a non-empty list of distinct strings"):
        load(path, label_names=["pos", "pos"])
    with pytest.raises(LanguageError, match="language"):
        load(path, language=None)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("data.csv", "\n", r"data\.csv: cannot be read as a CSV file \(EmptyDataError: No columns to parse"),
        ("data.csv", 'text,label\n"unterminated,pos\n', r"cannot be read as a CSV file \(ParserError: "),
        ("data.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"\n', r"cannot be read as a JSONL file \(ArrowInvalid"),
        ("data.json", "[1, 2", r"data\.json: cannot be read as a JSON file"),
    ],
)
def test_files_datasets_cannot_parse(tmp_path, load, name, content, expected):
    with pytest.raises(DataFormatError, match=expected):
        load(write(tmp_path, content, name))


@pytest.mark.parametrize(
    ("name", "content", "compress", "expected"),
    [
        ("data.csv", "", False, "empty file"),
        ("data.csv", "text,label\n", False, "no rows"),
        ("data.json", "[]", False, "no rows"),
        ("data.jsonl.gz", "", True, "no rows"),
    ],
)
def test_file_without_rows(tmp_path, load, name, content, compress, expected):
    path = write(tmp_path, content, name, compress)
    with pytest.raises(DataFormatError, match=re.escape(f"{path}: {expected}; expected rows with a text and a label")):
        load(path)


# --- load_text_classification: Hub datasets -----------------------------------------------------------------


@pytest.fixture
def fake_hub(monkeypatch):
    """Make `datasets.load_dataset` return `calls["dataset"]` and record its arguments."""
    calls = {}

    def load_dataset(path, *args, **kwargs):
        calls["args"] = (path, args, kwargs)
        return calls["dataset"]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_hub_dataset_with_a_class_label_column(fake_hub):
    hub_names = ["neg", "pos"]
    fake_hub["dataset"] = datasets.Dataset.from_dict(
        {"sentence": ["good", "bad"], "label": [1, 0], "idx": [0, 1]},
        features=datasets.Features(
            {
                "sentence": datasets.Value("string"),
                "label": datasets.ClassLabel(names=hub_names),
                "idx": datasets.Value("int32"),
            }
        ),
    )
    dataset = load_text_classification("someone/sst", "en", split="validation", text_column="sentence", name="default")
    assert fake_hub["args"] == ("someone/sst", (), {"split": "validation", "name": "default"})
    assert dataset.column_names == ["text", "label", "language"]
    assert dataset.features["label"].names == hub_names
    assert dataset["text"] == ["good", "bad"] and dataset["label"] == [1, 0]
    remapped = load_text_classification("someone/sst", "en", text_column="sentence", label_names=["pos", "neg", "x"])
    assert remapped["label"] == [0, 1]
    assert fake_hub["args"] == ("someone/sst", (), {"split": "train"})


def test_hub_dataset_errors(fake_hub):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])})
    fake_hub["dataset"] = datasets.Dataset.from_dict({"text": ["x", "y"], "label": [0, -1]}, features=features)
    with pytest.raises(DataFormatError, match=r"dataset 'x/y' \(split 'train'\), row 1: label id -1 is not an id of"):
        load_text_classification("x/y", "en")
    fake_hub["dataset"] = datasets.Dataset.from_dict({"text": ["x"], "label": [1]}, features=features)
    with pytest.raises(DataFormatError, match=r"dataset 'x/y' \(config 'fr', split 'test'\), row 0: label 'b' is not"):
        load_text_classification("x/y", "en", split="test", name="fr", label_names=["a"])
    fake_hub["dataset"] = datasets.DatasetDict({"train": fake_hub["dataset"]})
    with pytest.raises(DataFormatError, match=r"'x/y'.*expected one split \(a Dataset\), got DatasetDict"):
        load_text_classification("x/y", "en", split=None)
    fake_hub["dataset"] = datasets.Dataset.from_dict({"sentence": ["x"], "label": ["a"]})
    with pytest.raises(
        DataFormatError,
        match=r"dataset 'x/y' \(split 'train'\) has no column 'text' \(text_column\); columns: \['sentence', 'label'\]",
    ):
        load_text_classification("x/y", "en")


# --- fuzzing: whatever the file holds, only DataFormatError escapes and what is read is correct -------------
# The Hypothesis profile (tests/conftest.py) sets the number of examples: `HYPOTHESIS_PROFILE=fuzz` runs 2,000.


def xml_char(character: str) -> bool:
    """Characters XML 1.0 allows (carriage returns left out: a parser turns them into line feeds)."""
    code = ord(character)
    return code in (0x9, 0xA) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000


FUZZ_TEXT = st.text(
    st.one_of(
        st.characters(exclude_categories=("Cs", "Cc", "Cn")).filter(xml_char),
        st.sampled_from("日本語のレビュー&<>\"' \n\t\x85\u2028\u3000\ufeff"),
    ),
    max_size=30,
)
VALID_RATINGS = ["1.0", "2.0", "3.0", "4.0", "5.0", "1", "5", "2.5", "3.5", " 4.0 ", "\n5.0\n", "4e0", "+2.0", ".3e1"]
BAD_RATINGS = ["", " ", "0", "5.5", "-1", "x", "nan", "inf", "4,0", "1e400", "4.0.0", "&#52;.0x"]
OTHER_FIELDS = {
    "category": "books",
    "asin": "4048680609",
    "url": "http://www.amazon.co.jp/product-reviews/4048680609/?a=1&amp;b=2",
    "title": "大阪万博",
    "date": "2009/1/4",
    "helpfulness_votes": "<value>1</value><value>3</value>",
    "badges": "",
}


def encode_text(text: str, draw) -> str:
    """`text` as XML character data: escaped, maybe with numeric character references or in a CDATA section."""
    how = draw(st.sampled_from(["escape", "escape", "references", "cdata"]))
    if how == "cdata" and "]]>" not in text:
        return f"<![CDATA[{text}]]>"
    escaped = escape(text, {'"': "&quot;", "'": "&apos;"} if draw(st.booleans()) else {})
    return escaped.encode("ascii", "xmlcharrefreplace").decode("ascii") if how == "references" else escaped


def without_marks(text: str | None) -> str:
    """A summary or text as the reader returns it: byte-order marks (U+FEFF) removed."""
    return (text or "").replace("\ufeff", "")


@st.composite
def review_items(draw, noisy: bool):
    """(XML of one item, expected (text, label, rating) or the error it must raise, as a string)."""
    fields, error = {}, None
    summary, text = draw(st.one_of(st.none(), FUZZ_TEXT)), draw(st.one_of(st.none(), FUZZ_TEXT))
    if not noisy and not without_marks(summary).strip() and not without_marks(text).strip():
        text = (text or "") + "fine"
    for name, value in (("summary", summary), ("text", text)):
        if value is not None:
            fields[name] = encode_text(value, draw)
    rating = draw(st.sampled_from(VALID_RATINGS + (BAD_RATINGS + [None] if noisy else [])))
    if rating is not None:
        fields["rating"] = rating
    for name in draw(st.lists(st.sampled_from(sorted(OTHER_FIELDS)), unique=True, max_size=4)):
        fields[name] = OTHER_FIELDS[name]
    order = draw(st.permutations(sorted(fields)))
    parts = [f"<{name}>{fields[name]}</{name}>" for name in order]
    if noisy and draw(st.integers(0, 4)) == 0:
        mistake = draw(st.sampled_from(["duplicate", "element", "stray"]))
        if mistake == "duplicate" and (named := [n for n in order if n in ("summary", "text", "rating")]):
            parts.append(f"<{named[0]}>{fields[named[0]]}</{named[0]}>")
            error = "a second"
        elif mistake == "element" and "text" in fields:
            parts[order.index("text")] = f"<text>a<br/>{fields['text']}</text>"
            error = "inside <text>"
        elif mistake == "stray":
            parts.insert(draw(st.integers(0, len(parts))), "stray words")
            error = "outside the item's fields"
    separator = draw(st.sampled_from(["", "\n", "\n\t"]))
    xml = "<item>" + separator + separator.join(parts) + separator + "</item>"
    if error is None and rating is None:
        error = "no <rating>"
    elif error is None and rating in BAD_RATINGS:
        error = "outside 1 to 5" if rating.strip() in ("0", "5.5", "-1", "1e400") else "is not a number"
    elif error is None and not without_marks(summary).strip() and not without_marks(text).strip():
        error = "neither <summary> nor <text>"
    if error is not None:
        return xml, error
    summary, text = without_marks(summary).strip(), without_marks(text).strip()
    joined = f"{summary}\n{text}" if summary and text else summary or text
    return xml, (joined, int(float(rating) > 3), float(rating))


def contain(data: bytes, draw, noisy: bool) -> tuple[bytes, str, bool]:
    """Store `data` plain or gzipped (named .gz or not), or if `noisy` maybe as a truncated gzip or plain under a
    .gz name. Returns the bytes, the file name and whether the file still holds `data` intact."""
    containers = ["plain", "plain", "gzip", "gzip.gz"] + (["truncated", "plain.gz"] if noisy else [])
    container = draw(st.sampled_from(containers))
    if container in ("gzip", "gzip.gz", "truncated"):
        data = gzip.compress(data)
    if container == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    name = "fuzz.review.gz" if container.endswith(".gz") or container == "truncated" else "fuzz.review"
    return data, name, container in ("plain", "gzip", "gzip.gz")


@st.composite
def review_like_files(draw):
    """(file name, bytes, expected): well-formed review documents with random items (fields in any order, other
    fields, entities, character references, CDATA, CRLF, BOM, gzip). Noisy ones also hold bad items (no or bad
    rating, no text, a field twice, an element in a text, stray text), and may be cut or damaged afterwards.
    `expected` is the rows when the file is valid, the error of its first bad item, or None when unknown."""
    noisy = draw(st.booleans())
    items = draw(st.lists(review_items(noisy), min_size=0 if noisy else 1, max_size=6))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    body = newline.join(xml.replace("\n", newline) for xml, _ in items)
    prefix = draw(st.sampled_from(["", "\ufeff", DECLARATION.replace("\n", newline), "<!-- Webis -->" + newline]))
    text = prefix + "<items>" + newline + body + newline + "</items>" + draw(st.sampled_from(["", newline]))
    errors = [result for _, result in items if isinstance(result, str)]
    expected = errors[0] if errors else [result for _, result in items] or "no <item> elements"
    data = text.encode("utf-8")
    if noisy and draw(st.integers(0, 3)) == 0:
        damage = draw(st.sampled_from(["cut", "byte", "doctype"]))
        position = draw(st.integers(0, len(data)))
        if damage == "cut":
            data = data[:position]
        elif damage == "byte":
            data = data[:position] + bytes([draw(st.integers(0, 255))]) + data[position:]
        else:
            data = b'<!DOCTYPE items [<!ENTITY a "b">]>\n' + data
            expected = "declares a DTD"
        if damage != "doctype":
            expected = None
    data, name, intact = contain(data, draw, noisy)
    return name, data, expected if intact else None


def read_or_format_error(path):
    """`read_webis_reviews(path, "xx")`, or the message of the DataFormatError it raises (which names the file)."""
    try:
        dataset = read_webis_reviews(path, "xx")
    except DataFormatError as error:
        assert str(path) in str(error)
        event("DataFormatError")
        return str(error)
    event("read")
    assert dataset.column_names == ["text", "label", "language", "rating"]
    assert len(dataset) > 0 and set(dataset["language"]) == {"xx"}
    for text, label, rating in zip(dataset["text"], dataset["label"], dataset["rating"], strict=True):
        assert text and text == text.strip() and "\r" not in text and "\ufeff" not in text
        assert 1.0 <= rating <= 5.0 and label == int(rating > 3)
    return dataset


@given(review_like_files())
def test_fuzz_read_webis_reviews_of_review_like_files(tmp_path, file):
    name, data, expected = file
    result = read_or_format_error(write(tmp_path, data, name))
    if isinstance(expected, list):
        event("valid file")
        assert not isinstance(result, str), result
        assert list(zip(result["text"], result["label"], result["rating"], strict=True)) == expected
    elif isinstance(expected, str):
        assert isinstance(result, str) and expected in result, (expected, result)


FUZZ_PIECES = [
    "<items>", "</items>", "<item>", "</item>", "<rating>4.0</rating>", "<rating>2</rating>", "<rating>x</rating>",
    "<summary>Great</summary>", "<text>", "</text>", "Fun &amp; games", "&#233;", "&#0;", "&nbsp;", "<![CDATA[<b>]]>",
    "<category>本</category>", "<!DOCTYPE items>", '<!ENTITY a "b">', DECLARATION, "<!-- c -->", "<br/>", "\ufeff",
    " ", "\n", "\r\n", "\r", "\x00", "\x85", "\u2028", "レビュー", "&", "<", ">",
]  # fmt: skip


@st.composite
def arbitrary_files(draw):
    """(file name, bytes): random bytes, or random review-ish pieces in UTF-8 or latin-1, maybe gzipped."""
    if draw(st.booleans()):
        data = draw(st.binary(max_size=300))
    else:
        text = "".join(draw(st.lists(st.sampled_from(FUZZ_PIECES), max_size=60)))
        data = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"])), "replace")
    data, name, _ = contain(data, draw, noisy=True)
    return name, data


@given(arbitrary_files())
def test_fuzz_read_webis_reviews_of_arbitrary_bytes(tmp_path, file):
    name, data = file
    read_or_format_error(write(tmp_path, data, name))


@st.composite
def hub_datasets(draw):
    """A Hub-like dataset: texts (maybe empty, null or not strings) and labels as strings, integers or ClassLabel ids
    (maybe null, negative or out of range)."""
    noisy = draw(st.booleans())
    rows = draw(st.integers(0 if noisy else 1, 6))
    text = st.one_of(FUZZ_TEXT, st.just(None)) if noisy else FUZZ_TEXT.filter(str.strip)
    texts = draw(st.lists(text, min_size=rows, max_size=rows))
    kind = draw(st.sampled_from(["string", "int", "class_label"]))
    if kind == "string":
        label = st.sampled_from(["neg", "pos", "neutral"])
        label = st.one_of(label, st.text(max_size=3), st.none()) if noisy else label
        feature = datasets.Value("string")
    else:
        top = 2 if kind == "class_label" else 4  # a ClassLabel holds -1 ("no label") to 2
        label = st.one_of(st.integers(-1, top), st.none()) if noisy else st.integers(0, 1)
        feature = (
            datasets.ClassLabel(names=["neg", "pos", "neutral"]) if kind == "class_label" else datasets.Value("int64")
        )
    labels = draw(st.lists(label, min_size=rows, max_size=rows))
    features = datasets.Features({"text": datasets.Value("string"), "label": feature})
    return datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)


@given(hub_datasets(), st.sampled_from([None, ["neg", "pos"], ["pos", "neg", "neutral"]]))
def test_fuzz_load_text_classification_of_hub_datasets(fake_hub, dataset, label_names):
    fake_hub["dataset"] = dataset
    try:
        loaded = load_text_classification("x/y", "xx", label_names=label_names)
    except DataFormatError as error:
        assert "'x/y'" in str(error)
        event("DataFormatError")
        return
    event("read")
    assert loaded.column_names == ["text", "label", "language"]
    assert loaded["text"] == dataset["text"] and all(text.strip() for text in loaded["text"])
    names = loaded.features["label"].names
    feature = dataset.features["label"]
    if isinstance(feature, datasets.ClassLabel):
        assert [names[i] for i in loaded["label"]] == [feature.names[i] for i in dataset["label"]]
    elif feature.dtype == "string":
        assert [names[i] for i in loaded["label"]] == dataset["label"]
    else:
        assert loaded["label"] == dataset["label"]
    if label_names is not None:
        assert names == label_names


# --- the real Webis-CLS-10 files ----------------------------------------------------------------------------

REAL_FILES = [
    (lang, domain, split) for lang in WEBIS_LANGUAGE_FOLDERS for domain in WEBIS_DOMAINS for split in ("train", "test")
]


@pytest.mark.integration
@pytest.mark.parametrize(("language", "domain", "split"), REAL_FILES, ids=["/".join(file) for file in REAL_FILES])
def test_real_webis_files(shared_dir, language, domain, split):
    path = webis_file_path(shared_dir / "data" / "webis-cls-10", language, domain, split)
    assert (
        path == shared_dir / "data" / "webis-cls-10" / WEBIS_LANGUAGE_FOLDERS[language] / domain / f"{split}.review.gz"
    )
    start = time.perf_counter()
    dataset = read_webis_reviews(path, language)
    assert time.perf_counter() - start < 5
    assert len(dataset) == 2000
    assert dataset["label"].count(1) == dataset["label"].count(0) == 1000
    assert set(dataset["rating"]) == {1.0, 2.0, 4.0, 5.0}
    assert set(dataset["language"]) == {language}
    assert all(text and text == text.strip() for text in dataset["text"])
