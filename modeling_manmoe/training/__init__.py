"""Training MAN-MoE with the HF `Trainer`: arguments, multi-source batching, the adversarial trainer, metrics."""

from .arguments import ManMoeTrainingArguments, PaperScheduleArguments
from .batching import EncodedDataset, MultiSourceStepDataset, encode_sentences
from .metrics import accuracy_metrics, seqeval_metrics
from .trainer import ManMoeTrainer

__all__ = [
    "EncodedDataset",
    "ManMoeTrainer",
    "ManMoeTrainingArguments",
    "MultiSourceStepDataset",
    "PaperScheduleArguments",
    "accuracy_metrics",
    "encode_sentences",
    "seqeval_metrics",
]
