"""Tests of `modeling_manmoe.data.conll`: CoNLL readers, file lookup and the Hub loader."""

from __future__ import annotations

import gzip
import logging
import time

import datasets
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeling_manmoe.data import (
    CONLL_NER_LABELS,
    conll_file_path,
    iob1_to_iob2,
    load_hub_ner,
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
    path = write(tmp_path, "Peter O\nM\xfcller B-PER\n".encode("latin-1"), "latin.txt")
    with caplog.at_level(logging.WARNING, logger="modeling_manmoe.data.conll"):
        dataset = read_conll(path, "de")
    assert dataset["tokens"] == [["Peter", "Müller"]]
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(path) in message and "latin-1" in message and "line 2" in message


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


def test_mixed_column_counts_are_allowed(tmp_path):
    dataset = read_conll(write(tmp_path, "EU NNP I-NP B-ORG\nrejects O\ncall NN I-NP X O\n"), "en")
    assert names_of(dataset) == [["B-ORG", "O", "O"]]


@pytest.mark.parametrize("tag", ["PER", "B-", "E-PER", "S-LOC", "b-per", "0", "B_PER"])
def test_non_iob_tag_names_file_line_and_tag(tmp_path, tag):
    path = write(tmp_path, f"EU B-ORG\n\nPeter O\nBlackburn {tag}\n", "tags.txt")
    expected = rf"tags\.txt:4: bad NER tag '{tag}'; expected 'O' or an IOB tag"
    with pytest.raises(DataFormatError, match=expected):
        read_conll(path, "en")


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


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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


def test_conll_file_path_unknown_language_and_split(tmp_path):
    with pytest.raises(LanguageError, match="'fr'"):
        conll_file_path(tmp_path, "fr", "train")
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
