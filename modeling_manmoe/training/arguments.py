"""`ManMoeTrainingArguments`: `TrainingArguments` with the adversarial knobs and the paper's defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from .metaxl import META_GRADIENTS

ADVERSARIAL_MODES = ("alternating", "gradient_reversal")
MODEL_SELECTIONS = ("target", "source_mean")


@dataclass
class ManMoeTrainingArguments(TrainingArguments):
    """Training arguments of MAN-MoE. Defaults reproduce the paper: Adam (L2 weight decay, not AdamW), learning rate
    1e-3, weight decay 1e-8, no gradient clipping, constant learning rate, batch 16 per language, alternating
    updates with n_critic 1. Knobs left at None take the model config's value (`adversarial_lambda`, `n_critic`,
    gate loss weights)."""

    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate (paper: 1e-3)."})
    weight_decay: float = field(default=1e-8, metadata={"help": "Adam L2 weight decay (paper: 1e-8)."})
    max_grad_norm: float = field(default=0.0, metadata={"help": "Gradient clipping norm; 0 disables (paper)."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "Paper: no learning-rate decay."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Sentences per language per step."})
    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={"help": "Every parameter gets a gradient each step (D through the adversarial term): False."},
    )

    adversarial_mode: str = field(
        default="alternating",
        metadata={
            "help": "'alternating' (paper: n_critic steps of D with its own Adam, then one step of the rest with "
            "-lambda x D loss) or 'gradient_reversal' (one optimizer, a gradient-reversal layer)."
        },
    )
    adversarial_lambda: float | None = field(default=None, metadata={"help": "lambda; None = model config (0.002)."})
    n_critic: int | None = field(default=None, metadata={"help": "D steps per step; None = model config (1)."})
    discriminator_learning_rate: float | None = field(default=None, metadata={"help": "None = learning_rate."})
    discriminator_weight_decay: float | None = field(default=None, metadata={"help": "None = weight_decay."})
    private_gate_loss_weight: float | None = field(default=None, metadata={"help": "None = model config (0.01)."})
    predictor_gate_loss_weight: float | None = field(default=None, metadata={"help": "None = model config (0.01)."})
    distillation_alpha: float | None = field(
        default=None,
        metadata={"help": "alpha: weight of T^2 x KL(teacher || student) on the labeled source rows (needs "
                  "--teacher_models); None = model config (0: off)."},
    )  # fmt: skip
    distillation_temperature: float | None = field(
        default=None, metadata={"help": "T: the distillation temperature; None = model config (1)."}
    )
    target_distillation_weight: float | None = field(
        default=None,
        metadata={"help": "beta: weight of T^2 x KL(mixture of the teachers || student) on the unlabeled target rows; "
                  "None = model config (0: off)."},
    )  # fmt: skip
    target_distillation_batches: int = field(
        default=1,
        metadata={"help": "Unlabeled target batches (of per_device_train_batch_size sentences) per step for the "
                  "target distillation term: k passes over the target's sentences in the steps one takes at 1; "
                  "> 1 needs target_distillation_weight > 0."},
    )  # fmt: skip
    teacher_mixture: str | None = field(
        default=None,
        metadata={"help": "How teachers are mixed on the target: 'uniform', 'confidence' or 'gate' (C's gate "
                  "weights); None = model config ('uniform')."},
    )  # fmt: skip
    meta_learning_rate: float = field(
        default=1e-3, metadata={"help": "MetaXL: Adam learning rate of the representation transformation network."}
    )
    meta_gradient: str = field(
        default="finite_difference",
        metadata={"help": "MetaXL: 'finite_difference' (the look-ahead meta-gradient from first-order gradients, "
                  "DARTS's central difference: the fast kernels, the memory of a training step) or 'exact' "
                  "(through the virtual step by a double backward, as MetaXL's code: the plain torch modules, "
                  "more time and memory)."},
    )  # fmt: skip
    model_selection: str = field(
        default="target",
        metadata={
            "help": "'target': best checkpoint by the target language's dev score (the paper); 'source_mean': by "
            "the mean of the source languages' dev scores (strictly zero-resource)."
        },
    )

    def __post_init__(self):
        if not self.use_cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1 and not _has_accelerator():
            # several launched processes on a machine without an accelerator: without use_cpu the Trainer would
            # not run data-parallel (gloo) but train one independent copy per process
            self.use_cpu = True
        if self.metric_for_best_model is None:  # before the parent's, which would pick "loss" for load_best_model
            self.metric_for_best_model = "selection_score"
            self.greater_is_better = True if self.greater_is_better is None else self.greater_is_better
        super().__post_init__()
        if self.adversarial_mode not in ADVERSARIAL_MODES:
            raise ValueError(f"adversarial_mode={self.adversarial_mode!r}; expected one of {list(ADVERSARIAL_MODES)}")
        if self.meta_gradient not in META_GRADIENTS:
            raise ValueError(f"meta_gradient={self.meta_gradient!r}; expected one of {list(META_GRADIENTS)}")
        if self.model_selection not in MODEL_SELECTIONS:
            raise ValueError(f"model_selection={self.model_selection!r}; expected one of {list(MODEL_SELECTIONS)}")
        if self.adversarial_lambda is not None and self.adversarial_lambda < 0:
            raise ValueError(f"adversarial_lambda must be >= 0, got {self.adversarial_lambda}")
        if self.n_critic is not None and self.n_critic <= 0:
            raise ValueError(f"n_critic must be positive in alternating mode, got {self.n_critic}")
        if self.per_device_train_batch_size <= 0:
            raise ValueError(f"per_device_train_batch_size must be positive, got {self.per_device_train_batch_size}")
        if self.target_distillation_batches <= 0:
            raise ValueError(f"target_distillation_batches must be positive, got {self.target_distillation_batches}")
        if self.torch_compile:  # also set by torch_compile_backend / torch_compile_mode
            raise ValueError(
                "torch_compile=True is not supported: the model's shapes depend on the data (packed BiLSTMs, "
                "per-real-word experts), so dynamo recompiles per batch, and with torch 2.13 on CPU the first "
                "backward fails inside inductor; compiled inference measured no faster (benchmarks/README.md)"
            )


@dataclass
class PaperScheduleArguments(ManMoeTrainingArguments):
    """`ManMoeTrainingArguments` with the paper's whole schedule as defaults, the one home of those values: 15,000
    steps at learning rate 1e-3, the dev sets scored after every epoch, a checkpoint at each evaluation, and the best
    one by `model_selection` (the target's dev score) kept. `--eval_strategy steps --eval_steps N` alone also
    checkpoints every N steps, which keeping the best needs."""

    max_steps: int = field(default=15000, metadata={"help": "Training steps (paper: 15,000)."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to score the dev sets (paper: every epoch)."})
    save_strategy: str = field(default="epoch", metadata={"help": "Checkpoint at each evaluation."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Keep the best dev checkpoint (paper)."})
    save_total_limit: int | None = field(default=1, metadata={"help": "Checkpoints kept besides the best one."})
    logging_steps: float = field(default=100, metadata={"help": "Log every N steps."})
    per_device_eval_batch_size: int = field(default=128, metadata={"help": "Sentences per evaluation batch."})

    def __post_init__(self):
        if self.load_best_model_at_end and self.eval_strategy == "steps" and self.eval_steps:
            self.save_strategy, self.save_steps = "steps", self.eval_steps
        super().__post_init__()


def _has_accelerator() -> bool:
    """True when torch sees a GPU or another accelerator."""
    accelerator = getattr(torch, "accelerator", None)
    return bool(accelerator.is_available()) if accelerator is not None else torch.cuda.is_available()
