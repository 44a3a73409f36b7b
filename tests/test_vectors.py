"""Tests of the MUSE / fastText `.vec` / `.vec.gz` reader (`modeling_manmoe.data.vectors`)."""

import gzip
import logging
import zlib

import numpy as np
import pytest
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

from modeling_manmoe.data import files
from modeling_manmoe.data.vectors import WordVectors, check_same_dimension, read_word_vectors
from modeling_manmoe.errors import LanguageError, VectorFileError


def write(path, text, compress=False):
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def read_error(path, **kwargs):
    """Read `path`, expecting a VectorFileError that names the file; return its message."""
    with pytest.raises(VectorFileError) as error:
        read_word_vectors(path, **kwargs)
    assert str(path) in str(error.value)
    return str(error.value)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("name", ["v.vec", "v.vec.gz", "v.txt"])
def test_reads_plain_and_gzip_by_magic_bytes(tmp_path, compress, name):
    path = write(tmp_path / name, "2 3\nhello 1 2 3\nwörld 0.5 0 -1e-2\n", compress)
    vectors = read_word_vectors(path)
    assert isinstance(vectors, WordVectors) and vectors.path == str(path)
    assert vectors.words == ["hello", "wörld"] and len(vectors) == 2 and vectors.dim == 3
    assert vectors.vectors.dtype == np.float32 and vectors.vectors.shape == (2, 3)
    assert vectors.vectors.tolist() == [[1, 2, 3], [0.5, 0, np.float32(-0.01)]]


def test_unicode_words_spaces_crlf_trailing_space_and_bom(tmp_path):
    text = "\ufeff5 2\r\nNew York 1 2 \r\na\xa0b 3 4\n東京 5 6\n😀 7 8\n\u3000 9 10"
    vectors = read_word_vectors(write(tmp_path / "u.vec", text, compress=True))
    assert vectors.words == ["New York", "a\xa0b", "東京", "😀", "\u3000"]
    assert vectors.vectors[:, 0].tolist() == [1, 3, 5, 7, 9]


@pytest.mark.parametrize("text", ["", "\n", "hello 1 2 3\n", "2\nhello 1 2\n", "0 3\n", "2 x\n", "² 3\n", "2 3 4\n"])
def test_missing_or_bad_header(tmp_path, text):
    message = read_error(write(tmp_path / "bad.vec", text))
    assert ":1: expected a header 'N DIM'" in message


def test_header_count_disagrees_with_rows(tmp_path):
    path = write(tmp_path / "n.vec", "3 2\n" + "".join(f"w{i} 1 2\n" for i in range(1)))
    assert "header announces 3 words but the file has 1 rows" in read_error(path)


def test_a_row_beyond_the_header_count_is_refused_as_soon_as_it_is_read(tmp_path):
    """The header's count bounds what is read: an endless stream of valid rows stops at the first extra one."""
    path = write(tmp_path / "n.vec", "1 2\n" + "".join(f"w{i} 1 2\n" for i in range(5)), compress=True)
    message = read_error(path)
    assert (
        ":3: the header announces 1 words but the file has more rows (this line is row 2); expected 1 rows" in message
    )
    assert read_word_vectors(path, max_words=2).words == ["w0", "w1"]  # max_words: the count is not checked


@pytest.mark.parametrize(
    "row, expected",
    [
        ("bad 1 2", ":3: expected a word and 3 values, got 2 values"),
        ("bad", ":3: expected a word and 3 values, got 0 values"),
        ("bad 1 x 3", ":3: expected a number, got 'x'"),
        ("bad 1  3", ":3: expected a number, got ''"),
        ("bad 1 2 3,", ":3: expected a number, got '3,'"),
        ("bad 1 nan 3", ":3: the vector of word 'bad' contains NaN, inf"),
        ("bad 1 -inf 3", ":3: the vector of word 'bad' contains NaN, inf"),
        ("bad 1 1e39 3", ":3: the vector of word 'bad' contains NaN, inf"),
        (" 1 2 3", ":3: empty word"),
        ("", ":3: empty line"),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_bad_rows_name_file_and_line(tmp_path, row, expected, compress):
    path = write(tmp_path / "bad.vec", f"3 3\nhello 1 2 3\n{row}\nlast 4 5 6\n", compress)
    assert expected in read_error(path)


def test_bad_value_deep_in_a_large_file_is_located(tmp_path):
    rows = [f"w{i} " + " ".join(["0.25"] * 50) for i in range(3000)]
    rows[2718] = "w2718 " + " ".join(["0.25"] * 49 + ["1.2.3"])
    message = read_error(write(tmp_path / "big.vec", "3000 50\n" + "\n".join(rows) + "\n"))
    assert ":2720: expected a number, got '1.2.3'" in message


def test_duplicates_keep_first_and_are_reported(tmp_path, caplog):
    path = write(tmp_path / "d.vec", "5 2\na 1 0\nb 0 1\na 5 5\nc 2 2\nb 9 9\n")
    with caplog.at_level(logging.WARNING, logger="modeling_manmoe.data.vectors"):
        vectors = read_word_vectors(path)
    assert vectors.words == ["a", "b", "c"]
    assert vectors.vectors.tolist() == [[1, 0], [0, 1], [2, 2]]
    assert "2 duplicate word(s)" in caplog.text and str(path) in caplog.text and "['a', 'b']" in caplog.text


def test_max_words_stops_early_and_skips_the_count_check(tmp_path):
    path = write(tmp_path / "m.vec", "9 2\na 1 0\nb 0 1\nc 1 1\nbroken row\n", compress=True)
    vectors = read_word_vectors(path, max_words=2)
    assert vectors.words == ["a", "b"] and vectors.vectors.shape == (2, 2)
    assert read_word_vectors(path, max_words=3).words == ["a", "b", "c"]
    assert ":5: expected a word and 2 values" in read_error(path, max_words=10)
    with pytest.raises(ValueError, match="max_words"):
        read_word_vectors(path, max_words=0)


def test_normalize_gives_unit_norms_even_for_extreme_values(tmp_path):
    path = write(tmp_path / "n.vec", "4 2\na 3 4\nb 1e30 -1e30\nc -1e-3 0\nd 1e-40 1e-40\n")
    vectors = read_word_vectors(path, normalize=True).vectors
    assert vectors.dtype == np.float32
    assert np.allclose(vectors, [[0.6, 0.8], [2**-0.5, -(2**-0.5)], [-1, 0], [2**-0.5, 2**-0.5]])
    assert read_word_vectors(path).vectors[0].tolist() == [3, 4]


@pytest.mark.parametrize("row", ["b 0 0", "b -0.0 0e5", "b 1e-50 -1e-46"])
@pytest.mark.parametrize("normalize", [False, True])
def test_a_zero_vector_is_refused_naming_the_line_and_word(tmp_path, row, normalize):
    """A row of zeros (or of values that underflow float32 to zeros) would normalise to the padding vector."""
    message = read_error(write(tmp_path / "z.vec", f"3 2\na 3 4\n{row}\nc 1 0\n"), normalize=normalize)
    assert ":3: the vector of word 'b' is all zeros (or its values are below the float32 range" in message
    assert read_word_vectors(tmp_path / "z.vec", keep={"a", "c"}).words == ["a", "c"]  # only kept rows are parsed


@pytest.mark.parametrize(
    "text",
    [
        "2 2\na 1 0 0\nb 0 1 0\n",  # the real dimension is 3: each word takes a value
        "2 1\nNew York 1 0 0\nb 0 1 0\n",  # two values too many on every row
        "1 2\n1 2 3 4\n",  # a number-word with a value too many
    ],
)
def test_a_header_dimension_smaller_than_every_row_is_refused(tmp_path, text):
    message = read_error(write(tmp_path / "d.vec", text))
    assert ":2: every row holds more numbers than the header's dimension" in message
    assert "expected the header 'N DIM' to give the number of values per row" in message


def test_words_ending_with_a_number_are_allowed_when_not_on_every_row(tmp_path):
    """Words may hold spaces, and some may end with a number ("Boeing 747"); only all of them is a wrong header."""
    vectors = read_word_vectors(write(tmp_path / "w.vec", "3 2\nthe 1 0\nBoeing 747 0 1\n1 000 1 1\n"))
    assert vectors.words == ["the", "Boeing 747", "1 000"]
    assert read_word_vectors(write(tmp_path / "n.vec", "2 2\n1 0 1\n2 1 0\n")).words == ["1", "2"]


def test_a_header_dimension_larger_than_the_rows_names_the_header(tmp_path):
    message = read_error(write(tmp_path / "d.vec", "2 3\na 1 0\nb 0 1\n"))
    assert ":2: expected a word and 3 values, got 2 values; the header (line 1) announces dimension 3" in message


def test_byte_order_marks_inside_rows_are_removed_with_a_warning(tmp_path, caplog):
    """Two files joined together, or a BOM left inside a word: never kept in a word."""
    text = "\ufeff3 2\nthe 1 0\n\ufeffder 0 1\nBer\ufefflin 1 1\n"
    with caplog.at_level(logging.WARNING, logger="modeling_manmoe.data.vectors"):
        vectors = read_word_vectors(write(tmp_path / "b.vec", text))
    assert vectors.words == ["the", "der", "Berlin"] and "\ufeff" not in vectors.characters
    assert "byte-order marks (U+FEFF) inside 2 row(s)" in caplog.text and "on line(s) 3, 4" in caplog.text
    assert ":3: empty word" in read_error(write(tmp_path / "e.vec", "2 2\nthe 1 0\n\ufeff 0 1\n"))


@pytest.mark.parametrize("compress", [False, True])
def test_a_line_longer_than_the_limit_is_refused_while_reading(tmp_path, monkeypatch, compress):
    """A line is read with the bound `files.MAX_LINE_BYTES`: a gzip stream without newline cannot fill memory."""
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 20)
    exact = "2 2\nthe 1 0\n" + "w" * 16 + " 0 1\n"  # 20 bytes and the newline: allowed
    assert read_word_vectors(write(tmp_path / "ok.vec", exact, compress)).words == ["the", "w" * 16]
    path = write(tmp_path / "long.vec", "2 2\nthe 1 0\n" + "w" * 17 + " 0 1\n", compress)
    assert ":3: a line longer than the limit of 20 bytes per line" in read_error(path)
    endless = write(tmp_path / "endless.vec", b"1 2\n" + b"1" * 10_000_000, compress)
    assert ":2: a line longer than the limit of 20 bytes per line" in read_error(endless)


def test_truncated_and_corrupt_gzip(tmp_path):
    data = gzip.compress(b"200 2\n" + b"".join(b"w%d 1 0\n" % i for i in range(200)))
    assert "corrupt or truncated gzip" in read_error(write(tmp_path / "t.vec.gz", data[: len(data) // 2]))
    corrupt = data[:10] + bytes(b ^ 0x5A for b in data[10:40]) + data[40:]
    assert "corrupt or truncated gzip" in read_error(write(tmp_path / "c.vec.gz", corrupt))
    assert "corrupt or truncated gzip" in read_error(write(tmp_path / "m.vec", b"\x1f\x8bnot gzip at all"))


def test_non_utf8_names_the_line(tmp_path):
    message = read_error(write(tmp_path / "l.vec", b"2 2\nok 1 0\ncaf\xe9 1 0\n", compress=True))
    assert ":3: not valid UTF-8" in message


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.vec"):
        read_word_vectors(tmp_path / "missing.vec")


def test_check_same_dimension(tmp_path):
    a = read_word_vectors(write(tmp_path / "a.vec", "2 2\na 1 0\nb 0 1\n"))
    b = read_word_vectors(write(tmp_path / "b.vec", "1 3\nc 1 0 0\n"))
    check_same_dimension({"en": a, "nl": a})
    check_same_dimension({})
    with pytest.raises(VectorFileError, match="different dimensions") as error:
        check_same_dimension({"en": a, "de": b})
    message = str(error.value)
    assert str(tmp_path / "a.vec") in message and str(tmp_path / "b.vec") in message
    assert "has dim 2" in message and "has dim 3" in message


FUZZ_TEXT = st.text(alphabet=st.sampled_from(list("0123456789 .-+eEnaif\n\r\t\xa0x#é\ufeff")), max_size=120)


@given(
    content=st.one_of(
        st.binary(max_size=200),
        FUZZ_TEXT,
        st.builds(lambda h, t: h + t, st.sampled_from(["1 2\n", "2 3\n", "3 1\n"]), FUZZ_TEXT),
    ),
    compress=st.booleans(),
    max_words=st.sampled_from([None, 1, 2]),
    normalize=st.booleans(),
)
def test_fuzz_only_vector_file_errors_escape(tmp_path, content, compress, max_words, normalize):
    path = write(tmp_path / "fuzz.vec", content, compress)
    try:
        vectors = read_word_vectors(path, max_words=max_words, normalize=normalize)
    except VectorFileError as error:
        assert str(path) in str(error)
    else:
        assert vectors.vectors.dtype == np.float32 and vectors.vectors.shape == (
            len(vectors.words),
            vectors.dim,
        )
        assert np.isfinite(vectors.vectors).all() and len(set(vectors.words)) == len(vectors.words)


WORD = st.text(
    st.characters(blacklist_characters="\n\ufeff", blacklist_categories=["Cs"]), min_size=1, max_size=8
).filter(lambda word: not word.startswith(" "))
FLOATS = st.floats(width=32, allow_nan=False, allow_infinity=False)


def nonzero_rows(dim: int):
    return st.lists(FLOATS, min_size=dim, max_size=dim).filter(any)


def ends_with_a_number(word: str) -> bool:
    """A word with a space whose last part reads as a number: when every row's word does, the header is wrong."""
    try:
        return " " in word and bool(str(float(word.rsplit(" ", 1)[1])))
    except ValueError:
        return False


@given(data=st.data(), dim=st.integers(1, 5), compress=st.booleans())
def test_round_trip_of_valid_files(tmp_path, data, dim, compress):
    words = data.draw(st.lists(WORD, min_size=1, max_size=6, unique=True))
    assume(not all(map(ends_with_a_number, words)))
    table = np.array(
        data.draw(st.lists(nonzero_rows(dim), min_size=len(words), max_size=len(words))), dtype=np.float32
    ).reshape(len(words), dim)
    lines = [f"{len(words)} {dim}"] + [
        w + " " + " ".join(repr(float(v)) for v in row) for w, row in zip(words, table, strict=True)
    ]
    vectors = read_word_vectors(write(tmp_path / "r.vec", "\n".join(lines) + "\n", compress))
    assert vectors.words == words and np.array_equal(vectors.vectors, table)


FUZZ_BAD_VALUES = ["nan", "NaN", "inf", "-inf", "1e39", "-1e39", "x", "", "1,5", "1.2.3", "0x1p3", "1_0", "1e", "½"]
FUZZ_BAD_HEADERS = [
    "",
    "2",
    "0 2",
    "-1 2",
    "2 3 4",
    "a b",
    "² 3",
    "2 -3",
    "1.0 2",
    "99999999999999999999 2",
    "2 99999999999999999999",
]


@st.composite
def vec_like_files(draw):
    """(file name, bytes, expected rows): a header and rows of random words (spaces, unicode, duplicates, words
    ending with a number) and values (zero rows too), CRLF, trailing spaces, BOM, gzip. Noisy files also get bad or
    huge headers, missing or extra values, NaN / inf / non-numbers, blank lines, byte-order marks inside rows,
    invalid UTF-8 and truncated gzip. `expected` lists the (word, values) rows when the file's layout is valid
    (see `refusal` for the valid layouts still refused), else None."""
    noisy = draw(st.booleans())
    dim = draw(st.integers(1, 4))
    pool = draw(st.lists(WORD, min_size=1, max_size=6))
    if draw(st.integers(0, 3)) == 0:  # a word that ends with a number
        pool.append(draw(st.builds("{} {}".format, WORD, st.integers(0, 999))))
    floats = FLOATS
    rows, lines, valid = [], [], True
    for _ in range(draw(st.integers(0, 6))):
        if noisy and draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(["", " ", "\r"])))
            valid = False
            continue
        word = draw(st.sampled_from(pool) | WORD)
        values = [np.float32(draw(floats)) for _ in range(dim)]
        texts = [repr(float(value)) for value in values]
        if noisy and draw(st.integers(0, 3)) == 0:
            change = draw(st.sampled_from(["bad value", "missing value", "extra value"]))
            position = draw(st.integers(0, dim - 1))
            if change == "bad value":
                texts[position] = draw(st.sampled_from(FUZZ_BAD_VALUES))
            elif change == "missing value":
                del texts[position]
            else:
                texts.append(texts[position])
            valid = False
        line = word + " " + " ".join(texts) + draw(st.sampled_from(["", " ", "  "]))
        if noisy and draw(st.integers(0, 9)) == 0:
            position = draw(st.integers(0, len(line)))
            line, valid = line[:position] + "\ufeff" + line[position:], False
        lines.append(line)
        rows.append((word, values))
    header = f"{len(rows)} {dim}"
    if noisy and draw(st.booleans()):
        header = draw(
            st.sampled_from(FUZZ_BAD_HEADERS)
            | st.builds("{} {}".format, st.integers(1, 10**25), st.integers(1, 10**25))
            | st.builds("{} {}".format, st.integers(0, 8), st.integers(0, 6))
        )
        valid &= header == f"{len(rows)} {dim}"
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = (
        ("\ufeff" if draw(st.booleans()) else "")
        + newline.join([header, *lines])
        + draw(st.sampled_from(["", newline]))
    )
    data = text.encode("utf-8")
    if noisy and draw(st.booleans()):
        position = draw(st.integers(0, len(data)))
        data = data[:position] + bytes([draw(st.integers(0x80, 0xFF))]) + data[position:]
        valid = False
    container = draw(st.sampled_from(["plain", "gzip"] + (["truncated"] if noisy else [])))
    if container != "plain":
        data = gzip.compress(data)
    if container == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
        valid = False
    name = draw(st.sampled_from(["fuzz.vec", "fuzz.vec.gz", "fuzz.txt"]))
    return name, data, rows if valid else None


def refusal(rows: list, max_words: int | None) -> str | None:
    """What a file of valid layout holding `rows` is refused for when read with `max_words`, or None: no row (the
    header `0 DIM`), every row read ending with a number (a header dimension too small), a zero vector."""
    read = rows[:max_words]
    if not read:
        return "expected a header 'N DIM'"
    if all(ends_with_a_number(word) for word, _ in read):
        return "every row holds more numbers than the header's dimension"
    if not all(any(values) for _, values in read):
        return "is all zeros"
    return None


@example(file=("t.vec", b"1 1\n0 2.4e-35\n", [("0", [np.float32(2.4e-35)])]), max_words=None, normalize=True)
@example(
    file=("h.vec", b"1 2\na 1e20 -1e20\n", [("a", [np.float32(1e20), np.float32(-1e20)])]), max_words=1, normalize=True
)
@given(file=vec_like_files(), max_words=st.sampled_from([None, 1, 2, 5]), normalize=st.booleans())
def test_fuzz_read_word_vectors_of_vec_like_files(tmp_path, file, max_words, normalize):
    name, data, expected = file
    path = write(tmp_path / name, data)
    reason = None if expected is None else refusal(expected, max_words)
    try:
        vectors = read_word_vectors(path, max_words=max_words, normalize=normalize)
    except VectorFileError as error:
        assert str(path) in str(error)
        event("VectorFileError")
        assert expected is None or (reason is not None and reason in str(error)), (reason, str(error))
        return
    event("read")
    assert vectors.vectors.dtype == np.float32 and vectors.vectors.shape == (len(vectors.words), vectors.dim)
    assert np.isfinite(vectors.vectors).all() and len(set(vectors.words)) == len(vectors.words)
    assert vectors.vectors.any(axis=1).all() and "\ufeff" not in "".join(vectors.words)
    if expected is not None:  # a valid file: its first max_words rows, duplicates dropped after the first
        event("valid file")
        assert reason is None
        kept = {}
        for word, values in expected[:max_words]:
            kept.setdefault(word, values)
        assert vectors.words == list(kept)
        table = np.array(list(kept.values()), dtype=np.float32).reshape(len(kept), vectors.dim)
        if normalize:  # unit vectors, however large or small the values
            norms = np.linalg.norm(table.astype(np.float64), axis=1, keepdims=True)
            assert np.allclose(vectors.vectors, table / norms, rtol=1e-5, atol=1e-6)
            assert np.allclose(np.linalg.norm(vectors.vectors.astype(np.float64), axis=1), 1)
        else:
            assert np.array_equal(vectors.vectors, table)


@given(file=vec_like_files(), max_line_bytes=st.integers(1, 80))
def test_fuzz_read_word_vectors_within_a_small_line_limit(tmp_path, file, max_line_bytes):
    """With any line limit only VectorFileError escapes; a valid file with a line over the limit is refused naming
    its first long line; a file within the limit reads as it does with the default limit."""
    name, data, expected = file
    path = write(tmp_path / name, data)

    def read() -> tuple:
        try:
            vectors = read_word_vectors(path)
        except VectorFileError as error:
            assert str(path) in str(error)
            return None, str(error)
        return (vectors.words, vectors.vectors.tolist()), None

    default = read()
    saved, files.MAX_LINE_BYTES = files.MAX_LINE_BYTES, max_line_bytes
    try:
        result = read()
    finally:
        files.MAX_LINE_BYTES = saved
    try:
        plain = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (EOFError, OSError, zlib.error):  # a truncated or corrupt gzip file: refused either way
        assert result[1] is not None and default[1] is not None
        return
    lengths = [len(line) for line in plain.split(b"\n")]
    if max(lengths) <= max_line_bytes:
        event("within the limit")
        assert result == default
    elif expected is not None:
        event("over the limit")
        number = next(i for i, length in enumerate(lengths, start=1) if length > max_line_bytes)
        assert f":{number}: a line longer than the limit of {max_line_bytes} bytes per line" in result[1]


HEADER_NUMBER = st.integers(-1, 2**70).map(str) | st.text("0123456789", min_size=1, max_size=5000)


@example(header="1 2305843009213693952", rows=[], max_words=1, normalize=False)  # numpy: "array is too big"
@example(header="1 " + "9" * 5000, rows=[], max_words=None, normalize=False)  # int(): more than 4300 digits
@given(
    header=st.builds("{} {}".format, HEADER_NUMBER, HEADER_NUMBER) | st.text(max_size=12),
    rows=st.lists(st.sampled_from(["a 1", "b 1 2", "c 0 0 0", "a 1 1", "", "d x", "e nan 1"]), max_size=3),
    max_words=st.sampled_from([None, 1, 2]),
    normalize=st.booleans(),
)
def test_fuzz_read_word_vectors_headers(tmp_path, header, rows, max_words, normalize):
    """Random headers (huge, zero or negative numbers, any text) over a few rows: only VectorFileError escapes."""
    path = write(tmp_path / "header.vec", "\n".join([header, *rows]) + "\n")
    try:
        vectors = read_word_vectors(path, max_words=max_words, normalize=normalize)
    except VectorFileError as error:
        assert str(path) in str(error)
        event("VectorFileError")
        return
    event("read")
    assert vectors.vectors.shape == (len(vectors.words), vectors.dim) and len(vectors.words) <= len(rows)
    assert vectors.dim == int(header.split()[1]) and np.isfinite(vectors.vectors).all()


@pytest.mark.integration
def test_real_vector_files(shared_dir):
    for language in ["en", "de", "es", "nl"]:
        vectors = read_word_vectors(shared_dir / "embeddings" / "conll-use-m3" / f"{language}.vec.gz")
        assert len(vectors) == 20_000 and len(set(vectors.words)) == 20_000
        assert vectors.dim == 300 and vectors.vectors.shape == (20_000, 300)
        assert vectors.vectors.dtype == np.float32 and np.isfinite(vectors.vectors).all()


def test_build_inputs_table_and_tokenizer(tmp_path):
    import torch

    from modeling_manmoe.data.inputs import build_word_vector_inputs

    files = {
        "en": write(tmp_path / "en.vec", "2 2\nBerlin 3 4\nthe 1 0\n"),
        "nl": write(tmp_path / "nl.vec.gz", "1 2\nde 0 2\n", compress=True),
    }
    tokenizer, table = build_word_vector_inputs(files, ["en", "nl"], extra_characters=["ß"])
    assert table.shape == (5, 2) and torch.equal(table[0], torch.zeros(2))
    assert torch.allclose(table.norm(dim=-1)[1:], torch.ones(4))
    assert torch.allclose(table[2], torch.tensor([0.6, 0.8]))
    assert torch.equal(table[4], torch.tensor([0.0, 1.0]))  # nl's rows follow en's
    assert tokenizer(["berlin", "ß"], language="en", is_split_into_words=True)["input_ids"].tolist() == [[1, 1]]
    assert tokenizer(["Berlin"], language="en", is_split_into_words=True)["input_ids"].tolist() == [[2]]
    assert "ß" in tokenizer.char_to_id
    with pytest.raises(ValueError, match=r"no word-vector file for language\(s\) \['de'\]"):
        build_word_vector_inputs(files, ["en", "de"])


def test_build_inputs_gives_each_oov_corpus_word_its_own_random_row(tmp_path):
    """`oov_corpus` (the reference's vocabulary): words the file lacks as written and lower-cased get one row each,
    lower-cased, after their language's file rows, random unit vectors; the file's rows stay as they were."""
    import torch

    from modeling_manmoe.data.inputs import build_word_vector_inputs

    files = {
        "en": write(tmp_path / "en.vec", "2 2\nBerlin 3 4\nthe 1 0\n"),
        "nl": write(tmp_path / "nl.vec", "1 2\nde 0 2\n"),
    }
    plain_tokenizer, plain = build_word_vector_inputs(files, ["en", "nl"])
    corpus = {"en": ["The", "Berlin", "Piet", "PIET", "berlin", "zyx"], "nl": ["de", "Piet"]}
    tokenizer, table = build_word_vector_inputs(files, ["en", "nl"], oov_corpus=corpus)
    # en: the file's 2 words, then "piet", "berlin" and "zyx": "The" is found lower-cased and "PIET" is "piet", but
    # "berlin" is not "Berlin" (the lookup tries a word as written, then lower-cased)
    assert tokenizer.vocabularies == {"en": ["Berlin", "the", "piet", "berlin", "zyx"], "nl": ["de", "piet"]}
    assert table.shape == (2 + 5 + 2, 2) and torch.allclose(table.norm(dim=-1)[1:], torch.ones(8))
    assert torch.equal(table[:4], plain[:4]) and torch.equal(table[7], plain[4])  # the file rows are unchanged
    assert len({tuple(row.tolist()) for row in table[1:]}) == 8  # unknown and each new row differ
    ids = tokenizer(["Piet", "PIET", "Berlin", "berlin", "unseen"], language="en", is_split_into_words=True)
    assert ids["input_ids"].tolist() == [[4, 4, 2, 5, 1]]
    assert tokenizer(["Piet"], language="nl", is_split_into_words=True)["input_ids"].tolist() == [[8]]
    assert plain_tokenizer(["Piet"], language="en", is_split_into_words=True)["input_ids"].tolist() == [[1]]


def test_read_keeps_only_the_asked_words_but_checks_every_row(tmp_path):
    """`keep`: only those rows are returned (file order, first occurrence), the characters are every row's, a
    malformed row is refused even when not kept, and the header's count is checked against all rows."""
    path = write(tmp_path / "k.vec", "4 2\nBerlin 3 4\nthe 1 0\nÆsop 0 1\nthe 2 2\n")
    vectors = read_word_vectors(path, keep={"the", "Berlin", "absent"})
    assert vectors.words == ["Berlin", "the"] and vectors.vectors.tolist() == [[3, 4], [1, 0]]
    assert vectors.characters == "BerlinthÆsop"
    assert read_word_vectors(path).characters == vectors.characters
    assert read_word_vectors(path, keep=set()).words == []
    assert read_word_vectors(path, keep={"the"}, max_words=1).words == []
    assert "got 1 values" in read_error(write(tmp_path / "bad.vec", "2 2\nthe 1 0\nzyx 1\n"), keep={"the"})
    assert "announces 3 words" in read_error(write(tmp_path / "count.vec", "3 2\nthe 1 0\n"), keep={"the"})


def test_a_corpus_vocabulary_gives_every_corpus_word_its_whole_file_row(tmp_path):
    """`vocabulary_corpus` keeps the file words the corpus looks up (as written, else lower-cased): each corpus word
    gets the same vector as with the whole file, the characters are the same, unknown words stay unknown, and a
    language left out keeps its whole file; with `oov_corpus` too, the new rows are the same random vectors."""
    import torch

    from modeling_manmoe.data.inputs import build_word_vector_inputs

    files = {
        "en": write(tmp_path / "en.vec", "4 2\nBerlin 3 4\nthe 1 0\nÆsop 0 1\nberlin 1 1\n"),
        "nl": write(tmp_path / "nl.vec", "2 2\nde 0 2\nhet 2 0\n"),
    }
    corpus = {"en": ["The", "Berlin", "zyx", "Zyx"]}
    whole_tokenizer, whole = build_word_vector_inputs(files, ["en", "nl"], oov_corpus=corpus)
    tokenizer, table = build_word_vector_inputs(files, ["en", "nl"], oov_corpus=corpus, vocabulary_corpus=corpus)
    # "berlin" stays too: a corpus word is kept as written and lower-cased (a superset of what it is read as)
    assert tokenizer.vocabularies == {"en": ["Berlin", "the", "berlin", "zyx"], "nl": ["de", "het"]}
    assert table.shape == (2 + 4 + 2, 2) and whole.shape == (2 + 5 + 2, 2)
    assert tokenizer.characters == whole_tokenizer.characters and "Æ" in tokenizer.char_to_id
    words = ["The", "Berlin", "zyx", "Zyx", "Æsop", "unseen"]
    ids = tokenizer(words, language="en", is_split_into_words=True)["input_ids"][0]
    whole_ids = whole_tokenizer(words, language="en", is_split_into_words=True)["input_ids"][0]
    assert torch.equal(table[ids[:4]], whole[whole_ids[:4]])  # the corpus' words: the whole file's vectors
    assert ids[4:].tolist() == [1, 1] and whole_ids[4] != 1  # a file word outside the corpus is unknown
    assert torch.equal(table[1], whole[1]) and torch.equal(table[-2:], whole[-2:])  # unknown; nl's whole file


@pytest.mark.integration
def test_paper_configuration_on_real_vectors(shared_dir, tmp_path):
    """The paper's CoNLL configuration built from the real vectors: 3,092,765 trainable parameters, the frozen
    table survives save/load."""
    import torch

    from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification
    from modeling_manmoe.data.inputs import build_word_vector_inputs

    folder = shared_dir / "embeddings" / "conll-use-m3"
    languages = ["en", "de", "es", "nl"]
    tokenizer, table = build_word_vector_inputs({lang: folder / f"{lang}.vec.gz" for lang in languages}, languages)
    config = ManMoeConfig(word_vocab_size=table.shape[0], char_vocab_size=tokenizer.char_vocab_size, num_labels=9)
    model = ManMoeForTokenClassification(config)
    model.set_word_vectors(table)
    assert model.num_trainable_parameters() == 3_092_765
    model.save_pretrained(tmp_path)
    loaded = ManMoeForTokenClassification.from_pretrained(tmp_path)
    assert torch.equal(loaded.manmoe.inputs.word_embeddings.weight, table)


# --- coverage of the data by the vectors, extreme values (build_word_vector_inputs) ------------------------------


# the English corpus of both coverage tests: 6 tokens (4 found), 5 distinct words (3 found)
EN_COVERAGE = {
    "types": 5,
    "types_found": 3,
    "tokens": 6,
    "tokens_found": 4,
    "type_coverage": 0.6,
    "token_coverage": 4 / 6,
}


def coverage_files(tmp_path):
    return {
        "en": write(tmp_path / "en.vec", "3 2\nthe 1 0\nBerlin 3 4\nlives 0 1\n"),
        "nl": write(tmp_path / "nl.vec.gz", "2 2\nde 0 2\nhet 1 1\n", compress=True),
    }


def test_vector_coverage_counts_types_and_tokens_as_the_tokenizer_looks_them_up():
    """A word is found as written, else lower-cased (`vocabulary_entry`): "The" is found, "berlin" is not."""
    from modeling_manmoe.data.inputs import vector_coverage

    corpus = {"en": ["The", "the", "berlin", "Berlin", "zyx", "the"], "nl": iter([])}
    coverage = vector_coverage({"en": {"the", "Berlin"}, "nl": {"de"}}, corpus)
    assert coverage["en"] == EN_COVERAGE
    assert coverage["nl"]["tokens"] == 0 and coverage["nl"]["token_coverage"] is None
    with pytest.raises(LanguageError, match=r"no vocabulary for the corpus language\(s\) \['de'\]; got \['en'\]"):
        vector_coverage({"en": {"the"}}, {"de": ["der"]})


def test_build_inputs_logs_and_exposes_the_coverage_of_each_language(tmp_path, caplog):
    """One INFO line per language; the figures are the tokenizer's `vector_coverage`. Corpora may be one-pass
    generators, and one generator may serve several roles: it is read once."""
    from modeling_manmoe.data.inputs import build_word_vector_inputs

    files = coverage_files(tmp_path)
    en_words = ["The", "Berlin", "lives", "in", "Berlin", "."]
    corpus = {"en": (word for word in en_words), "nl": (word for word in ["De", "Piet", "het", "het"])}
    with caplog.at_level(logging.INFO, logger="modeling_manmoe.data.inputs"):
        tokenizer, table = build_word_vector_inputs(files, ["en", "nl"], vocabulary_corpus=corpus, oov_corpus=corpus)
    assert tokenizer.vector_coverage["en"] == EN_COVERAGE
    assert tokenizer.vector_coverage["nl"]["tokens_found"] == 3 and tokenizer.vector_coverage["nl"]["types"] == 3
    # the generators served the vocabulary and the OOV rows too: oov rows are not counted as covered
    assert tokenizer.vocabularies == {"en": ["the", "Berlin", "lives", "in", "."], "nl": ["de", "het", "piet"]}
    lines = [record.getMessage() for record in caplog.records if record.name == "modeling_manmoe.data.inputs"]
    assert lines == [
        f"en: the word vectors {files['en']} hold 66.7% of the corpus' tokens (4 of 6) and 60.0% of its distinct "
        "words (3 of 5), as written or lower-cased",
        f"nl: the word vectors {files['nl']} hold 75.0% of the corpus' tokens (3 of 4) and 66.7% of its distinct "
        "words (2 of 3), as written or lower-cased",
    ]
    plain_tokenizer, _ = build_word_vector_inputs(files, ["en", "nl"])
    assert plain_tokenizer.vector_coverage == {}  # no corpus: nothing measured
    only_en, _ = build_word_vector_inputs(files, ["en", "nl"], coverage_corpus={"en": en_words})
    assert list(only_en.vector_coverage) == ["en"] and only_en.vocabularies["en"] == ["the", "Berlin", "lives"]


def test_build_inputs_refuses_a_language_below_the_minimum_coverage(tmp_path):
    """Vectors of another language (or another case, or cut too short by max_words) lose most words: refused with
    the file, the language and the figures, unless the minimum is lowered."""
    from modeling_manmoe.data.inputs import build_word_vector_inputs

    files = coverage_files(tmp_path)
    corpus = {"en": ["the"] + ["Mann", "Frau", "Kind"] * 4, "nl": ["de"]}
    with pytest.raises(VectorFileError) as refused:
        build_word_vector_inputs(files, ["en", "nl"], coverage_corpus=corpus)
    assert str(refused.value) == (
        f"{files['en']}: the word vectors of language 'en' hold only 7.7% of the corpus' tokens (1 of 13) and 25.0% "
        "of its distinct words (1 of 4), as written or lower-cased, below the minimum of 10% of the tokens "
        "(min_token_coverage); expected this language's vectors, split into words as the data is (another "
        "language's file, another script or case, or a file cut too short by max_words would lose most words). "
        "Check the file, or lower min_token_coverage"
    )
    tokenizer, _ = build_word_vector_inputs(files, ["en", "nl"], coverage_corpus=corpus, min_token_coverage=0.05)
    assert tokenizer.vector_coverage["en"]["tokens_found"] == 1
    with pytest.raises(VectorFileError, match=r"'en' hold only 0\.0% .* \(0 of 13\)"):
        build_word_vector_inputs(files, ["en", "nl"], coverage_corpus={"en": corpus["en"][1:] + ["zyx"]})
    with pytest.raises(VectorFileError, match=r"language 'en' hold only 7\.7%"):  # the first max_words words
        build_word_vector_inputs(files, ["en", "nl"], max_words=1, coverage_corpus={"en": ["the"] + ["lives"] * 12})


def test_build_inputs_normalises_extreme_but_finite_vectors_to_unit_rows(tmp_path):
    """Values whose float32 squares overflow (1e20) or underflow (1e-25) still give unit rows, never zero rows;
    other rows are normalised in float32 exactly as before."""
    import torch

    from modeling_manmoe.data.inputs import build_word_vector_inputs

    files = {"en": write(tmp_path / "en.vec", "4 2\nbig 1e20 -1e20\ntiny 1e-25 1e-25\nthe 3 4\nhuge 3e38 3e38\n")}
    _, table = build_word_vector_inputs(files, ["en"])
    half = 2**-0.5
    assert torch.allclose(table[2:], torch.tensor([[half, -half], [half, half], [0.6, 0.8], [half, half]]))
    assert torch.equal(table[0], torch.zeros(2)) and torch.allclose(table[1].norm(), torch.tensor(1.0))
    rows = torch.tensor([[3.0, 4.0]])
    assert torch.equal(table[4], (rows / rows.norm(dim=-1, keepdim=True))[0])
