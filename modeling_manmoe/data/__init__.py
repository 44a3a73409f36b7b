"""Data readers of `modeling_manmoe`: CoNLL-2002/2003 NER files and Hub token-classification datasets."""

from .conll import (
    CONLL_FILE_PREFIXES,
    CONLL_NER_LABELS,
    CONLL_SPLIT_SUFFIXES,
    TAG_SCHEMES,
    conll_file_path,
    iob1_to_iob2,
    load_hub_ner,
    ner_features,
    read_conll,
    starts_chunk_with_inside,
)

__all__ = [
    "CONLL_FILE_PREFIXES",
    "CONLL_NER_LABELS",
    "CONLL_SPLIT_SUFFIXES",
    "TAG_SCHEMES",
    "conll_file_path",
    "iob1_to_iob2",
    "load_hub_ner",
    "ner_features",
    "read_conll",
    "starts_chunk_with_inside",
]
