"""Data readers of `modeling_manmoe`: CoNLL-2002/2003 NER files, Hub token-classification datasets, Webis-CLS-10
sentiment reviews and users' own sentence-classification files or Hub datasets."""

from .classification import (
    SENTIMENT_LABELS,
    WEBIS_DOMAINS,
    WEBIS_LANGUAGE_FOLDERS,
    classification_features,
    load_text_classification,
    read_webis_reviews,
    webis_file_path,
)
from .conll import (
    CONLL_FILE_PREFIXES,
    CONLL_NER_LABELS,
    CONLL_SPLIT_SUFFIXES,
    TAG_SCHEMES,
    check_ner_label_names,
    conll_entity_types,
    conll_file_path,
    iob1_to_iob2,
    iobes_to_iob2,
    load_hub_ner,
    ner_features,
    ner_label_names,
    read_conll,
    starts_chunk_with_inside,
)

__all__ = [
    "CONLL_FILE_PREFIXES",
    "CONLL_NER_LABELS",
    "CONLL_SPLIT_SUFFIXES",
    "SENTIMENT_LABELS",
    "TAG_SCHEMES",
    "WEBIS_DOMAINS",
    "WEBIS_LANGUAGE_FOLDERS",
    "check_ner_label_names",
    "classification_features",
    "conll_entity_types",
    "conll_file_path",
    "iob1_to_iob2",
    "iobes_to_iob2",
    "load_hub_ner",
    "load_text_classification",
    "ner_features",
    "ner_label_names",
    "read_conll",
    "read_webis_reviews",
    "starts_chunk_with_inside",
    "webis_file_path",
]
