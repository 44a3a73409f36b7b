"""MAN-MoE models: `ManMoeModel` (features, gates, language discriminator) and thin task heads."""

from __future__ import annotations

import contextvars
import functools
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .char_cnn import CharCNN
from .configuration_manmoe import ManMoeConfig
from .discriminator import LanguageDiscriminator
from .encoder_inputs import EncoderInputs, LayerMix
from .errors import ManMoeConfigError
from .extractors import PrivateFeatureExtractor, SharedFeatureExtractor
from .input_embeddings import InputEmbeddings, build_input_embeddings
from .mixture_of_experts import BatchedExperts
from .predictors import MoESentenceClassifier, MoETagger
from .real_words import RealWords
from .representation_transformation import RepresentationTransformation
from .word_vector_inputs import FrozenWordEmbedding, WordVectorInputs

BUILT_IN_INPUTS = (WordVectorInputs, EncoderInputs)  # registered on import (`input_embeddings.INPUT_EMBEDDINGS`)


@dataclass
class ManMoeModelOutput(ModelOutput):
    """
    last_hidden_state: (batch, words, shared_hidden_size + private_hidden_size), [h_s ; h_p].
    shared_features: (batch, words, shared_hidden_size), h_s (what the discriminator reads).
    private_gate_logits: (batch, words, num_experts), F_p's gate; None without the private mixture.
    language_logits: (batch, num_languages), D's log-probabilities; only when asked for.
    """

    last_hidden_state: torch.FloatTensor | None = None
    shared_features: torch.FloatTensor | None = None
    private_gate_logits: torch.FloatTensor | None = None
    language_logits: torch.FloatTensor | None = None


@dataclass
class RealWordFeatures:
    """`ManMoeModel.real_word_features`: the features of the real words only, never padded (`RealWords`).

    features: [h_s ; h_p] of the task rows' words (num_words, shared_hidden_size + private_hidden_size).
    shared: h_s of every row's words (all words, shared_hidden_size).
    private_gate_logits: F_p's gate on the task rows' words (num_words, num_experts), or None.
    """

    features: RealWords
    shared: RealWords
    private_gate_logits: RealWords | None


@dataclass
class ManMoeClassifierOutput(ModelOutput):
    """
    loss: the training objective (`manmoe_objective`; only with `labels`).
    logits: log-probabilities, (batch, words, num_labels) for tagging or (batch, num_labels) for classification.
    task_loss, gate_loss, distillation_loss: the objective's parts (the NLL terms, the weighted gate terms, the
    weighted distillation terms), for logging.
    task_loss_per_language: (num_languages,) each language's NLL in the batch, NaN for a language without rows.
    private_gate_accuracy, predictor_gate_accuracy: (num_languages,) how often the gate picks the row's own
    source language, NaN where not measured (no rows, not a source, no gate).
    private_gate_logits: (batch, words, num_experts) or None; predictor_gate_logits: (batch, words, num_experts)
    for tagging, (batch, num_experts) for classification, or None; language_logits: (batch, num_languages) or None.
    shared_features: h_s (batch, words, shared_hidden_size), only with `output_shared_features=True` (training).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    task_loss: torch.FloatTensor | None = None
    gate_loss: torch.FloatTensor | None = None
    distillation_loss: torch.FloatTensor | None = None
    task_loss_per_language: torch.FloatTensor | None = None
    private_gate_accuracy: torch.FloatTensor | None = None
    predictor_gate_accuracy: torch.FloatTensor | None = None
    private_gate_logits: torch.FloatTensor | None = None
    predictor_gate_logits: torch.FloatTensor | None = None
    language_logits: torch.FloatTensor | None = None
    shared_features: torch.FloatTensor | None = None


_SIZE_CHECKED = contextvars.ContextVar("manmoe_size_checked", default=False)


def available_memory_bytes() -> int | None:
    """The memory this machine can still give (psutil's `available`, else Linux's MemAvailable); None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_model_memory(model_class: type[nn.Module], config: ManMoeConfig, available: int | None = None) -> int:
    """The bytes of the parameters and buffers a `model_class(config)` holds, counted on the meta device (nothing is
    allocated). Raises `ManMoeConfigError` naming the largest tensors and the config's size fields when that is more
    than the `available` memory (default: `available_memory_bytes()`), before a real construction asks for it."""
    token = _SIZE_CHECKED.set(True)
    try:
        with torch.device("meta"):
            model = model_class(config)
    finally:
        _SIZE_CHECKED.reset(token)
    tensors = [(name, tuple(t.shape), t.numel() * t.element_size())
               for name, t in [*model.named_parameters(), *model.named_buffers()]]  # fmt: skip
    needed = sum(size for *_, size in tensors)
    available = available_memory_bytes() if available is None else available
    if available is not None and needed > available:
        largest = sorted(tensors, key=lambda item: -item[2])[:3]
        shown = ", ".join(f"{name} {list(shape)} ({_bytes_text(size)})" for name, shape, size in largest)
        sizes = {name: value for name, value in config.to_dict().items()
                 if isinstance(value, int) and not isinstance(value, bool)
                 and name.endswith(("_size", "_dim", "_layers", "_filters", "_bottleneck"))}  # fmt: skip
        fields = ", ".join(f"{name}={value}" for name, value in sorted(sizes.items(), key=lambda item: -item[1])[:5])
        origin = getattr(config, "name_or_path", "") or ""
        where = f" (from {os.path.join(origin, 'config.json')})" if origin and os.path.isdir(origin) else ""
        raise ManMoeConfigError(
            f"ManMoeConfig{where}: a {model_class.__name__} of these sizes holds {_bytes_text(needed)} of weights, "
            f"more than the {_bytes_text(available)} of memory available; its largest tensors: {shown}. Check the "
            f"config's sizes (largest: {fields})"
        )
    return needed


def _bytes_text(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.3g} {unit}" if unit != "B" else f"{size} B"
        size /= 1024


def checks_memory_first(init_method):
    """Decorate a model's `__init__`: the outermost construction first checks, on the meta device, that the model
    fits in the available memory (`check_model_memory`)."""

    @functools.wraps(init_method)
    def wrapper(self, config, *args, **kwargs):
        if _SIZE_CHECKED.get():
            return init_method(self, config, *args, **kwargs)
        check_model_memory(type(self), config)
        token = _SIZE_CHECKED.set(True)
        try:
            return init_method(self, config, *args, **kwargs)
        finally:
            _SIZE_CHECKED.reset(token)

    return wrapper


class ManMoePreTrainedModel(PreTrainedModel):
    """Owns initialisation (PyTorch's defaults, as in the reference) and loading for all MAN-MoE models."""

    config_class = ManMoeConfig
    config: ManMoeConfig
    base_model_prefix = "manmoe"
    main_input_name = "input_ids"
    accepts_loss_kwargs = False  # the loss is a mean over tokens
    _no_split_modules = []

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                init.uniform_(module.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        elif isinstance(module, nn.LSTM):
            bound = 1 / math.sqrt(module.hidden_size)
            for param in module.parameters():
                init.uniform_(param, -bound, bound)
        elif isinstance(module, BatchedExperts):
            module.reset_parameters(init)
        elif isinstance(module, CharCNN):
            vectors = torch.randn_like(module.char_vectors)
            vectors = vectors / vectors.norm(dim=-1, keepdim=True)
            vectors[0] = 0.0
            init.copy_(module.char_vectors, vectors)
        elif isinstance(module, LayerMix):
            init.zeros_(module.weights)
            init.ones_(module.gamma)
        elif isinstance(module, FrozenWordEmbedding):
            pass  # filled by `set_word_vectors` or loaded from the checkpoint
        elif isinstance(module, RepresentationTransformation):
            module.reset_parameters()  # the identity at the start
        elif isinstance(module, InputEmbeddings) and hasattr(module, "reset_parameters"):
            module.reset_parameters()  # a component's own initialisation

    def _freeze_frozen_inputs(self) -> None:
        """Keep the frozen encoder frozen (also after `from_pretrained`, which recreates parameters)."""
        for module in self.modules():
            if hasattr(module, "freeze") and module is not self:
                module.freeze()

    def post_init(self):
        super().post_init()
        self._freeze_frozen_inputs()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, with weights from safetensors only: a pickled `.bin` is never read, and
        `use_safetensors=False` (with which transformers would read one) is refused with a `ValueError`."""
        if kwargs.get("use_safetensors") is not None and not kwargs["use_safetensors"]:
            raise ValueError(
                f"{cls.__name__}.from_pretrained: use_safetensors={kwargs['use_safetensors']!r} is refused: MAN-MoE "
                "weights load from safetensors only (model.safetensors), never from a pickled .bin file; leave "
                "use_safetensors out"
            )
        kwargs["use_safetensors"] = True  # also for None, with which transformers falls back on a .bin
        model = super().from_pretrained(*args, **kwargs)
        model = model[0] if isinstance(model, tuple) else model
        model._freeze_frozen_inputs()
        return model

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save as usual (safetensors, code files for remote code) with an `AutoModel` entry in `auto_map`, so a
        head checkpoint also loads with `AutoModel.from_pretrained(..., trust_remote_code=True)`."""
        auto_map = dict(getattr(self.config, "auto_map", None) or {})
        auto_map.setdefault("AutoModel", f"{__name__.rsplit('.', 1)[-1]}.ManMoeModel")
        self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)

    def num_trainable_parameters(self) -> int:
        """Trainable parameters (discriminator included, frozen tables and encoder excluded)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


class ManMoeModel(ManMoePreTrainedModel):
    """E(x) -> F_s, F_p -> [h_s ; h_p], plus the language discriminator D on h_s (absent with use_adversary=False).

    E(x) is the model's input component (`input_embeddings.py`): with word vectors it reads
    `input_ids` (batch, words) rows of the frozen table and `char_ids` (batch, words, chars); with a frozen encoder
    `encoder_input_ids`, `encoder_attention_mask` and `encoder_word_ids` (batch, sub_tokens), or precomputed
    `input_features` (batch, words, encoder_hidden). `attention_mask` (batch, words) marks the real words;
    `lang_ids` (batch,) index `config.all_languages`.
    """

    @checks_memory_first
    def __init__(self, config: ManMoeConfig):
        super().__init__(config)
        self.inputs = build_input_embeddings(config)
        self.shared_extractor = SharedFeatureExtractor(config, self.inputs.output_size)
        self.private_extractor = PrivateFeatureExtractor(config, self.inputs.output_size)
        self.discriminator = LanguageDiscriminator(config) if config.use_adversary else None
        self.transformation = (
            RepresentationTransformation(self.inputs.output_size, config.rtn_bottleneck)
            if config.rtn_bottleneck is not None
            else None
        )
        self.post_init()

    def set_word_vectors(self, vectors: torch.Tensor) -> None:
        """Set the frozen (word_vocab_size, word_embedding_dim) table, e.g. from `build_word_vector_inputs`. A float32
        table that owns its storage is used as is, not copied (`FrozenWordEmbedding.load_vectors`)."""
        self._input_method("set_word_vectors")(vectors)

    def load_pretrained_encoder(self, name_or_path: str, **kwargs) -> None:
        """Load the frozen encoder's pretrained weights (a Hub name or a local folder; safetensors only)."""
        self._input_method("load_pretrained_encoder")(name_or_path, **kwargs)
        self._freeze_frozen_inputs()

    def _input_method(self, name: str):
        method = getattr(self.inputs, name, None)
        if method is None:
            raise TypeError(f"{name}: the model's input component {type(self.inputs).__name__} has no such method")
        return method

    def word_attention_mask(self, input_ids: torch.LongTensor | None) -> torch.Tensor:
        """(batch, words) mask of real words, derived from word ids (padding id) when not given."""
        if input_ids is not None:
            return (input_ids != self.config.pad_token_id).long()
        raise ValueError("`attention_mask` (batch, words) is required in encoder mode")

    def embed(self, attention_mask: torch.Tensor, **inputs) -> list[torch.Tensor]:
        """E(x) from the input tensors of `forward`, as the input component's column blocks ((batch, words, d_k)
        each; their concatenation is (batch, words, inputs.output_size))."""
        return self.inputs(attention_mask, **inputs)

    def shared_features(self, attention_mask: torch.Tensor | None = None, **inputs) -> torch.Tensor:
        """h_s only (E and F_s, no private branch), (batch, words, shared_hidden_size): what the discriminator's own
        training step needs."""
        if attention_mask is None:
            attention_mask = self.word_attention_mask(inputs.get("input_ids"))
        return self.shared_extractor(self.embed(attention_mask, **inputs), attention_mask).padded()

    def transform(self, embeddings: list[torch.Tensor], rows: torch.Tensor) -> list[torch.Tensor]:
        """E(x) (its column blocks) with `rows` (batch,) bool changed by the representation transformation: one block
        (batch, words, input_size)."""
        if not isinstance(embeddings, (list, tuple)):  # the fast kernels' per-distinct-word inputs (prediction)
            embeddings = embeddings.expand()
        x = torch.cat(list(embeddings), dim=-1) if len(embeddings) > 1 else embeddings[0]
        return [torch.where(rows[:, None, None], self.transformation(x), x)]

    def language_logits(self, shared_features: torch.Tensor) -> torch.Tensor:
        """D on h_s (batch, words, shared_hidden_size) -> (batch, num_languages) log-probabilities."""
        if self.discriminator is None:
            raise ValueError("return_language_logits=True but the model has no discriminator (use_adversary)")
        return self.discriminator(shared_features)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        char_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        encoder_input_ids: torch.LongTensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        encoder_word_ids: torch.LongTensor | None = None,
        input_features: torch.Tensor | None = None,
        lang_ids: torch.LongTensor | None = None,
        return_language_logits: bool = False,
        task_rows: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> ManMoeModelOutput:
        """`task_rows` (batch,) bool: the rows that also get F_p (default: all). Training passes the labeled
        rows: unlabeled rows only need h_s for the discriminator. `last_hidden_state` and the private gate
        logits then hold the task rows only; `shared_features` always holds every row."""
        words = self.real_word_features(
            input_ids=input_ids,
            char_ids=char_ids,
            attention_mask=attention_mask,
            encoder_input_ids=encoder_input_ids,
            encoder_attention_mask=encoder_attention_mask,
            encoder_word_ids=encoder_word_ids,
            input_features=input_features,
            task_rows=task_rows,
        )
        gates, shared = words.private_gate_logits, words.shared.padded()
        return ManMoeModelOutput(
            last_hidden_state=words.features.padded(),
            shared_features=shared,
            private_gate_logits=None if gates is None else gates.padded(),
            language_logits=self.language_logits(shared) if return_language_logits else None,
        )

    def real_word_features(
        self,
        attention_mask: torch.Tensor | None = None,
        task_rows: torch.Tensor | None = None,
        transform_rows: torch.Tensor | None = None,
        **inputs,
    ) -> RealWordFeatures:
        """What `forward` computes, for the real words only (the task heads read this: everything after the
        BiLSTMs works word by word, so no padded (batch, words, ...) tensor is built). `inputs`: the input tensors
        of `forward`; `task_rows` as there; `transform_rows` (batch,) bool: the rows whose E(x) the representation
        transformation (MetaXL) changes, in training."""
        if attention_mask is None:
            attention_mask = self.word_attention_mask(inputs.get("input_ids"))
        embeddings = self.embed(attention_mask, **inputs)
        if transform_rows is not None and self.transformation is not None and bool(transform_rows.any()):
            embeddings = self.transform(embeddings, transform_rows)
        shared = self.shared_extractor(embeddings, attention_mask)
        if task_rows is not None:
            # index_select, not boolean indexing: its backward is an index_add, not an accumulating index_put
            rows = torch.nonzero(task_rows).squeeze(1)
            if isinstance(embeddings, (list, tuple)):
                embeddings = [block.index_select(0, rows) for block in embeddings]
            else:  # the fast kernels' per-distinct-word inputs
                embeddings = embeddings.index_select(rows)
            attention_mask = attention_mask[task_rows]
        private, private_gate_logits = self.private_extractor(embeddings, attention_mask)
        positions = private.positions  # the words of F_p's grid; with task rows, their positions in F_s's grid
        if task_rows is not None:
            words = attention_mask.shape[1]
            positions = rows.index_select(0, positions // words) * words + positions % words
        features = torch.cat([shared.values_at(positions), private.values], dim=-1)
        return RealWordFeatures(private.with_values(features), shared, private_gate_logits)


@dataclass
class ObjectiveTerms:
    """`manmoe_objective`'s result: `loss` and its parts (see `ManMoeClassifierOutput`)."""

    loss: torch.Tensor
    task_loss: torch.Tensor
    gate_loss: torch.Tensor
    distillation_loss: torch.Tensor
    task_loss_per_language: torch.Tensor
    private_gate_accuracy: torch.Tensor
    predictor_gate_accuracy: torch.Tensor


def manmoe_objective(
    config: ManMoeConfig,
    log_probs: torch.Tensor,
    labels: torch.Tensor | None,
    lang_ids: torch.Tensor | None,
    attention_mask: torch.Tensor,
    private_gate_logits: torch.Tensor | None,
    predictor_gate_logits: torch.Tensor | None,
    teacher_logits: torch.Tensor | None = None,
    teacher_mask: torch.Tensor | None = None,
) -> ObjectiveTerms:
    """MAN-MoE's training objective for the task rows of a batch (the reference's, plus distillation): for each
    language k with rows,
    - the mean NLL of C's output over its labels (-100 ignored; rows without any label contribute none), and for a
      source language + private_gate_loss_weight x the cross-entropy of F_p's gate against k over its real words
      + predictor_gate_loss_weight x the cross-entropy of C's gate against k (per word for tagging, per sentence for
      classification);
    - with teachers (`teacher_logits`), T^2 x the mean KL(teacher_T || student_T) over the real words (or texts) of
      its rows that have one, weighted by `distillation_alpha` for a source (its own teacher) and by
      `target_distillation_weight` for another language (the mixture of its teachers, `teacher_mixture`);
    summed over the languages. Without `lang_ids` all rows are one language without gate or distillation terms.

    log_probs: (batch, words, num_labels) or (batch, num_labels), used as the student's logits; labels: (batch, words)
    or (batch,), or None; lang_ids: (batch,) indices into `config.all_languages`; attention_mask: (batch, words); gate
    logits: (batch, words, num_experts), or (batch, num_experts) for C in classification, or None without that gate;
    teacher_logits: (batch, teachers, words, num_labels) or (batch, teachers, num_labels); teacher_mask: (batch,
    teachers) bool, the teachers each row has (a source row: its language's teacher; a target row: one per source).
    """
    num_languages, num_experts = len(config.all_languages), config.num_experts
    nan = log_probs.new_full((num_languages,), float("nan"))
    per_language, accuracy = nan.clone(), {"private": nan.clone(), "predictor": nan.clone()}
    loss = task_total = gate_total = distill_total = log_probs.new_zeros(())
    tagging = log_probs.dim() == 3
    if labels is None:
        labeled = torch.zeros(log_probs.shape[0], dtype=torch.bool, device=log_probs.device)
    else:
        labeled = (labels != -100).any(-1) if tagging else labels != -100
    groups = [(None, None)] if lang_ids is None else [(k, lang_ids == k) for k in lang_ids.unique().tolist()]
    for k, rows in groups:
        if labels is not None and (rows is None or bool((rows & labeled).any()) or not bool(labeled.any())):
            with_labels = rows if rows is None or bool(labeled[rows].all()) else rows & labeled
            language_log_probs, language_labels = (
                (log_probs, labels) if with_labels is None else (log_probs[with_labels], labels[with_labels])
            )
            task = nn.functional.nll_loss(language_log_probs.reshape(-1, log_probs.shape[-1]),
                                          language_labels.reshape(-1))  # fmt: skip
            loss, task_total = loss + task, task_total + task.detach()
            if k is not None:
                per_language[k] = task.detach()
            if k is not None and k < num_experts:  # a source: its gates learn to recognise it
                for name, weight, gates in (
                    ("private", config.private_gate_loss_weight, private_gate_logits),
                    ("predictor", config.predictor_gate_loss_weight, predictor_gate_logits),
                ):
                    if gates is None:
                        continue
                    gates = gates[with_labels]
                    gates = gates[attention_mask[with_labels].bool()] if gates.dim() == 3 else gates
                    targets = torch.full(gates.shape[:1], k, device=gates.device, dtype=torch.long)
                    term = weight * nn.functional.cross_entropy(gates, targets)
                    loss, gate_total = loss + term, gate_total + term.detach()
                    accuracy[name][k] = (gates.detach().argmax(-1) == k).float().mean()
        if k is None or teacher_logits is None:
            continue
        weight = config.distillation_alpha if k < num_experts else config.target_distillation_weight
        distilled = rows & teacher_mask.any(1)
        if weight == 0 or not bool(distilled.any()):
            continue
        term = weight * distillation_term(
            config, log_probs[distilled], teacher_logits[distilled], teacher_mask[distilled],
            attention_mask[distilled], None if predictor_gate_logits is None else predictor_gate_logits[distilled],
            target=k >= num_experts,
        )  # fmt: skip
        loss, distill_total = loss + term, distill_total + term.detach()
    return ObjectiveTerms(loss, task_total, gate_total, distill_total, per_language, accuracy["private"],
                          accuracy["predictor"])  # fmt: skip


def distillation_term(
    config: ManMoeConfig,
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    teacher_mask: torch.Tensor,
    attention_mask: torch.Tensor,
    predictor_gate_logits: torch.Tensor | None,
    *,
    target: bool,
) -> torch.Tensor:
    """T^2 x the mean over real words (texts) of KL(p_teacher || p_student), both at temperature T; with several
    teachers per row, p_teacher is their mixture (`config.teacher_mixture`).

    student_logits: (rows, words, labels) or (rows, labels); teacher_logits: (rows, teachers, ...); teacher_mask:
    (rows, teachers); predictor_gate_logits: C's gate logits (rows, words, experts) or (rows, experts), for "gate";
    target: the rows are target rows, whose teachers are the source languages' in source order, each language's
    ensemble members together (sources x members; the members once when all sources share one teacher); otherwise a
    source's rows, whose teachers are the members of its language's teacher. "gate" weights a target row's source
    languages by C's gate and a language's members equally; a source row's members are mixed uniformly under "gate".
    """
    temperature = config.distillation_temperature
    teacher_logits = teacher_logits.to(student_logits.dtype)
    teacher_probs = torch.softmax(teacher_logits / temperature, dim=-1)  # (rows, teachers, ..., labels)
    present = teacher_mask.reshape(*teacher_mask.shape, *([1] * (teacher_probs.dim() - 2)))
    if config.teacher_mixture == "confidence":
        weights = teacher_probs.max(-1, keepdim=True).values * present
    elif config.teacher_mixture == "gate" and target:
        experts = config.num_experts
        if predictor_gate_logits is None or teacher_logits.shape[1] % experts:
            raise ValueError("teacher_mixture='gate' needs C's gate (use_predictor_moe) and, on each target row, "
                             f"the same number of teachers for each of the {experts} source languages; got "
                             f"{teacher_logits.shape[1]} teachers")  # fmt: skip
        members = teacher_logits.shape[1] // experts
        gates = torch.softmax(predictor_gate_logits.detach(), dim=-1).movedim(-1, 1)  # (rows, experts, ...)
        weights = gates.repeat_interleave(members, dim=1).unsqueeze(-1) * present  # a language's members share its gate
    else:
        weights = present.to(teacher_probs.dtype).expand(*teacher_probs.shape[:-1], 1)
    weights = weights / weights.sum(1, keepdim=True).clamp(min=1e-12)
    mixture = (weights * teacher_probs).sum(1)  # (rows, ..., labels)
    student_log_probs = torch.log_softmax(student_logits / temperature, dim=-1)
    kl = (mixture * (torch.log(mixture.clamp(min=1e-12)) - student_log_probs)).sum(-1)  # (rows, words) or (rows,)
    if kl.dim() == 2:
        kl = kl[attention_mask.bool()]
    return temperature**2 * kl.mean()


class _ManMoeHead(ManMoePreTrainedModel):
    """Shared plumbing of the task heads: the base model, a predictor, the training objective."""

    predictor_class: type[nn.Module]

    @checks_memory_first
    def __init__(self, config: ManMoeConfig):
        super().__init__(config)
        self.manmoe = ManMoeModel(config)
        self.predictor = self.predictor_class(config)
        self.post_init()

    def set_word_vectors(self, vectors: torch.Tensor) -> None:
        self.manmoe.set_word_vectors(vectors)

    def load_pretrained_encoder(self, name_or_path: str, **kwargs) -> None:
        self.manmoe.load_pretrained_encoder(name_or_path, **kwargs)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        char_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        encoder_input_ids: torch.LongTensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        encoder_word_ids: torch.LongTensor | None = None,
        input_features: torch.Tensor | None = None,
        lang_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        teacher_logits: torch.Tensor | None = None,
        teacher_mask: torch.Tensor | None = None,
        return_language_logits: bool = False,
        output_shared_features: bool = False,
        task_rows: torch.Tensor | None = None,
        transform_rows: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> ManMoeClassifierOutput:
        """`labels`: (batch, words) with -100 on padding for tagging, (batch,) for classification. With labels,
        `loss` is the training objective (`manmoe_objective`: per language, the mean NLL of the mixture + the
        weighted gate losses, summed over the languages of `lang_ids`), its parts in the output.

        `teacher_logits` (batch, teachers, words, num_labels) or (batch, teachers, num_labels) with `teacher_mask`
        (batch, teachers): the teachers' logits for distillation (`manmoe_objective`).

        `task_rows` (batch,) bool, for training: only these rows go through F_p and C (`logits`, gate logits,
        `labels` and the loss cover them alone); every row still gets h_s (`shared_features`) for D.
        `transform_rows` (batch,) bool, for MetaXL's training: the rows whose E(x) the representation transformation
        changes (`config.rtn_bottleneck`)."""
        if attention_mask is None:
            attention_mask = self.manmoe.word_attention_mask(input_ids)
        words = self.manmoe.real_word_features(
            input_ids=input_ids,
            char_ids=char_ids,
            attention_mask=attention_mask,
            encoder_input_ids=encoder_input_ids,
            encoder_attention_mask=encoder_attention_mask,
            encoder_word_ids=encoder_word_ids,
            input_features=input_features,
            task_rows=task_rows,
            transform_rows=transform_rows,
        )
        if task_rows is not None:
            attention_mask = attention_mask[task_rows]
            labels = labels[task_rows] if labels is not None else None
            lang_ids = lang_ids[task_rows] if lang_ids is not None else None
            if teacher_logits is not None:
                teacher_logits, teacher_mask = teacher_logits[task_rows], teacher_mask[task_rows]
        log_probs, predictor_gate_logits = self.predictor(words.features)
        private_gate_logits = None if words.private_gate_logits is None else words.private_gate_logits.padded()
        shared = words.shared.padded() if output_shared_features or return_language_logits else None
        terms = None
        if labels is not None or teacher_logits is not None:
            terms = manmoe_objective(self.config, log_probs, labels, lang_ids, attention_mask, private_gate_logits,
                                     predictor_gate_logits, teacher_logits, teacher_mask)  # fmt: skip
        return ManMoeClassifierOutput(
            loss=terms and terms.loss,
            logits=log_probs,
            task_loss=terms and terms.task_loss,
            gate_loss=terms and terms.gate_loss,
            distillation_loss=terms and terms.distillation_loss,
            task_loss_per_language=terms and terms.task_loss_per_language,
            private_gate_accuracy=terms and terms.private_gate_accuracy,
            predictor_gate_accuracy=terms and terms.predictor_gate_accuracy,
            private_gate_logits=private_gate_logits,
            predictor_gate_logits=predictor_gate_logits,
            language_logits=self.manmoe.language_logits(shared) if return_language_logits else None,
            shared_features=shared if output_shared_features else None,
        )


class ManMoeForTokenClassification(_ManMoeHead):
    """MAN-MoE sequence tagger (e.g. NER): one label per word, `logits` are log-probabilities."""

    predictor_class = MoETagger

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Also saves `pipeline_manmoe.py` and names it in the config's `custom_pipelines`, so that
        `pipeline("token-classification", model=FOLDER, trust_remote_code=True)` tags raw text word by word."""
        self.config.custom_pipelines = {
            "token-classification": {
                "impl": "pipeline_manmoe.ManMoeTokenClassificationPipeline",
                "pt": ["AutoModelForTokenClassification"],
                "type": "text",
            }
        }
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            shutil.copy(Path(__file__).with_name("pipeline_manmoe.py"), save_directory)
        return result


class ManMoeForSequenceClassification(_ManMoeHead):
    """MAN-MoE sentence classifier (e.g. review sentiment) with dot-attention pooling."""

    predictor_class = MoESentenceClassifier


__all__ = [
    "ManMoeClassifierOutput",
    "ManMoeForSequenceClassification",
    "ManMoeForTokenClassification",
    "ManMoeModel",
    "ManMoeModelOutput",
    "ManMoePreTrainedModel",
]
