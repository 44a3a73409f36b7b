"""Evaluation metrics: entity-level F1 with `seqeval` (default mode = conlleval) and accuracy."""

from __future__ import annotations

import numpy as np


def predicted_tag_sequences(predictions: np.ndarray, labels: np.ndarray, id2label: dict[int, str]):
    """(N, T) predicted ids and gold ids (-100 = padding) -> lists of gold and predicted tag sequences."""
    gold, predicted = [], []
    for pred_row, gold_row in zip(predictions, labels, strict=True):
        keep = gold_row != -100
        gold.append([id2label[int(i)] for i in gold_row[keep]])
        predicted.append([id2label[int(i)] for i in pred_row[keep]])
    return gold, predicted


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (x100, `seqeval` default mode = conlleval) of tag-name sequences."""
    # imported here: seqeval imports scikit-learn and SciPy (~64 MiB resident), which training alone does not need
    from seqeval.metrics import f1_score, precision_score, recall_score

    return {
        "precision": 100 * precision_score(gold, predicted),
        "recall": 100 * recall_score(gold, predicted),
        "f1": 100 * f1_score(gold, predicted),
    }


def seqeval_metrics(eval_prediction, id2label: dict[int, str]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (x100) from an `EvalPrediction` of argmax tag ids."""
    predictions = eval_prediction.predictions
    predictions = predictions[0] if isinstance(predictions, tuple) else predictions
    gold, predicted = predicted_tag_sequences(np.asarray(predictions), np.asarray(eval_prediction.label_ids), id2label)
    return entity_scores(gold, predicted)


def accuracy_metrics(eval_prediction) -> dict[str, float]:
    """Accuracy (x100) of sentence classification from an `EvalPrediction` of label log-probabilities."""
    predictions = eval_prediction.predictions
    predictions = predictions[0] if isinstance(predictions, tuple) else predictions
    return {"accuracy": 100 * float((np.asarray(predictions).argmax(-1) == eval_prediction.label_ids).mean())}
