"""Sentence-classification readers that return `datasets.Dataset` objects: Webis-CLS-10 review files and users' own
CSV / TSV / JSON / JSONL files or Hub datasets.

Every reader returns the columns `text` (string), `label` (a `ClassLabel`) and `language` (the language code of the
text); `read_webis_reviews` adds `rating` (float32), the review's star rating.

Bad input raises `DataFormatError` (a `ValueError`) whose message names the file (or Hub dataset), the item (1-based
item number and the line where it starts) or row (0-based dataset index) and what was expected.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.parsers import expat

import datasets

from ..errors import DataFormatError, LanguageError
from .files import read_data_bytes
from .tables import dataset_from_columns

logger = logging.getLogger(__name__)

SENTIMENT_LABELS = ["negative", "positive"]
WEBIS_LANGUAGE_FOLDERS = {"en": "en", "de": "de", "fr": "fr", "ja": "jp"}
WEBIS_DOMAINS = ("books", "dvd", "music")
WEBIS_SPLITS = ("train", "test")

_EXPECTED_DOCUMENT = "expected a Webis review document <items><item>…</item></items>"
_RATING = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TEXT_FIELDS = ("summary", "text", "rating")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_OTHER_ENCODING = re.compile(rb"\xff\xfe|\xfe\xff|<\?xml[^>]*encoding\s*=\s*[\"'](?!utf-?8[\"'])", re.IGNORECASE)
# local files `load_text_classification` reads with a packaged `datasets` builder: suffix -> (builder, options).
# CSV cells are kept as written: pandas would otherwise turn "NA", "null", "None", ... (and empty cells) into nulls.
_FILE_BUILDERS = {
    ".csv": ("csv", {"keep_default_na": False}),
    ".tsv": ("csv", {"delimiter": "\t", "keep_default_na": False}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
}
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


def classification_features(label_names: Sequence[str]) -> datasets.Features:
    """The features every reader of this module returns: `text`, `label` (`ClassLabel` over `label_names`) and
    `language`."""
    return datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(label_names)),
            "language": datasets.Value("string"),
        }
    )


def _check_language(language: str) -> None:
    if not isinstance(language, str) or not language:
        raise LanguageError(f"language must be a non-empty language code, got {language!r}")


def _check_label_names(label_names: Sequence[str] | None) -> list[str] | None:
    if label_names is None:
        return None
    names = list(label_names)
    if not names or len(set(names)) != len(names) or not all(isinstance(name, str) and name for name in names):
        raise DataFormatError(f"label_names must be a non-empty list of distinct strings, got {names!r}")
    return names


# --- Webis-CLS-10 review files ---------------------------------------------------------------------------------


class _ReviewParser:
    """Turns the expat events of a review document into `texts`, `labels` and `ratings`, checking as it goes.

    Depth 1 is `<items>`, depth 2 an `<item>`, depth 3 the item's fields; `<summary>`, `<text>` and `<rating>` must
    hold only text. Other fields (`<category>`, `<asin>`, `<helpfulness_votes>`, ...) and their contents are ignored.
    """

    def __init__(self, path: Path):
        self.path = path
        self.parser = expat.ParserCreate()
        self.parser.buffer_text = False
        self.parser.StartDoctypeDeclHandler = self._refuse_doctype
        self.parser.EntityDeclHandler = self._refuse_entity
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._characters
        self.depth = 0
        self.field: str | None = None  # the text field (depth 3) being read, or None
        self.chunks: list[str] = []
        self.item: dict[str, str] = {}
        self.item_number = 0
        self.item_line = 0
        self.field_lines: dict[str, int] = {}
        self.texts: list[str] = []
        self.labels: list[int] = []
        self.ratings: list[float] = []
        self.marked_items: list[str] = []  # "item N (line L)" of each item whose texts held byte-order marks

    @property
    def line(self) -> int:
        return self.parser.CurrentLineNumber

    def where(self) -> str:
        """`path:line: item N` for the item being read, `line` being where it starts."""
        return f"{self.path}:{self.item_line}: item {self.item_number}"

    def _refuse_doctype(self, name, *_):
        raise DataFormatError(
            f"{self.path}:{self.line}: the document declares a DTD (<!DOCTYPE {name} …>); refused: DTDs and entity "
            "declarations are not allowed in review files (entity expansion attacks); expected only the five "
            "predefined XML entities (&amp; &lt; &gt; &quot; &apos;) and numeric character references"
        )

    def _refuse_entity(self, name, *_):  # pragma: no cover - expat only reports declarations inside a DOCTYPE
        raise DataFormatError(f"{self.path}:{self.line}: the document declares the entity {name!r}; refused")

    def _start(self, name: str, _attributes) -> None:
        self.depth += 1
        if self.depth == 1 and name != "items":
            raise DataFormatError(f"{self.path}:{self.line}: root element <{name}>; {_EXPECTED_DOCUMENT}")
        if self.depth == 2:
            if name != "item":
                raise DataFormatError(
                    f"{self.path}:{self.line}: element <{name}> inside <items>; expected only <item> elements"
                )
            self.item_number += 1
            self.item_line = self.line
            self.item = {}
            self.field_lines = {}
        elif self.depth == 3 and name in _TEXT_FIELDS:
            if name in self.item:
                raise DataFormatError(
                    f"{self.where()}: a second <{name}> at line {self.line} (the first at line "
                    f"{self.field_lines[name]}); expected one"
                )
            self.field, self.chunks = name, []
            self.field_lines[name] = self.line
            self.item[name] = ""
        elif self.depth == 4 and self.field is not None:
            raise DataFormatError(
                f"{self.where()}: element <{name}> inside <{self.field}> at line {self.line}; expected text only"
            )

    def _characters(self, data: str) -> None:
        if self.field is not None:
            self.chunks.append(data)
        elif self.depth == 1 and data.strip():
            raise DataFormatError(
                f"{self.path}:{self.line}: text {data.strip()[:40]!r} inside <items>, outside any <item>; expected "
                "only <item> elements"
            )
        elif self.depth == 2 and data.strip():
            raise DataFormatError(
                f"{self.where()}: text {data.strip()[:40]!r} at line {self.line}, outside the item's fields; expected "
                "only elements (<summary>, <rating>, <text>, ...)"
            )

    def _end(self, name: str) -> None:
        if self.depth == 3 and self.field is not None:
            self.item[self.field] = "".join(self.chunks)
            self.field, self.chunks = None, []
        elif self.depth == 2:
            self._finish_item()
        self.depth -= 1

    def _finish_item(self) -> None:
        if "rating" not in self.item:
            raise DataFormatError(f"{self.where()}: no <rating>; expected a rating from 1.0 to 5.0")
        raw_rating = self.item["rating"].strip()
        rating_line = self.field_lines["rating"]
        if not _RATING.fullmatch(raw_rating):
            raise DataFormatError(
                f"{self.where()}: <rating> {raw_rating[:40]!r} (line {rating_line}) is not a number; "
                "expected a rating from 1.0 to 5.0"
            )
        rating = float(raw_rating)
        if not 1.0 <= rating <= 5.0:
            raise DataFormatError(
                f"{self.where()}: <rating> {raw_rating[:40]!r} (line {rating_line}) is outside 1 to 5; "
                "expected a rating from 1.0 to 5.0"
            )
        summary, text = (self.item.get(field, "") for field in ("summary", "text"))
        if "\ufeff" in summary + text:  # files joined together: never left inside a word
            self.marked_items.append(f"item {self.item_number} (line {self.item_line})")
            summary, text = summary.replace("\ufeff", ""), text.replace("\ufeff", "")
        summary, text = summary.strip(), text.strip()
        if not summary and not text:
            raise DataFormatError(
                f"{self.where()}: neither <summary> nor <text> holds text; expected at least one of them"
            )
        self.texts.append(f"{summary}\n{text}" if summary and text else summary or text)
        self.labels.append(int(rating > 3.0))
        self.ratings.append(rating)

    def parse(self, data: bytes) -> None:
        try:
            self.parser.Parse(data, True)
        except expat.ExpatError as error:
            raise DataFormatError(self._malformed(data, error)) from None
        except LookupError as error:  # an encoding declaration that Python does not know
            raise DataFormatError(f"{self.path}:1: malformed XML ({error}); {_EXPECTED_DOCUMENT}") from None

    def _malformed(self, data: bytes, error: expat.ExpatError) -> str:
        """The message for an expat error: its line and column, the item being read and, for declarations outside
        a DOCTYPE or bytes that are not UTF-8, the likely cause."""
        lines = data.split(b"\n")
        line = lines[error.lineno - 1] if 0 < error.lineno <= len(lines) else b""
        if line[error.offset :].lstrip().startswith((b"<!ENTITY", b"<!DOCTYPE")):
            return (
                f"{self.path}:{error.lineno}: the document declares an entity or DTD outside a DOCTYPE (expat: "
                f"{error}); refused: DTDs and entity declarations are not allowed in review files"
            )
        hint = ""
        if error.code == expat.errors.codes[expat.errors.XML_ERROR_INVALID_TOKEN] and not _OTHER_ENCODING.match(data):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as decode_error:
                hint = f"; the file is not valid UTF-8 (byte offset {decode_error.start})"
        inside = f" in item {self.item_number} (starting at line {self.item_line})" if self.depth >= 2 else ""
        return f"{self.path}:{error.lineno}: malformed XML{inside} (expat: {error}){hint}; {_EXPECTED_DOCUMENT}"


def read_webis_reviews(path: str | os.PathLike[str], language: str) -> datasets.Dataset:
    """Read a Webis-CLS-10 review file (`.review` or `.review.gz`) into a Dataset with columns `text`, `label`,
    `language` and `rating`.

    The file is UTF-8 XML `<items><item>…</item></items>`; each item holds a `<rating>` (1.0 to 5.0) and a
    `<summary>` and/or a `<text>`, in any order, besides fields that are ignored (`<category>`, `<asin>`, `<url>`,
    `<title>`, `<date>`, ...). `text` is the summary and the review text (each stripped) joined by a newline, or the
    one of them that is not empty. `label` is a `ClassLabel` over `SENTIMENT_LABELS`: positive when the rating is
    above 3, else negative. XML entities and character references are decoded once: the corpus's texts also hold
    HTML entities escaped a second time (`&amp;quot;` in the file reads as `&quot;`), which are kept as written.
    Byte-order marks (U+FEFF) inside a summary or text (files joined together) are removed, with a logged warning
    naming the items. The file is read whole: at most `files.MAX_DATA_BYTES` (after decompression) and
    `files.MAX_LINE_BYTES` per line.

    Args:
        path: the file; gzip-compressed when named `.gz` or starting with the gzip magic bytes.
        language: the language code stored in the `language` column.

    Raises:
        FileNotFoundError: the file does not exist.
        LanguageError: `language` is not a non-empty string.
        DataFormatError: the file is empty, binary, a corrupt gzip, too large, has a line too long, is not
            (well-formed) XML, declares a DTD or entities
            (refused: entity expansion), has no items, or an item without a rating, with a rating that is not a
            number from 1 to 5 or without summary and text; the message names the file, the line and the item.
    """
    path = Path(path)
    _check_language(language)
    data = read_data_bytes(path)
    if not data.strip():
        raise DataFormatError(f"{path}: empty file; {_EXPECTED_DOCUMENT}")
    if b"\x00" in data and not data.startswith(_UTF16_BOMS):
        raise DataFormatError(f"{path}: looks like a binary file (it contains NUL bytes), expected XML text")
    parser = _ReviewParser(path)
    parser.parse(data)
    if not parser.texts:
        raise DataFormatError(f"{path}: no <item> elements; {_EXPECTED_DOCUMENT}")
    if parser.marked_items:
        logger.warning(
            "%s: byte-order marks (U+FEFF) inside the texts of %d item(s) (files joined together?), removed: %s%s",
            path,
            len(parser.marked_items),
            ", ".join(parser.marked_items[:5]),
            " ..." if len(parser.marked_items) > 5 else "",
        )
    positive = sum(parser.labels)
    logger.info(
        "%s: %d reviews, %d positive, %d negative", path, len(parser.labels), positive, len(parser.labels) - positive
    )
    features = classification_features(SENTIMENT_LABELS)
    features["rating"] = datasets.Value("float32")
    return dataset_from_columns(
        {
            "text": parser.texts,
            "label": parser.labels,
            "language": [language] * len(parser.texts),
            "rating": parser.ratings,
        },
        features=features,
    )


def webis_file_path(folder: str | os.PathLike[str], language: str, domain: str, split: str) -> Path:
    """The Webis-CLS-10 review file of `language`, `domain` and `split` in `folder` (or `folder/webis-cls-10`):
    `<language folder>/<domain>/<split>.review.gz`, falling back to `<split>.review`. The language folder is the
    corpus's own name, `WEBIS_LANGUAGE_FOLDERS[language]` (`jp` for Japanese, `ja`).

    Raises:
        LanguageError: `language` is not one of the corpus's languages (`WEBIS_LANGUAGE_FOLDERS`).
        ValueError: `domain` is not one of `WEBIS_DOMAINS` or `split` not `train` / `test`.
        FileNotFoundError: no candidate exists; the message lists every path tried.
    """
    if language not in WEBIS_LANGUAGE_FOLDERS:
        known = sorted(WEBIS_LANGUAGE_FOLDERS)
        hint = " (the folder 'jp' holds Japanese, language code 'ja')" if language == "jp" else ""
        raise LanguageError(f"language {language!r} is not a Webis-CLS-10 language; known: {known}{hint}")
    if domain not in WEBIS_DOMAINS:
        raise ValueError(f"unknown Webis-CLS-10 domain {domain!r}; expected one of {list(WEBIS_DOMAINS)}")
    if split not in WEBIS_SPLITS:
        raise ValueError(f"unknown Webis-CLS-10 split {split!r}; expected one of {list(WEBIS_SPLITS)}")
    folder = Path(folder)
    relative = Path(WEBIS_LANGUAGE_FOLDERS[language], domain, f"{split}.review")
    tried = [
        base / relative.with_suffix(ext)
        for base in (folder, folder / "webis-cls-10")
        for ext in (".review.gz", ".review")
    ]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no Webis-CLS-10 file for language {language!r}, domain {domain!r}, split {split!r}; "
        f"tried: {', '.join(map(str, tried))}"
    )


# --- users' own data: CSV / TSV / JSON / JSONL files and Hub datasets -----------------------------------------------


def _data_file_suffix(path: Path) -> str | None:
    """The data-file suffix of `path` (`.csv`, ...; a compression suffix after it allowed), or None."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes and suffixes[-1] in _FILE_BUILDERS else None


def _labels_to_ids(
    values: list[Any], feature: Any, label_names: list[str] | None, source: str, label_column: str
) -> tuple[list[int], list[str]]:
    """The label ids and names of a label column: `ClassLabel` ids (remapped by name onto `label_names`), strings
    (names) or integers (ids into `label_names`, or into `LABEL_0..` names)."""
    if isinstance(feature, datasets.ClassLabel):
        source_names = feature.names
        names = label_names or list(source_names)
        index = {name: i for i, name in enumerate(names)}
        ids = []
        for row, value in enumerate(values):
            if value is None or not 0 <= value < len(source_names):
                raise DataFormatError(
                    f"{source}, row {row}: label id {value!r} is not an id of the {label_column!r} ClassLabel "
                    f"(names {source_names})"
                )
            if source_names[value] not in index:
                raise DataFormatError(
                    f"{source}, row {row}: label {source_names[value]!r} is not one of the label names {names}"
                )
            ids.append(index[source_names[value]])
        return ids, names
    dtype = getattr(feature, "dtype", None)
    if dtype in ("string", "large_string"):
        for row, value in enumerate(values):
            if value is None or not value.strip():
                raise DataFormatError(f"{source}, row {row}: empty or missing label {value!r}; expected a label name")
        names = label_names or sorted(set(values))
        index = {name: i for i, name in enumerate(names)}
        for row, value in enumerate(values):
            if value not in index:
                raise DataFormatError(f"{source}, row {row}: label {value!r} is not one of the label names {names}")
        return [index[value] for value in values], names
    if dtype in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
        for row, value in enumerate(values):
            if value is None or value < 0:
                raise DataFormatError(
                    f"{source}, row {row}: label {value!r}; expected an integer label id 0, 1, ... (or a label name)"
                )
        names = label_names or [f"LABEL_{i}" for i in range(max(values) + 1)]
        for row, value in enumerate(values):
            if value >= len(names):
                raise DataFormatError(
                    f"{source}, row {row}: label id {value} is outside the {len(names)} label names {names}"
                )
        return list(values), names
    raise DataFormatError(
        f"{source}: column {label_column!r} has type {feature}; expected label names (strings), integer label ids "
        "or a ClassLabel"
    )


def load_text_classification(
    path_or_name: str | os.PathLike[str],
    language: str,
    *,
    split: str = "train",
    text_column: str = "text",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    **load_kwargs: Any,
) -> datasets.Dataset:
    """Load users' own sentence-classification data: a local `.csv`, `.tsv`, `.json` or `.jsonl` file (maybe
    compressed, e.g. `.csv.gz`), or a Hub dataset (or anything else `datasets.load_dataset` accepts: a local dataset
    folder or script).

    Files are read with `datasets.load_dataset("csv" / "json", data_files=...)`; CSV / TSV cells are kept as written
    (`keep_default_na=False`: "NA" or an empty cell is text, not a null). Hub datasets with
    `datasets.load_dataset(path_or_name, split=split, **load_kwargs)`. Returns the columns `text`, `label` (a
    `ClassLabel`) and `language`; other columns are dropped.

    Label names: `label_names` when given (string labels must be among them, integer labels are ids into them,
    `ClassLabel` ids are remapped by name), else the names of a `ClassLabel` column, else the sorted distinct string
    labels, else (integer labels) `LABEL_0`, `LABEL_1`, ... up to the largest id.

    Args:
        path_or_name: a data file, or a dataset name for `datasets.load_dataset`.
        language: the language code stored in the `language` column.
        split: the split to load; for a file, the name of its one split.
        text_column: the column holding the texts.
        label_column: the column holding the labels.
        label_names: the `ClassLabel` names of `label`.
        **load_kwargs: more arguments of `datasets.load_dataset`, e.g. `name` (the configuration) or `cache_dir`.

    Raises:
        FileNotFoundError: a data file (a path with a data-file suffix, or an `os.PathLike`) does not exist.
        LanguageError: `language` is not a non-empty string.
        DataFormatError: a file of another type, or one `datasets` cannot parse; a missing text or label column (the
            message lists the columns present); an empty or missing text; a label that is missing or not in
            `label_names`; no rows. The message names the file or dataset and the row (0-based dataset index).
    """
    _check_language(language)
    names = _check_label_names(label_names)
    path = Path(path_or_name)
    suffix = _data_file_suffix(path)
    if path.is_file() or (not path.is_dir() and (suffix is not None or isinstance(path_or_name, os.PathLike))):
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        if suffix is None:
            raise DataFormatError(
                f"{path}: unsupported data file type; expected .csv, .tsv, .json or .jsonl (optionally compressed, "
                "e.g. .csv.gz), or a Webis .review / .review.gz file for read_webis_reviews"
            )
        source = str(path)
        if path.stat().st_size == 0:
            raise DataFormatError(f"{path}: empty file; expected rows with a text and a label")
        kind, options = _FILE_BUILDERS[suffix]
        try:
            dataset = datasets.load_dataset(
                kind, data_files={split: str(path)}, split=split, **{**options, **load_kwargs}
            )
        except datasets.exceptions.DatasetGenerationError as error:
            cause = error.__cause__ or error
            raise DataFormatError(
                f"{path}: cannot be read as a {suffix[1:].upper()} file ({type(cause).__name__}: {cause})"
            ) from error
        except (ValueError, StopIteration) as error:  # how `datasets` says a file has no rows (a header, `[]`, ...)
            if isinstance(error, ValueError) and "corresponds to no data" not in str(error):
                raise
            raise DataFormatError(f"{path}: no rows; expected rows with a text and a label") from error
    else:
        config = load_kwargs.get("name")
        source = f"dataset {str(path_or_name)!r} ({f'config {config!r}, ' if config else ''}split {split!r})"
        dataset = datasets.load_dataset(str(path_or_name), split=split, **load_kwargs)
    if not isinstance(dataset, datasets.Dataset):
        raise DataFormatError(f"{source}: expected one split (a Dataset), got {type(dataset).__name__}")
    for column, argument in ((text_column, "text_column"), (label_column, "label_column")):
        if column not in dataset.column_names:
            raise DataFormatError(f"{source} has no column {column!r} ({argument}); columns: {dataset.column_names}")
    if len(dataset) == 0:
        raise DataFormatError(f"{source}: no rows; expected rows with a text and a label")
    texts = dataset[text_column]
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataFormatError(
                f"{source}, row {row}: text {text!r} ({type(text).__name__}) in column {text_column!r}; "
                "expected a non-empty string"
            )
        if not text.strip():
            raise DataFormatError(f"{source}, row {row}: empty text {text!r} in column {text_column!r}")
    ids, names = _labels_to_ids(dataset[label_column], dataset.features[label_column], names, source, label_column)
    return dataset_from_columns(
        {"text": texts, "label": ids, "language": [language] * len(texts)}, features=classification_features(names)
    )
