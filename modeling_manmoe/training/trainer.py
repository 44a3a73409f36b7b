"""`ManMoeTrainer`: adversarial multi-source training of MAN-MoE on top of `transformers.Trainer`."""

from __future__ import annotations

import contextlib
import math
import os
from collections import defaultdict

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, SequentialSampler
from transformers import Trainer, TrainerState
from transformers.trainer import OPTIMIZER_NAME, TRAINER_STATE_NAME
from transformers.trainer_pt_utils import nested_gather
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, PredictionOutput

from ..errors import LanguageError
from ..modeling_manmoe import ManMoeForTokenClassification
from ..tokenization_manmoe import collate_word_features
from .arguments import ManMoeTrainingArguments
from .batching import EncodedDataset, MultiSourceStepDataset, encode_sentences, first_item
from .checkpoints import (
    check_resume_fingerprint,
    read_checkpoint_record,
    resolve_resume_checkpoint,
    run_fingerprint,
    write_checkpoint_record,
)
from .labels import check_label_names
from .metaxl import meta_gradient, parameters_requiring_grad, rows_of
from .metrics import accuracy_metrics, seqeval_metrics

DISCRIMINATOR_OPTIMIZER = "discriminator_optimizer.pt"
META_OPTIMIZER = "meta_optimizer.pt"


class GradientReversal(torch.autograd.Function):
    """Identity forward; multiplies the gradient by -scale backward."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


class ManMoeTrainer(Trainer):
    """Trains a `ManMoeForTokenClassification` / `ManMoeForSequenceClassification` the MAN-MoE way.

    `train_dataset`: one `datasets.Dataset` per language (`{"en": ds, "de": ds, "es": ds, "nl": ds}`) with a
    `tokens` column; source languages (the model config's `source_languages`) also need the label column
    (`ner_tags` for tagging, `label` for classification); the unlabeled languages' labels, if any, are ignored.
    `eval_dataset`: `{language: Dataset}` with labels; evaluation reports each language, the target's score and
    the mean over sources, and `selection_score` (the one chosen by `args.model_selection`).
    `processing_class`: the `ManMoeTokenizer`.
    `feature_cache`: an `EncoderFeatureCache` (encoder mode): every dataset's frozen-encoder features are read from
    it (built once, the encoder on `args.device` unless the cache names its own `device`) instead of running the
    encoder at every step; without it the encoder runs live.
    """

    def __init__(self, model=None, args: ManMoeTrainingArguments | None = None, train_dataset=None,
                 eval_dataset=None, processing_class=None, compute_metrics=None, feature_cache=None, teachers=None,
                 teacher_cache=None, target_train_dataset=None, **kwargs):  # fmt: skip
        if args is None:
            args = ManMoeTrainingArguments(output_dir="manmoe_output")
        if not isinstance(args, ManMoeTrainingArguments):
            raise TypeError("ManMoeTrainer needs ManMoeTrainingArguments")
        if processing_class is None:
            raise ValueError("ManMoeTrainer needs processing_class=<ManMoeTokenizer> to encode the datasets")
        config = model.config
        for name in ("adversarial_lambda", "n_critic", "private_gate_loss_weight", "predictor_gate_loss_weight",
                     "distillation_alpha", "distillation_temperature", "target_distillation_weight",
                     "teacher_mixture"):  # fmt: skip
            if getattr(args, name) is not None:  # an override: the model's config records what was trained
                setattr(config, name, getattr(args, name))
        if feature_cache is not None and feature_cache.device is None:
            feature_cache.device = args.device  # the encoder builds the cache where training runs (a GPU if any)
        self.feature_cache = feature_cache
        self.teachers = teachers or {}
        if (config.distillation_alpha > 0 or config.target_distillation_weight > 0) and train_dataset and not teachers:
            raise ValueError("distillation (distillation_alpha or target_distillation_weight > 0) needs teachers: "
                             "one per source language (--teacher_models LANG=PATH ... or all=PATH)")  # fmt: skip
        if args.target_distillation_batches > 1 and config.target_distillation_weight == 0:
            raise ValueError(f"target_distillation_batches={args.target_distillation_batches} adds target rows for the "
                             "target distillation term, which is off: set target_distillation_weight > 0")  # fmt: skip
        if self.teachers:
            from .teachers import TeacherCache, members

            self.teacher_cache = teacher_cache or TeacherCache()
            if config.teacher_mixture == "gate" and config.target_distillation_weight > 0:
                counts = {lang: len(members(teacher)) for lang, teacher in self.teachers.items()}
                if len(set(counts.values())) > 1:
                    raise ValueError(f"teacher_mixture='gate' weights each source language's teachers by C's gate, "
                                     f"so every language needs as many ensemble members; got {counts}")  # fmt: skip
        self.is_tagging = isinstance(model, ManMoeForTokenClassification)
        self.label_column = "ner_tags" if self.is_tagging else "label"
        self.adversarial = config.use_adversary
        self.adversarial_lambda = config.adversarial_lambda
        self.n_critic = config.n_critic
        self.alternating = self.adversarial and args.adversarial_mode == "alternating"
        self.target_train_dataset = target_train_dataset or {}
        self.metaxl = model.manmoe.transformation is not None and bool(train_dataset)
        if self.metaxl and not self.target_train_dataset:
            raise ValueError("MetaXL (config.rtn_bottleneck) needs labeled target sentences: target_train_dataset "
                             "(--target_train_size N)")  # fmt: skip
        if self.metaxl:  # learned by the meta step alone (`training.metaxl.meta_gradient` asks for its gradient): the
            # model's own steps, and DDP, which expects a gradient for each parameter that requires one, leave it out
            model.manmoe.transformation.requires_grad_(False)
        train = self._encode_training_sets(train_dataset, processing_class, config, args) if train_dataset else None
        evaluation = None
        if eval_dataset is not None:
            if not isinstance(eval_dataset, dict):
                raise TypeError("eval_dataset must be a dict {language: datasets.Dataset}")
            for lang, ds in eval_dataset.items():
                check_label_names(ds, config.id2label, lang, self.label_column)
            evaluation = {
                lang: EncodedDataset(self.encode_dataset(ds, processing_class, lang, self.label_column), lang)
                for lang, ds in eval_dataset.items()
            }
        if compute_metrics is None:
            id2label = {int(k): v for k, v in config.id2label.items()}
            compute_metrics = (lambda p: seqeval_metrics(p, id2label)) if self.is_tagging else accuracy_metrics
        kwargs.setdefault("data_collator", collate_word_features)
        if self.is_tagging:
            kwargs.setdefault("preprocess_logits_for_metrics", lambda logits, labels: logits.argmax(-1))
        super().__init__(model=model, args=args, train_dataset=train, eval_dataset=evaluation,
                         processing_class=processing_class, compute_metrics=compute_metrics, **kwargs)  # fmt: skip
        self.discriminator_optimizer = None
        self.meta_optimizer = None
        self._running = defaultdict(list)

    # -- data ---------------------------------------------------------------------------------------------
    def encode_dataset(self, dataset, tokenizer, language: str, label_column: str | None) -> list[dict]:
        """`encode_sentences`; with a `feature_cache`, each sentence's cached encoder features instead of the live
        encoder's sub-token inputs."""
        items = encode_sentences(dataset, tokenizer, language, label_column, encoder_inputs=self.feature_cache is None)
        if self.feature_cache is not None:
            features = self.feature_cache.features(dataset["tokens"], description=language)
            for item, feature in zip(items, features, strict=True):
                item["input_features"] = feature
        return items

    def _encode_training_sets(self, datasets, tokenizer, config, args) -> MultiSourceStepDataset:
        if not isinstance(datasets, dict):
            raise TypeError("train_dataset must be a dict {language: datasets.Dataset}, one per language")
        unknown = sorted(set(datasets) - set(config.all_languages))
        if unknown:
            raise LanguageError(
                f"train_dataset has language(s) {unknown} not in the model config {config.all_languages}"
            )
        missing = [lang for lang in config.all_languages if lang not in datasets]
        if missing:
            raise LanguageError(f"train_dataset has no data for language(s) {missing} (config.all_languages)")
        for lang in config.source_languages:
            check_label_names(datasets[lang], config.id2label, lang, self.label_column)
        labeled = {
            lang: self.encode_dataset(datasets[lang], tokenizer, lang, self.label_column)
            for lang in config.source_languages
        }
        unlabeled = {
            lang: labeled[lang] if lang in labeled else self.encode_dataset(datasets[lang], tokenizer, lang, None)
            for lang in config.all_languages
        }
        for lang, dataset in self.target_train_dataset.items():  # a few labeled target sentences (joint, MetaXL)
            if lang not in config.unlabeled_languages:
                raise LanguageError(f"target_train_dataset: {lang!r} is not an unlabeled language of the model "
                                    f"{config.unlabeled_languages}")  # fmt: skip
            check_label_names(dataset, config.id2label, lang, self.label_column)
            labeled[lang] = self.encode_dataset(dataset, tokenizer, lang, self.label_column)
        self._attach_teacher_logits(config, datasets, labeled, unlabeled)
        return MultiSourceStepDataset(
            labeled,
            unlabeled,
            args.per_device_train_batch_size,
            self.n_critic if self.alternating else 0,
            args.seed,
            target_batches=args.target_distillation_batches,
        )

    def _attach_teacher_logits(self, config, datasets, labeled: dict, unlabeled: dict) -> None:
        """Distillation: each source sentence gets its language's teacher's logits (every member's, for a
        `TeacherEnsemble`; with `distillation_alpha` > 0); each sentence of an unlabeled-only language (the target)
        every source teacher's, in source order (with `target_distillation_weight` > 0), or, when every source has
        the same teacher (`all=PATH`) and the mixture is not "gate", that teacher's once (the same mixture; a third
        of the target rows' teacher logits with three sources). Computed once per dataset through the teacher cache."""
        from .teachers import encode_with_teachers

        if not self.teachers:
            return
        if config.distillation_alpha > 0:
            for lang in config.source_languages:
                logits = self.teacher_cache.member_logits(self.teachers[lang], datasets[lang]["tokens"], lang, lang)
                encode_with_teachers(labeled[lang], logits)
        if config.target_distillation_weight > 0:
            sources = list(config.source_languages)
            if config.teacher_mixture != "gate" and len({self.teachers[s].weights_sha256 for s in sources}) == 1:
                sources = sources[:1]  # one teacher for all: its copies would only repeat it in the mixture
            for lang in config.unlabeled_languages:
                logits = [values for source in sources
                          for values in self.teacher_cache.member_logits(self.teachers[source], datasets[lang]["tokens"],
                                                                         lang, f"{source} on {lang}")]  # fmt: skip
                encode_with_teachers(unlabeled[lang], logits)

    def get_train_dataloader(self) -> DataLoader:
        """Each loader item is one whole step (see `MultiSourceStepDataset`); order is fixed for exact resumes."""
        loader = DataLoader(
            self.train_dataset,
            batch_size=1,
            sampler=SequentialSampler(self.train_dataset),
            collate_fn=first_item,
            num_workers=self.args.dataloader_num_workers,
        )
        return self.accelerator.prepare(loader)

    def _get_eval_sampler(self, eval_dataset):
        """Evaluation and prediction of encoded sentences in one process read them longest first
        (`_evaluation_order`): each batch then holds sentences of similar lengths, so the BiLSTMs take fewer time
        steps per sentence (CoNLL's `ned.testa` at 256 per batch: 207 instead of 692). `predict` gives its rows back
        in the dataset's order."""
        order = self._evaluation_order(eval_dataset)
        return super()._get_eval_sampler(eval_dataset) if order is None else order

    def _evaluation_order(self, dataset) -> list[int] | None:
        """`longest_first(dataset)` in one process; None (the `Trainer`'s own order) with several."""
        return None if self.args.world_size > 1 else longest_first(dataset)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test") -> PredictionOutput:
        """`Trainer.predict`, its `predictions` and `label_ids` rows in the order of `test_dataset` (the batches were
        read longest first, see `_get_eval_sampler`)."""
        output = super().predict(test_dataset, ignore_keys, metric_key_prefix)
        order = self._evaluation_order(test_dataset)
        if order is None:
            return output
        rows = np.empty(len(order), dtype=np.int64)
        rows[order] = np.arange(len(order))  # row i of the dataset is row rows[i] of the output

        def in_dataset_order(values):
            if isinstance(values, (tuple, list)):
                return type(values)(in_dataset_order(value) for value in values)
            return values if values is None else values[rows]

        return PredictionOutput(
            predictions=in_dataset_order(output.predictions),
            label_ids=in_dataset_order(output.label_ids),
            metrics=output.metrics,
        )

    # -- optimizers ---------------------------------------------------------------------------------------
    def create_optimizer(self, model=None):
        """Adam as in the reference. Alternating mode: D gets its own Adam; gradient reversal: D is a parameter
        group of the one optimizer (with the discriminator's learning rate and weight decay)."""
        if self.optimizer is not None:
            return self.optimizer
        model = self.accelerator.unwrap_model(model or self.model)
        discriminator, transformation = model.manmoe.discriminator, model.manmoe.transformation
        d_params = [p for p in discriminator.parameters() if p.requires_grad] if discriminator is not None else []
        meta_params = list(transformation.parameters()) if transformation is not None else []
        d_ids = {id(p) for p in d_params + meta_params}  # the RTN is learned by the meta step alone
        main = [p for p in model.parameters() if p.requires_grad and id(p) not in d_ids]
        args = self.args
        d_group = {
            "params": d_params,
            "lr": _pick(args.discriminator_learning_rate, args.learning_rate),
            "weight_decay": _pick(args.discriminator_weight_decay, args.weight_decay),
        }
        groups = [{"params": main}]
        if d_params and not self.alternating:
            groups.append(d_group)
        betas = (args.adam_beta1, args.adam_beta2)
        self.optimizer = torch.optim.Adam(
            groups, lr=args.learning_rate, betas=betas, eps=args.adam_epsilon, weight_decay=args.weight_decay
        )
        if d_params and self.alternating:
            self.discriminator_optimizer = torch.optim.Adam([d_group], betas=betas, eps=args.adam_epsilon)
        if meta_params:
            self.meta_optimizer = torch.optim.Adam(meta_params, lr=args.meta_learning_rate, betas=betas,
                                                   eps=args.adam_epsilon)  # fmt: skip
        return self.optimizer

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        super()._save_optimizer_and_scheduler(output_dir)
        if self.discriminator_optimizer is not None and self.args.should_save:
            torch.save(self.discriminator_optimizer.state_dict(), os.path.join(output_dir, DISCRIMINATOR_OPTIMIZER))
        if self.meta_optimizer is not None and self.args.should_save:
            torch.save(self.meta_optimizer.state_dict(), os.path.join(output_dir, META_OPTIMIZER))

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        self._load_meta_optimizer(checkpoint)
        if checkpoint is None or self.discriminator_optimizer is None:
            return
        path = os.path.join(checkpoint, DISCRIMINATOR_OPTIMIZER)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"checkpoint {checkpoint} has no {DISCRIMINATOR_OPTIMIZER} (alternating mode)")
        state = torch.load(path, map_location=self.args.device, weights_only=True)
        self.discriminator_optimizer.load_state_dict(state)

    def _load_meta_optimizer(self, checkpoint: str | None) -> None:
        if checkpoint is None or self.meta_optimizer is None:
            return
        path = os.path.join(checkpoint, META_OPTIMIZER)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"checkpoint {checkpoint} has no {META_OPTIMIZER} (MetaXL)")
        self.meta_optimizer.load_state_dict(torch.load(path, map_location=self.args.device, weights_only=True))

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, **kwargs):
        """`Trainer.train`, where `resume_from_checkpoint=True` (or "last") takes the newest *complete* checkpoint
        of `output_dir`, skipping one left half-written by a killed run; an explicit checkpoint that lacks a file
        resuming needs (the discriminator's and the MetaXL meta optimizer's states included) is refused with a
        `CheckpointError`, and so is one saved under another run fingerprint (other languages or language order,
        labels, inputs or tokenizer: see `set_run_fingerprint`), listing each difference. `max_steps=0` is refused (`check_max_steps`).

        The checkpoint resumed from and its step (None for a fresh start) are kept in `self.resumed_from_checkpoint`
        and `self.resumed_at_step`. `self.train_loss_record` holds the mean training loss of the whole run, the steps
        before a resume included (`train_loss`), and the steps it covers (`train_loss_steps`, [first, last]): after a
        resume from a checkpoint that recorded no loss, the resumed steps only."""
        self.check_max_steps(self.args)
        required = () if self.args.save_only_model else (OPTIMIZER_NAME,)
        if self.alternating:
            required += (DISCRIMINATOR_OPTIMIZER,)
        if self.metaxl:
            required += (META_OPTIMIZER,)
        checkpoint = resolve_resume_checkpoint(resume_from_checkpoint, self.args.output_dir, required)
        self.resumed_from_checkpoint, self.resumed_at_step = checkpoint, None  # for the run record
        self._loss_before_resume = (0.0, 1)  # the sum of the losses of the steps before this call, and the first step
        if checkpoint:  # read now: the checkpoint may be rotated away during training
            self.resumed_at_step = TrainerState.load_from_json(os.path.join(checkpoint, TRAINER_STATE_NAME)).global_step
            record = read_checkpoint_record(checkpoint)
            check_resume_fingerprint(checkpoint, record, self.current_run_fingerprint())
            steps = (record or {}).get("train_loss_steps")
            if isinstance(steps, list) and len(steps) == 2 and steps[1] == self.resumed_at_step:
                self._loss_before_resume = (float(record["train_loss_sum"]), int(steps[0]))
            else:
                self._loss_before_resume = (0.0, self.resumed_at_step + 1)
        output = super().train(resume_from_checkpoint=checkpoint, trial=trial, **kwargs)
        loss_sum, first = self._loss_before_resume
        last = self.state.global_step
        loss_sum += output.training_loss * (last - (self.resumed_at_step or 0))  # the Trainer's mean of this call
        covered = last - first + 1
        self.train_loss_record = {"train_loss": loss_sum / covered if covered > 0 else None,
                                  "train_loss_steps": [first, last] if covered > 0 else None}  # fmt: skip
        return output

    @staticmethod
    def check_max_steps(args) -> None:
        """Refuse `max_steps=0`, which the Trainer reads as 'no limit given' and still trains a step with."""
        if args.max_steps == 0:
            raise ValueError("max_steps=0 (--max_steps 0): the Trainer would still train one step; give a positive "
                             "number of steps, -1 to train for num_train_epochs, or leave out --do_train to only "
                             "evaluate")  # fmt: skip

    def set_run_fingerprint(self, fingerprint: dict) -> None:
        """What this run's checkpoints record and a resume must match (`checkpoints.run_fingerprint`). The example
        scripts give the whole fingerprint: the config's part, the tokenizer's settings and the sha256 of the vector
        files or the encoder. Without it, the config's part alone."""
        self._run_fingerprint = fingerprint

    def current_run_fingerprint(self) -> dict:
        """The fingerprint given to `set_run_fingerprint`, else that of the model's config."""
        fingerprint = getattr(self, "_run_fingerprint", None)
        if fingerprint is None:
            fingerprint = run_fingerprint(self.accelerator.unwrap_model(self.model).config)
        return fingerprint

    def _save_checkpoint(self, model, trial) -> None:
        """`Trainer._save_checkpoint`, with the checkpoint's record (`manmoe_checkpoint.json`: the run fingerprint and
        the sum of the training losses up to this step) written first: `trainer_state.json`, written last, marks the
        checkpoint complete."""
        loss_sum, first = getattr(self, "_loss_before_resume", (0.0, 1))
        unlogged = getattr(self, "_tr_loss", None)  # the losses since the last log (all processes take part)
        unlogged = 0.0 if unlogged is None else nested_gather(unlogged, self.args.parallel_mode).mean().item()
        if self.args.should_save:
            step = self.state.global_step
            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{step}")
            loss_sum += self._total_loss_scalar + unlogged
            write_checkpoint_record(folder, self.current_run_fingerprint(), loss_sum, [first, step])
        super()._save_checkpoint(model, trial)

    # -- one step -----------------------------------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None):
        """Alternating mode: `n_critic` discriminator steps on detached shared features of D's own batches, then
        the Trainer's usual step of everything else (with -lambda x D loss)."""
        inputs = self._prepare_inputs(inputs)
        critic = inputs.pop("critic", [])
        if self.alternating:  # D trains even with lambda = 0 (then it only measures the features)
            for batch in critic:
                self._discriminator_step(model, batch)
        if self.metaxl:
            self._meta_step(model, inputs)
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.alternating:  # with several processes DDP computed D's gradients (see _discriminator_as_constant):
            for param in self.accelerator.unwrap_model(model).manmoe.discriminator.parameters():
                param.grad = None  # clipping and the main optimizer see the same gradients as with one process
        return loss

    def _meta_step(self, model, inputs: dict) -> None:
        """MetaXL: one Adam step of the representation transformation on the look-ahead meta-gradient
        (`training.metaxl.meta_gradient`): a virtual SGD step (learning rate `learning_rate`) on the step's source
        rows, transformed, judged by the loss on its labeled target rows."""
        unwrapped = self.accelerator.unwrap_model(model)
        unwrapped.train()
        is_labeled, lang_ids = inputs["is_labeled"], inputs["lang_ids"]
        sources = is_labeled & (lang_ids < unwrapped.config.num_experts)
        targets = is_labeled & ~sources
        if not bool(targets.any()) or not bool(sources.any()):
            return
        batch = _model_inputs(inputs) | {"labels": inputs["labels"], "lang_ids": lang_ids}
        source = rows_of(batch, sources) | {"transform_rows": torch.ones(int(sources.sum()), dtype=torch.bool)}
        grads = meta_gradient(unwrapped, source, rows_of(batch, targets), self.args.learning_rate,
                              method=self.args.meta_gradient)  # fmt: skip
        if self.accelerator.num_processes > 1:
            grads = [self.accelerator.reduce(grad, reduction="mean") for grad in grads]
        self.meta_optimizer.zero_grad(set_to_none=True)
        for param, grad in zip(unwrapped.manmoe.transformation.parameters(), grads, strict=True):
            param.grad = grad
        self.meta_optimizer.step()
        self.meta_optimizer.zero_grad(set_to_none=True)
        self._running["meta_grad_norm"].append(float(torch.sqrt(sum((grad * grad).sum() for grad in grads))))
        up = unwrapped.manmoe.transformation.up_weight
        self._running["rtn_norm"].append(float(up.detach().norm()))

    def _discriminator_step(self, model, batch: dict) -> None:
        unwrapped = self.accelerator.unwrap_model(model)
        unwrapped.train()
        lang_ids, features = batch["lang_ids"], _model_inputs(batch)
        with torch.no_grad():
            shared = unwrapped.manmoe.shared_features(**features)
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        loss, _ = self._language_loss(unwrapped, shared, lang_ids, features["attention_mask"], reverse=None)
        loss.backward()
        if self.accelerator.num_processes > 1:
            for param in unwrapped.manmoe.discriminator.parameters():
                if param.grad is not None:
                    param.grad = self.accelerator.reduce(param.grad, reduction="mean")
        self.discriminator_optimizer.step()
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        self._running["critic_d_loss"].append(loss.item())

    def _language_loss(self, model, shared, lang_ids, attention_mask, reverse: float | None):
        """Sum over languages of the mean NLL of D on that language's rows; each language's rows are read up to
        their own longest sentence, as if they were their own batch (D reads padding, as in the reference), in one
        D pass over all rows."""
        lengths = attention_mask.sum(-1)
        longest = lengths.new_zeros(int(lang_ids.max()) + 1).scatter_reduce(0, lang_ids, lengths, reduce="amax")
        features = shared[:, : int(lengths.max())]
        if reverse is not None:
            features = GradientReversal.apply(features, reverse)
        log_probs = model.manmoe.discriminator(features, longest[lang_ids], word_counts=lengths)
        total, correct = shared.new_zeros(()), {}
        for lang_id in lang_ids.unique().tolist():
            rows = lang_ids == lang_id
            targets = lang_ids[rows]
            total = total + nn.functional.nll_loss(log_probs[rows], targets)
            correct[lang_id] = (log_probs[rows].argmax(-1) == targets).float().mean().item()
        return total, correct

    def _discriminator_as_constant(self, model):
        """In alternating mode D is updated only by its own steps, so the adversarial term needs no gradient for D's
        parameters: record it with them as constants (the gradient reaching h_s is the same bit for bit; D's weight
        gradients, which `_discriminator_step` would discard, are not computed). Several processes keep them: DDP
        expects a gradient for every parameter it wraps (`ddp_find_unused_parameters=False`)."""
        if not self.alternating or self.accelerator.num_processes > 1:
            return contextlib.nullcontext()
        return _parameters_as_constants(model.manmoe.discriminator)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The model's objective on the step's labeled rows (`manmoe_objective`, returned by the model with its
        parts, which are logged) plus what needs the trainer: the adversarial term on the unlabeled rows (-lambda x
        D loss in alternating mode; the D loss through gradient reversal, whose backward scales by -lambda)."""
        if "is_labeled" not in inputs:  # evaluation batches
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        unwrapped = self.accelerator.unwrap_model(model)
        config = unwrapped.config
        is_labeled, lang_ids = inputs["is_labeled"], inputs["lang_ids"]
        teachers = {key: inputs[key] for key in ("teacher_logits", "teacher_mask") if key in inputs}
        # F_p and C run on the task rows only (the labeled ones, and those with teachers to learn from); every row
        # gets h_s for the adversarial term
        task_rows = is_labeled | teachers["teacher_mask"].any(1) if teachers else is_labeled
        transformation, transform_rows = unwrapped.manmoe.transformation, None
        if transformation is not None:  # MetaXL: the source rows' E(x) transformed (the RTN requires no gradient)
            transform_rows = is_labeled & (lang_ids < config.num_experts)
        outputs = model(**_model_inputs(inputs), labels=inputs["labels"], lang_ids=lang_ids, **teachers,
                        output_shared_features=True, task_rows=task_rows, transform_rows=transform_rows)  # fmt: skip
        loss = outputs.loss
        self._log_per_language(config, outputs)
        if teachers:
            self._running["distillation_loss"].append(outputs.distillation_loss.item())
        if self.adversarial:  # with lambda = 0 the term is zero but D accuracy is still logged
            rows = ~is_labeled
            reverse = None if self.alternating else self.adversarial_lambda
            with self._discriminator_as_constant(unwrapped):
                d_loss, accuracy = self._language_loss(
                    unwrapped, outputs.shared_features[rows], lang_ids[rows], inputs["attention_mask"][rows], reverse
                )
            loss = loss - self.adversarial_lambda * d_loss if self.alternating else loss + d_loss
            self._running["d_loss"].append(d_loss.item())
            for lang_id, value in accuracy.items():
                self._running[f"d_acc_{config.all_languages[lang_id]}"].append(value)
        return (loss, outputs) if return_outputs else loss

    def _log_per_language(self, config, outputs) -> None:
        """Keep the objective's per-language parts for the next training log (running means): each labeled
        language's NLL (the sources', and a few-shot target's) and each source's gate accuracies."""
        parts = {"task_loss": outputs.task_loss_per_language, "private_gate_acc": outputs.private_gate_accuracy,
                 "predictor_gate_acc": outputs.predictor_gate_accuracy}  # fmt: skip
        values = {name: part.tolist() for name, part in parts.items() if part is not None}
        for k, language in enumerate(config.all_languages):
            for name, per_language in values.items():
                if not math.isnan(per_language[k]):
                    self._running[f"{name}_{language}"].append(per_language[k])

    # -- logging and evaluation ---------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._running:  # a training log: add the running means since the last one
            logs.update({key: round(float(np.mean(values)), 4) for key, values in sorted(self._running.items())})
            self._running.clear()
        super().log(logs, start_time)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Evaluate every language of `eval_dataset` (default: the trainer's) and add the target's score, the
        mean over source languages and `selection_score` (by `args.model_selection`)."""
        datasets = eval_dataset if eval_dataset is not None else self.eval_dataset
        if not isinstance(datasets, dict):
            return super().evaluate(datasets, ignore_keys, metric_key_prefix)
        metrics = {}
        for language, dataset in datasets.items():
            metrics.update(super().evaluate(dataset, ignore_keys, f"{metric_key_prefix}_{language}"))
        config = self.accelerator.unwrap_model(self.model).config
        score = "f1" if self.is_tagging else "accuracy"
        summary = {}
        sources = [metrics[f"{metric_key_prefix}_{lang}_{score}"] for lang in config.source_languages
                   if f"{metric_key_prefix}_{lang}_{score}" in metrics]  # fmt: skip
        if sources:
            summary[f"{metric_key_prefix}_source_mean_{score}"] = float(np.mean(sources))
        targets = [lang for lang in config.unlabeled_languages if f"{metric_key_prefix}_{lang}_{score}" in metrics]
        if targets:
            summary[f"{metric_key_prefix}_target_{score}"] = metrics[f"{metric_key_prefix}_{targets[0]}_{score}"]
        chosen = "target" if self.args.model_selection == "target" else "source_mean"
        if f"{metric_key_prefix}_{chosen}_{score}" in summary:
            summary[f"{metric_key_prefix}_selection_score"] = summary[f"{metric_key_prefix}_{chosen}_{score}"]
        self.log(summary)
        metrics.update(summary)
        return metrics


def longest_first(dataset) -> list[int] | None:
    """The rows of an `EncodedDataset` by decreasing word count (ties in dataset order), or None for another
    dataset."""
    if not isinstance(dataset, EncodedDataset):
        return None
    return sorted(range(len(dataset)), key=lambda row: -len(dataset.items[row]["input_ids"]))


def _parameters_as_constants(module: nn.Module):
    """Inside: `module`'s parameters do not require grad, so the operations recorded then compute no gradient for
    them (the graph keeps that after the flags are restored on exit)."""
    return parameters_requiring_grad(list(module.parameters()), False)


def _model_inputs(batch: dict) -> dict:
    """The input tensors of a MAN-MoE forward in a step's batch (labels and languages are passed apart)."""
    keys = ("input_ids", "char_ids", "attention_mask", "encoder_input_ids", "encoder_attention_mask",
            "encoder_word_ids", "input_features")  # fmt: skip
    return {key: batch[key] for key in keys if key in batch}


def _pick(value, default):
    return default if value is None else value
