"""CoNLL-2002/2003 NER readers that return `datasets.Dataset` objects.

Every reader returns the same three columns: `tokens` (list of words), `ner_tags` (list of `ClassLabel` ids
over `label_names`, by default `CONLL_NER_LABELS`) and `language` (the language code of the sentence).
Tags come out in IOB2: IOB1 files (the English CoNLL-2003 files) and IOBES (or BILOU) files are detected and
converted.

Bad input raises `DataFormatError` (a `ValueError`) whose message names the file (or Hub dataset), the
1-based line number (or row) and what was expected.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import datasets

from ..errors import DataFormatError, LanguageError
from .files import read_data_bytes
from .tables import dataset_from_columns

logger = logging.getLogger(__name__)

CONLL_NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
CONLL_FILE_PREFIXES = {"en": "eng", "de": "deu", "es": "esp", "nl": "ned"}
CONLL_SPLIT_SUFFIXES = {"train": "train", "validation": "testa", "test": "testb"}
TAG_SCHEMES = ("auto", "iob1", "iob2", "iobes")

_FIELD_SEPARATOR = re.compile(r"[ \t]+")
_IOB_TAG = re.compile(r"(?:O|[BI]-\S+)\Z")
_FILE_TAG = re.compile(r"(?:O|[BIESLU]-\S+)\Z")  # IOB1, IOB2, and IOBES / BILOU (S- or U-, E- or L-)
_FILE_TAG_HELP = "expected 'O' or 'B-TYPE' / 'I-TYPE' (IOB1, IOB2), also 'S-TYPE' / 'E-TYPE' (IOBES; BILOU's U- / L-)"
_DOCSTART = "-DOCSTART-"
_LANGUAGE_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_STRAY_BYTE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, decoded with `surrogateescape`
_NON_ASCII = re.compile("[^\x00-\x7f]")
_SHOWN_PLACES = 5  # how many offending lines an encoding error or warning names


def ner_features(label_names: Sequence[str] | None = None) -> datasets.Features:
    """The features of every dataset this module returns: `tokens`, `ner_tags` and `language`."""
    return datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(label_names or CONLL_NER_LABELS))),
            "language": datasets.Value("string"),
        }
    )


def _count_chunk_starts(tag_lists: Sequence[Sequence[str]]) -> tuple[int, int]:
    """How many chunks start with an `I-` tag and how many with a `B-` tag."""
    inside = begin = 0
    for tags in tag_lists:
        previous_type = ""
        for tag in tags:
            if tag != "O" and tag[2:] != previous_type:
                if tag[0] == "I":
                    inside += 1
                else:
                    begin += 1
            previous_type = "" if tag == "O" else tag[2:]
    return inside, begin


def starts_chunk_with_inside(tags: Sequence[str]) -> bool:
    """True when some `I-X` tag starts a chunk (first token, after `O` or after another type): IOB1 only."""
    return _count_chunk_starts([tags])[0] > 0


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """Convert IOB1 tags to IOB2: an `I-X` that starts a chunk becomes `B-X`; every other tag is kept."""
    converted = []
    previous_type = ""
    for tag in tags:
        if tag[:2] == "I-" and tag[2:] != previous_type:
            tag = "B-" + tag[2:]
        converted.append(tag)
        previous_type = "" if tag == "O" else tag[2:]
    return converted


def iobes_to_iob2(tags: Sequence[str]) -> list[str]:
    """Convert IOBES (or BILOU) tags to IOB2: `S-X` (`U-X`) becomes `B-X`, `E-X` (`L-X`) becomes `I-X`."""
    return [{"S": "B-", "U": "B-", "E": "I-", "L": "I-"}[tag[0]] + tag[2:] if tag[:1] in "SUEL" and tag[1:2] == "-"
            else tag for tag in tags]  # fmt: skip


def _line_and_offset(text: str, position: int) -> tuple[int, int]:
    """The 1-based line and the byte offset in the file of character `position` of `text` (decoded with
    `surrogateescape`, so that every character maps back to its bytes)."""
    before = text[:position]
    return before.count("\n") + 1, len(before.encode("utf-8", "surrogateescape"))


def _decode(path: Path, raw: bytes, encoding: str | None) -> str:
    """The text of `raw`, in one encoding decided from the whole file (see `read_conll`)."""
    if encoding is not None:
        try:
            return raw.decode(encoding)
        except LookupError:
            raise DataFormatError(f"{path}: unknown encoding {encoding!r}; expected a Python codec name") from None
        except UnicodeDecodeError as error:
            line = raw.count(b"\n", 0, error.start) + 1
            raise DataFormatError(
                f"{path}:{line}: not valid {encoding} (byte offset {error.start}: {error.reason}); expected the "
                "whole file in the encoding given"
            ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", "surrogateescape")  # a byte that is not UTF-8 becomes one of U+DC80..U+DCFF
    stray = [match.start() for match in _STRAY_BYTE.finditer(text)]
    multibyte = len(_NON_ASCII.findall(text)) - len(stray)  # characters that are valid UTF-8 of 2 to 4 bytes
    places = [
        "line {} (byte offset {})".format(*_line_and_offset(text, position)) for position in stray[:_SHOWN_PLACES]
    ]
    if multibyte:
        more = f" and {len(stray) - _SHOWN_PLACES} more" if len(stray) > _SHOWN_PLACES else ""
        raise DataFormatError(
            f"{path}: not valid UTF-8: {len(stray)} byte(s) that are not UTF-8, at {', '.join(places)}{more}, in a "
            f"file that also holds {multibyte} valid UTF-8 character(s) of 2 to 4 bytes; expected one encoding per "
            "file. Fix those bytes (a UTF-8 file with stray bytes of another encoding is not decoded whole as "
            "latin-1, which would garble its non-ASCII words), or give the encoding of the whole file "
            "(read_conll(..., encoding='latin-1'))"
        )
    logger.warning(
        "%s: not valid UTF-8 (%s; %d non-ASCII byte(s), none part of a valid UTF-8 character): a single-byte legacy "
        "file, decoding it as latin-1",
        path,
        places[0],
        len(stray),
    )
    return raw.decode("latin-1")


def _read_text(path: Path, encoding: str | None) -> str:
    """The decoded text of `path` (gunzipped if needed; see `read_conll` for the encoding): a byte-order mark at its
    start is dropped, byte-order marks inside it are removed with a warning naming their lines."""
    raw = read_data_bytes(path)
    if b"\x00" in raw:
        raise DataFormatError(f"{path}: looks like a binary file (it contains NUL bytes), expected text")
    text = _decode(path, raw, encoding).removeprefix("\ufeff")
    if "\ufeff" in text:
        marks = [match.start() for match in itertools.islice(re.finditer("\ufeff", text), _SHOWN_PLACES + 1)]
        lines = [text.count("\n", 0, position) + 1 for position in marks[:_SHOWN_PLACES]]
        logger.warning(
            "%s: %d byte-order mark(s) (U+FEFF) inside the file (files joined together?), on line(s) %s%s; removed "
            "from the words",
            path,
            text.count("\ufeff"),
            ", ".join(map(str, lines)),
            " ..." if len(marks) > _SHOWN_PLACES else "",
        )
        text = text.replace("\ufeff", "")
    return text


def _check_options(language: str, label_names: Sequence[str] | None, tag_scheme: str) -> list[str]:
    """Validate the arguments shared by the readers; return the label names to use."""
    if not isinstance(language, str) or not language:
        raise LanguageError(f"language must be a non-empty language code, got {language!r}")
    if tag_scheme not in TAG_SCHEMES:
        raise DataFormatError(f"tag_scheme must be one of {TAG_SCHEMES}, got {tag_scheme!r}")
    names = list(label_names if label_names is not None else CONLL_NER_LABELS)
    if not names or len(set(names)) != len(names) or not all(isinstance(name, str) for name in names):
        raise DataFormatError(f"label_names must be a non-empty list of distinct strings, got {names!r}")
    return names


def _first_tag(wanted: Callable[[str], bool], tag_lists: list[list[str]]) -> tuple[int, int, str]:
    """The row, position and tag of the first tag `wanted` accepts (one must exist)."""
    for row, sentence_tags in enumerate(tag_lists):
        for position, tag in enumerate(sentence_tags):
            if wanted(tag):
                return row, position, tag
    raise AssertionError("unreachable")  # pragma: no cover


def _check_tag_syntax(tags: list[list[str]], locate: Callable[[int, int], str]) -> set[str]:
    """The distinct tags of `tags`, each checked to be 'O' or an IOB / IOBES / BILOU tag; the first bad one raises
    `DataFormatError` at `locate(row, position)`."""
    distinct = {tag for sentence_tags in tags for tag in sentence_tags}

    def is_bad(tag: object) -> bool:
        return not isinstance(tag, str) or not _FILE_TAG.match(tag)

    if any(map(is_bad, distinct)):
        row, position, tag = _first_tag(is_bad, tags)
        raise DataFormatError(f"{locate(row, position)}: bad NER tag {tag!r}; {_FILE_TAG_HELP}")
    return distinct


def _build_dataset(
    sentences: list[list[str]],
    tags: list[list[str]],
    language: str,
    label_names: list[str],
    tag_scheme: str,
    source: str,
    locate: Callable[[int, int], str],
) -> datasets.Dataset:
    """Validate the tags, convert IOB1 or IOBES to IOB2 as `tag_scheme` asks and build the Dataset."""
    distinct = _check_tag_syntax(tags, locate)

    def is_iobes(tag: str) -> bool:
        return tag[0] in "SEUL"

    scheme = tag_scheme
    if any(map(is_iobes, distinct)):
        if scheme in ("iob1", "iob2"):
            row, position, tag = _first_tag(is_iobes, tags)
            raise DataFormatError(f"{locate(row, position)}: NER tag {tag!r} is IOBES, but tag_scheme is {scheme!r}")
        scheme = "iobes"
    label_to_id = {name: index for index, name in enumerate(label_names)}
    if scheme != "iobes" and not distinct <= label_to_id.keys():
        row, position, tag = _first_tag(lambda tag: tag not in label_to_id, tags)
        where = locate(row, position)
        raise DataFormatError(f"{where}: NER tag {tag!r} is not one of the label names {label_names}")

    if tag_scheme != "auto":
        logger.info("%s: tag scheme %s (forced)", source, tag_scheme.upper())
    elif scheme == "auto":
        inside_starts, begin_starts = _count_chunk_starts(tags)
        scheme = "iob1" if inside_starts else "iob2"
        if inside_starts and begin_starts > inside_starts:
            logger.info(
                "%s: IOB2 tags, but %d chunk(s) of %d start with I-; converting them to B-",
                source,
                inside_starts,
                inside_starts + begin_starts,
            )
        else:
            logger.info("%s: detected tag scheme %s", source, scheme.upper())
    else:
        logger.info("%s: detected tag scheme IOBES; converting it to IOB2", source)
    convert = {"iob1": iob1_to_iob2, "iobes": iobes_to_iob2}.get(scheme)
    converted = [convert(sentence_tags) for sentence_tags in tags] if convert else tags

    try:
        ids = [[label_to_id[tag] for tag in sentence_tags] for sentence_tags in converted]
    except KeyError:
        row, position, _ = _first_tag(lambda tag: tag not in label_to_id, converted)
        raise DataFormatError(
            f"{locate(row, position)}: {scheme.upper()} tag {tags[row][position]!r} converts to "
            f"{converted[row][position]!r}, which is not one of the label names {label_names}"
        ) from None
    return dataset_from_columns(
        {"tokens": sentences, "ner_tags": ids, "language": [language] * len(sentences)},
        features=ner_features(label_names),
    )


def _parse_conll_file(path: Path, encoding: str | None) -> tuple[list[list[str]], list[list[str]], list[list[int]]]:
    """The words, the tags and the 1-based line numbers of each sentence of a CoNLL column file (`read_conll`'s
    rules; the tags are not checked here)."""
    text = _read_text(path, encoding)
    sentences: list[list[str]] = []
    tags: list[list[str]] = []
    lines: list[list[int]] = []
    words: list[str] = []
    word_tags: list[str] = []
    word_lines: list[int] = []
    columns = first_line = 0  # the file's number of columns and the line that set it
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        fields = _FIELD_SEPARATOR.split(stripped) if stripped else []
        if not fields or fields[0] == _DOCSTART:
            if words:
                sentences.append(words)
                tags.append(word_tags)
                lines.append(word_lines)
                words, word_tags, word_lines = [], [], []
            continue
        if not 2 <= len(fields) <= 5:
            raise DataFormatError(
                f"{path}:{number}: expected 2 to 5 columns (word first, NER tag last) separated by spaces "
                f"or tabs, found {len(fields)}: {stripped[:80]!r}"
            )
        if len(fields) != columns:
            if columns:
                raise DataFormatError(
                    f"{path}:{number}: {len(fields)} columns, but line {first_line} has {columns}: expected the "
                    f"same number of columns on every line of a file (a word holding a space reads as two "
                    f"columns): {stripped[:80]!r}"
                )
            columns, first_line = len(fields), number
        words.append(fields[0])
        word_tags.append(fields[-1])
        word_lines.append(number)
    if words:
        sentences.append(words)
        tags.append(word_tags)
        lines.append(word_lines)
    if not sentences:
        raise DataFormatError(
            f"{path}: no sentences found; expected lines 'word ... TAG' with blank lines between sentences"
        )
    return sentences, tags, lines


def read_conll(
    path: str | os.PathLike[str],
    language: str,
    *,
    label_names: Sequence[str] | None = None,
    tag_scheme: str = "auto",
    encoding: str | None = None,
) -> datasets.Dataset:
    """Read a CoNLL NER column file into a Dataset with columns `tokens`, `ner_tags` and `language`.

    Each non-blank line holds 2 to 5 columns separated by spaces or tabs: the word first, the NER tag last; every
    line of a file holds the same number of columns (`-DOCSTART-` lines aside), so that a word holding a space is
    an error rather than a word cut in two. Blank (or whitespace-only) lines and `-DOCSTART-` lines end a sentence;
    `-DOCSTART-` lines are dropped. LF or CRLF line endings and gzip (`.gz` or gzip magic) are handled.

    One encoding is decided from the whole file: UTF-8 when the file is valid UTF-8; latin-1 (with a logged
    warning) when it has non-ASCII bytes but no valid UTF-8 character of 2 to 4 bytes (a single-byte legacy file);
    a file with both, valid UTF-8 characters and bytes that are not UTF-8, is refused naming the first offending
    lines. A byte-order mark at the start is dropped; byte-order marks inside the file (files joined together) are
    removed with a logged warning. Files are read whole: at most `files.MAX_DATA_BYTES` (after decompression) and
    `files.MAX_LINE_BYTES` per line.

    Args:
        path: the file.
        language: the language code stored in the `language` column.
        label_names: the `ClassLabel` names of `ner_tags` (default `CONLL_NER_LABELS`); every tag, once in IOB2,
            must be one.
        tag_scheme: `"auto"` treats the file as IOBES when some tag is `S-X` or `E-X` (BILOU: `U-X`, `L-X`) and
            converts it to IOB2 (`iobes_to_iob2`), else as IOB1 (converted too) when some `I-X` tag starts a chunk;
            `"iob1"` and `"iobes"` always convert, `"iob2"` never does (IOBES tags are refused by `"iob1"` and
            `"iob2"`).
        encoding: the encoding of the whole file (a Python codec name, e.g. `"latin-1"`), instead of the rule above.

    Raises:
        FileNotFoundError: the file does not exist.
        LanguageError: `language` is not a non-empty string.
        DataFormatError: the file is binary, a corrupt gzip, too large, has a line too long, is UTF-8 with bytes of
            another encoding, is empty, has a line with a wrong number of columns (outside 2 to 5, or not the
            file's) or a tag that is not IOB or not in `label_names`; the message names the file and line.
    """
    path = Path(path)
    names = _check_options(language, label_names, tag_scheme)
    sentences, tags, lines = _parse_conll_file(path, encoding)
    return _build_dataset(
        sentences, tags, language, names, tag_scheme, str(path), lambda row, pos: f"{path}:{lines[row][pos]}"
    )


def conll_entity_types(path: str | os.PathLike[str], *, encoding: str | None = None) -> list[str]:
    """The entity types of a CoNLL file's tags (`PER` for `B-PER` and `I-PER`), sorted; the file is read by
    `read_conll`'s rules.

    Raises:
        FileNotFoundError: the file does not exist.
        DataFormatError: as `read_conll`, or a tag is neither 'O' nor 'B-TYPE' / 'I-TYPE' (the message names the
            file and line).
    """
    path = Path(path)
    _, tags, lines = _parse_conll_file(path, encoding)
    distinct = _check_tag_syntax(tags, lambda row, position: f"{path}:{lines[row][position]}")
    return sorted({tag[2:] for tag in distinct if tag != "O"})


def ner_label_names(entity_types: Iterable[str]) -> list[str]:
    """The IOB2 label names of a tag set with these entity types: `CONLL_NER_LABELS` when every type is one of
    CoNLL's (PER, ORG, LOC, MISC), so that a CoNLL model's label ids do not depend on which types a corpus
    happens to hold; otherwise `O`, then `B-TYPE`, `I-TYPE` for each type in sorted order."""
    types = set(entity_types)
    conll_types = {name[2:] for name in CONLL_NER_LABELS if name != "O"}
    if types <= conll_types:
        return list(CONLL_NER_LABELS)
    return ["O"] + [f"{prefix}-{kind}" for kind in sorted(types) for prefix in ("B", "I")]


def check_ner_label_names(names: Sequence[str], option: str = "label_names") -> list[str]:
    """`names` if it is an IOB2 tag set: distinct names, 'O' among them, every other name 'B-TYPE' or 'I-TYPE',
    and each type with both its B- and I- tag; raise `DataFormatError` naming `option` otherwise."""
    names = list(names)
    problems = []
    if len(set(names)) != len(names):
        problems.append("names repeat")
    if "O" not in names:
        problems.append("'O' is missing")
    bad = [name for name in names if not isinstance(name, str) or not _IOB_TAG.match(name)]
    if bad:
        problems.append(f"{bad} are not 'O', 'B-TYPE' or 'I-TYPE'")
    tags = set(names) - set(bad)
    unpaired = sorted(tag for tag in tags if tag != "O" and f"{'I' if tag[0] == 'B' else 'B'}-{tag[2:]}" not in tags)
    if unpaired:
        problems.append(f"{unpaired} lack their B-/I- partner")
    if problems:
        raise DataFormatError(f"{option} {names}: {'; '.join(problems)}; expected an IOB2 tag set such as "
                              f"{CONLL_NER_LABELS}")  # fmt: skip
    return names


def conll_file_path(folder: str | os.PathLike[str], language: str, split: str) -> Path:
    """The CoNLL file of `language` and `split` in `folder` (or `folder/conll2002`, `folder/conll2003`).

    `split` is `train`, `validation` or `test` (or the file suffixes `testa` / `testb`). The file is
    `{prefix}.{suffix}` or `{prefix}.{suffix}.gz`, the prefix being the shared task's name for the four CoNLL
    languages (`eng`, `deu`, `esp`, `ned`: `eng.testa` is English validation) and then the language code itself,
    so that another corpus in the same layout works for any language (`fi.train`, `fi.testa`, `fi.testb`).

    Raises:
        LanguageError: `language` is not a language code (letters, digits, `-` and `_`).
        DataFormatError: `split` is unknown.
        FileNotFoundError: no candidate exists; the message lists every path tried.
    """
    if not isinstance(language, str) or not _LANGUAGE_CODE.fullmatch(language):
        raise LanguageError(f"language {language!r} is not a language code (letters, digits, '-' and '_', e.g. 'fi')")
    suffix = CONLL_SPLIT_SUFFIXES.get(split, split if split in CONLL_SPLIT_SUFFIXES.values() else None)
    if suffix is None:
        raise DataFormatError(f"unknown split {split!r}; expected one of {sorted(CONLL_SPLIT_SUFFIXES)}")
    folder = Path(folder)
    prefixes = dict.fromkeys([CONLL_FILE_PREFIXES.get(language, language), language])
    bases = (folder, folder / "conll2002", folder / "conll2003")
    tried = [base / f"{prefix}.{suffix}{ext}" for prefix in prefixes for base in bases for ext in ("", ".gz")]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no CoNLL file for language {language!r}, split {split!r}; tried: {', '.join(map(str, tried))}"
    )


def load_hub_ner(
    name: str,
    language: str,
    split: str,
    *,
    config_name: str | None = None,
    label_names: Sequence[str] | None = None,
    tokens_column: str = "tokens",
    tags_column: str = "ner_tags",
    tag_scheme: str = "auto",
) -> datasets.Dataset:
    """Load a token-classification dataset from the Hub and map it to the columns of `read_conll`.

    Calls `datasets.load_dataset(name, config_name, split=split)`. The tags column may hold `ClassLabel` ids
    (remapped by name onto `label_names`) or strings; tags are validated and converted like `read_conll`
    does, and rows without tokens are dropped.

    Args:
        name: the Hub dataset (or a local dataset script/folder `datasets.load_dataset` accepts).
        language: the language code stored in the `language` column.
        split: the split to load, e.g. `"train"`.
        config_name: the dataset configuration, e.g. a language for multilingual datasets.
        label_names: the `ClassLabel` names of `ner_tags` (default `CONLL_NER_LABELS`).
        tokens_column: the column holding the words.
        tags_column: the column holding the NER tags.
        tag_scheme: `"auto"`, `"iob1"`, `"iob2"` or `"iobes"`, as in `read_conll`.

    Raises:
        LanguageError: `language` is not a non-empty string.
        DataFormatError: a column is missing or has an unexpected type, a row's tokens and tags differ in
            length, or a tag is not IOB or not in `label_names`; the message names the dataset and the row
            (0-based dataset index).
    """
    names = _check_options(language, label_names, tag_scheme)
    source = f"dataset {name!r} (config {config_name!r}, split {split!r})"
    dataset = datasets.load_dataset(name, config_name, split=split)
    if not isinstance(dataset, datasets.Dataset):
        raise DataFormatError(f"{source}: expected one split (a Dataset), got {type(dataset).__name__}")
    for column in (tokens_column, tags_column):
        if column not in dataset.column_names:
            raise DataFormatError(f"{source} has no column {column!r}; columns: {dataset.column_names}")
    inner = getattr(dataset.features[tags_column], "feature", None)
    if isinstance(inner, datasets.ClassLabel):
        # an id outside the ClassLabel (e.g. -1 for "unlabelled") becomes None and fails the tag check
        id_to_name = dict(enumerate(inner.names))
        raw_tags = [[id_to_name.get(i) for i in row] for row in dataset[tags_column]]
    elif isinstance(inner, datasets.Value) and inner.dtype in ("string", "large_string"):
        raw_tags = [list(row) for row in dataset[tags_column]]
    else:
        raise DataFormatError(
            f"{source}: column {tags_column!r} has type {dataset.features[tags_column]}; expected a sequence "
            "of ClassLabel ids or of tag strings"
        )
    sentences, tags, rows = [], [], []
    for row, (words, word_tags) in enumerate(zip(dataset[tokens_column], raw_tags, strict=True)):
        if len(words) != len(word_tags):
            raise DataFormatError(
                f"{source}, row {row}: {len(words)} tokens but {len(word_tags)} tags; expected one per token"
            )
        if any(not isinstance(word, str) for word in words):
            raise DataFormatError(f"{source}, row {row}: tokens {words!r}; expected strings")
        if words:
            sentences.append(words)
            tags.append(word_tags)
            rows.append(row)
    if len(rows) < len(raw_tags):
        logger.info("%s: dropped %d rows without tokens", source, len(raw_tags) - len(rows))
    if not sentences:
        raise DataFormatError(f"{source}: no sentences; expected rows with tokens")
    locate = lambda i, position: f"{source}, row {rows[i]}, token {position}"  # noqa: E731
    return _build_dataset(sentences, tags, language, names, tag_scheme, source, locate)
