"""Checks that a dataset's labels are the model's labels (`config.id2label`) before it is trained on or scored.

A model predicts label ids; `config.id2label` names them. A dataset labelled with another label set (other names,
or the same names in another order) would be trained or scored silently wrong, so `ManMoeTrainer` calls
`check_label_names` on every labelled dataset it encodes.
"""

from __future__ import annotations

from collections.abc import Mapping

import datasets

from ..errors import LabelError

IGNORED_LABEL = -100  # the loss's ignore index: a position without a label


def check_label_names(dataset, id2label: Mapping, language: str, label_column: str) -> None:
    """Raise `LabelError` when the labels of `dataset[label_column]` are not the model's labels `id2label`.

    A `ClassLabel` column, or a sequence of them (the `ner_tags` of `read_conll`), must have exactly the names of
    `id2label` in id order. A model with the default names `LABEL_0`, `LABEL_1`, ... (no `id2label` was given)
    has unnamed labels: only their number is compared. Every id must then be one of the model's ids `0 ..
    len(id2label) - 1` (or -100, an ignored position): a column of plain ints is checked for this only. A
    dataset without the column is left alone (encoding it reports the missing column).

    Raises:
        LabelError: the names differ (the message names the language, the column and both label lists), or an
            id is out of range (the message names the row and the value).
    """
    if not id2label or label_column not in getattr(dataset, "column_names", []):
        return
    labels = {int(i): name for i, name in id2label.items()}  # keys are strings in a config.json
    names = [labels[i] for i in sorted(labels)]
    unnamed = all(labels[i] == f"LABEL_{i}" for i in labels)
    feature = dataset.features[label_column]
    inner = getattr(feature, "feature", feature)
    if (
        isinstance(inner, datasets.ClassLabel)
        and inner.names != names
        and not (unnamed and inner.num_classes == len(names))
    ):
        lacking = [name for name in inner.names if name not in names]
        raise LabelError(
            f"the {language!r} dataset's {label_column!r} labels {inner.names} differ from the model's labels "
            f"{names} (config.id2label){f'; the model has no {lacking}' if lacking else ''}: the ids would be "
            "trained or scored as the wrong labels. Train a new model on the dataset's labels, or map the data onto "
            "the model's label ids (e.g. read it again with read_conll(..., label_names=<the model's labels>))"
        )
    for row, value in enumerate(dataset[label_column]):
        for label_id in value if isinstance(value, list) else [value]:
            if label_id != IGNORED_LABEL and not (isinstance(label_id, int) and 0 <= label_id < len(names)):
                raise LabelError(
                    f"the {language!r} dataset's {label_column!r} column has label {label_id!r} at row {row}, not "
                    f"one of the model's {len(names)} label ids 0..{len(names) - 1} ({names}, config.id2label); fix the "
                    "data's label ids, or train a new model on its labels"
                )
