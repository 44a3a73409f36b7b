"""MAN-MoE models: `ManMoeModel` (features, gates, language discriminator) and thin task heads."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_manmoe import ManMoeConfig
from .discriminator import LanguageDiscriminator
from .distinct_words import DistinctWordInputs
from .embeddings import CharCNN, FrozenWordEmbedding, InputRepresentation
from .encoder import LayerMix
from .extractors import PrivateFeatureExtractor, SharedFeatureExtractor
from .mixture_of_experts import BatchedExperts
from .predictors import MoESentenceClassifier, MoETagger
from .real_words import RealWords


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
    loss: task NLL + gate losses (only with `labels`).
    logits: log-probabilities, (batch, words, num_labels) for tagging or (batch, num_labels) for classification.
    task_loss, gate_loss: the two parts of `loss`, for logging.
    private_gate_logits: (batch, words, num_experts) or None; predictor_gate_logits: (batch, words, num_experts)
    for tagging, (batch, num_experts) for classification, or None; language_logits: (batch, num_languages) or None.
    shared_features: h_s (batch, words, shared_hidden_size), only with `output_shared_features=True` (training).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    task_loss: torch.FloatTensor | None = None
    gate_loss: torch.FloatTensor | None = None
    private_gate_logits: torch.FloatTensor | None = None
    predictor_gate_logits: torch.FloatTensor | None = None
    language_logits: torch.FloatTensor | None = None
    shared_features: torch.FloatTensor | None = None


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
        """`PreTrainedModel.from_pretrained`, with weights from safetensors only (never a pickled `.bin`)."""
        kwargs.setdefault("use_safetensors", True)
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

    Inputs (word-vector mode): `input_ids` (batch, words) rows of the frozen table, `char_ids` (batch, words,
    chars), `attention_mask` (batch, words). Encoder mode: `encoder_input_ids`, `encoder_attention_mask`
    (batch, sub_tokens) and `encoder_word_ids` (batch, sub_tokens), or precomputed `input_features`
    (batch, words, encoder_hidden). `lang_ids` (batch,) index `config.all_languages`.
    """

    def __init__(self, config: ManMoeConfig):
        super().__init__(config)
        self.inputs = InputRepresentation(config)
        self.shared_extractor = SharedFeatureExtractor(config)
        self.private_extractor = PrivateFeatureExtractor(config)
        self.discriminator = LanguageDiscriminator(config) if config.use_adversary else None
        self.post_init()

    def set_word_vectors(self, vectors: torch.Tensor) -> None:
        """Set the frozen (word_vocab_size, word_embedding_dim) table, e.g. from `build_word_vector_inputs`. A float32
        table that owns its storage is used as is, not copied (`FrozenWordEmbedding.load_vectors`)."""
        self.inputs.word_embeddings.load_vectors(vectors)

    def load_pretrained_encoder(self, name_or_path: str, **kwargs) -> None:
        """Load the frozen encoder's pretrained weights (a Hub name or a local folder; safetensors only) into encoder
        mode."""
        from transformers import AutoModel

        pretrained = AutoModel.from_pretrained(name_or_path, **{"use_safetensors": True, **kwargs})
        self.inputs.encoder_features.encoder.load_state_dict(pretrained.state_dict())
        self._freeze_frozen_inputs()

    def word_attention_mask(self, input_ids: torch.LongTensor | None) -> torch.Tensor:
        """(batch, words) mask of real words, derived from word ids (padding id) when not given."""
        if input_ids is not None:
            return (input_ids != self.config.pad_token_id).long()
        raise ValueError("`attention_mask` (batch, words) is required in encoder mode")

    def embed(self, attention_mask: torch.Tensor, **inputs) -> list[torch.Tensor] | DistinctWordInputs:
        """E(x) from the input tensors of `forward`, as its column blocks (`InputRepresentation`: the word or
        encoder features, then the CharCNN's; (batch, words, d_k) each, concatenated (batch, words, input_size)), or,
        in prediction with word vectors, the same blocks once per distinct word (`DistinctWordInputs`)."""
        return self.inputs(num_words=attention_mask.shape[1], **inputs)

    def shared_features(self, attention_mask: torch.Tensor | None = None, **inputs) -> torch.Tensor:
        """h_s only (E and F_s, no private branch), (batch, words, shared_hidden_size): what the discriminator's own
        training step needs."""
        if attention_mask is None:
            attention_mask = self.word_attention_mask(inputs.get("input_ids"))
        return self.shared_extractor(self.embed(attention_mask, **inputs), attention_mask).padded()

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
        self, attention_mask: torch.Tensor | None = None, task_rows: torch.Tensor | None = None, **inputs
    ) -> RealWordFeatures:
        """What `forward` computes, for the real words only (the task heads read this: everything after the
        BiLSTMs works word by word, so no padded (batch, words, ...) tensor is built). `inputs`: the input tensors
        of `forward`; `task_rows` as there."""
        if attention_mask is None:
            attention_mask = self.word_attention_mask(inputs.get("input_ids"))
        embeddings = self.embed(attention_mask, **inputs)
        shared = self.shared_extractor(embeddings, attention_mask)
        if task_rows is not None:
            # index_select, not boolean indexing: its backward is an index_add, not an accumulating index_put
            rows = torch.nonzero(task_rows).squeeze(1)
            if isinstance(embeddings, DistinctWordInputs):
                embeddings = embeddings.index_select(rows)
            else:
                embeddings = [block.index_select(0, rows) for block in embeddings]
            attention_mask = attention_mask[task_rows]
        private, private_gate_logits = self.private_extractor(embeddings, attention_mask)
        positions = private.positions  # the words of F_p's grid; with task rows, their positions in F_s's grid
        if task_rows is not None:
            words = attention_mask.shape[1]
            positions = rows.index_select(0, positions // words) * words + positions % words
        features = torch.cat([shared.values_at(positions), private.values], dim=-1)
        return RealWordFeatures(private.with_values(features), shared, private_gate_logits)


def gate_loss(gate_logits: torch.Tensor | None, lang_ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy of gate logits against the source language, over real positions of labeled-source rows.

    gate_logits: (batch, words, experts) or (batch, experts); lang_ids: (batch,); mask: (batch, words) or None.
    Rows whose language is not a source (an expert index) contribute nothing.
    """
    if gate_logits is None:
        return lang_ids.new_zeros((), dtype=torch.float)
    num_experts = gate_logits.shape[-1]
    targets = lang_ids if gate_logits.dim() == 2 else lang_ids[:, None].expand(gate_logits.shape[:2])
    keep = targets < num_experts
    if mask is not None and gate_logits.dim() == 3:
        keep = keep & mask.bool()
    if not keep.any():
        return gate_logits.new_zeros(())
    return nn.functional.cross_entropy(gate_logits[keep], targets[keep])


class _ManMoeHead(ManMoePreTrainedModel):
    """Shared plumbing of the task heads: the base model, a predictor, the reference's loss."""

    predictor_class: type[nn.Module]

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
        return_language_logits: bool = False,
        output_shared_features: bool = False,
        task_rows: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> ManMoeClassifierOutput:
        """`labels`: (batch, words) with -100 on padding for tagging, (batch,) for classification. With labels,
        `loss` = NLL of the mixture + private_gate_loss_weight x F_p gate loss + predictor_gate_loss_weight x
        C gate loss (gate losses on the rows whose `lang_ids` is a source language).

        `task_rows` (batch,) bool, for training: only these rows go through F_p and C (`logits`, gate logits,
        `labels` and the loss cover them alone); every row still gets h_s (`shared_features`) for D."""
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
        )
        if task_rows is not None:
            attention_mask = attention_mask[task_rows]
            labels = labels[task_rows] if labels is not None else None
            lang_ids = lang_ids[task_rows] if lang_ids is not None else None
        log_probs, predictor_gate_logits = self.predictor(words.features)
        private_gate_logits = None if words.private_gate_logits is None else words.private_gate_logits.padded()
        shared = words.shared.padded() if output_shared_features or return_language_logits else None
        loss = task = gates = None
        if labels is not None:
            task = nn.functional.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), labels.reshape(-1))
            gates = task.new_zeros(())
            if lang_ids is not None:
                gates = self.config.private_gate_loss_weight * gate_loss(
                    private_gate_logits, lang_ids, attention_mask
                ) + self.config.predictor_gate_loss_weight * gate_loss(predictor_gate_logits, lang_ids, attention_mask)
            loss = task + gates
        return ManMoeClassifierOutput(
            loss=loss,
            logits=log_probs,
            task_loss=task,
            gate_loss=gates,
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
