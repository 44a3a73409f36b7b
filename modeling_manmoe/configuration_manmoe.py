"""MAN-MoE model configuration."""

from dataclasses import field

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .errors import LanguageError, ManMoeConfigError

INPUT_MODES = ("word_vectors", "encoder")
ENCODER_POOLINGS = ("first", "mean")
CHAR_CNN_IMPLEMENTATIONS = ("lookup", "matmul")


@strict
class ManMoeConfig(PreTrainedConfig):
    r"""
    Configuration of a MAN-MoE model (Chen et al., ACL 2019). Defaults are the paper's CoNLL script values
    (see `docs/reference.md` of the repository); every knob of the reference implementation is one field here.

    Languages: `source_languages` are labeled, `unlabeled_languages` (usually the zero-resource target) are seen only
    by the language discriminator. `lang_ids` index `all_languages = source_languages + unlabeled_languages`, so
    source language `k` has id `k` and is also the index of its expert.

    `char_cnn_implementation` chooses how the CharCNN computes its convolutions, not what it computes: "lookup"
    (default) sums per-character kernel products looked up in a table, "matmul" takes one matrix product over all
    windows (several times slower; the CharCNN rounding of runs made before the lookup existed, which reproduce bit
    for bit with it at commit d2b2136, before the lockstep BiLSTM changed the rest of the rounding).

    Ablations (named deviations from the full model): `use_adversary=False` drops the discriminator,
    `use_private_moe=False` and `use_predictor_moe=False` replace a mixture by one expert shared by all languages
    (no gate, no gate loss).

    Example:

    ```python
    >>> from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification
    >>> config = ManMoeConfig(source_languages=["en", "de", "es"], unlabeled_languages=["nl"], word_vocab_size=100,
    ...                       char_vocab_size=50, num_labels=9)
    >>> model = ManMoeForTokenClassification(config)
    ```
    """

    model_type = "manmoe"
    keys_to_ignore_at_inference = [
        "task_loss",
        "gate_loss",
        "private_gate_logits",
        "predictor_gate_logits",
        "language_logits",
        "shared_features",
    ]

    # languages
    source_languages: list[str] = field(default_factory=lambda: ["en", "de", "es"])
    unlabeled_languages: list[str] = field(default_factory=lambda: ["nl"])

    # input representation: "word_vectors" (frozen aligned vectors + CharCNN) or "encoder" (frozen transformer)
    input_mode: str = "word_vectors"
    input_dropout: float = 0.5
    word_vocab_size: int = 2
    word_embedding_dim: int = 300
    use_char_cnn: bool = True
    char_vocab_size: int = 2
    char_embedding_dim: int = 128
    freeze_char_embeddings: bool = True
    char_kernel_sizes: list[int] = field(default_factory=lambda: [3, 4, 5])
    char_num_filters: int = 200
    char_hidden_size: int = 128
    char_dropout: float = 0.5
    char_cnn_implementation: str = "lookup"
    encoder_config: dict | None = None
    encoder_name_or_path: str | None = None
    encoder_layers: list[int] = field(default_factory=lambda: [-1])
    encoder_pooling: str = "first"

    # extractors F_s and F_p (bidirectional: half of the hidden size per direction)
    shared_hidden_size: int = 200
    shared_num_layers: int = 2
    private_hidden_size: int = 200
    private_num_layers: int = 2
    lstm_dropout: float = 0.5
    expert_dropout: float = 0.5

    # predictor C
    predictor_hidden_size: int = 400
    predictor_dropout: float = 0.5

    # language discriminator D
    discriminator_kernel_sizes: list[int] = field(default_factory=lambda: [3, 4, 5])
    discriminator_num_filters: int = 200
    discriminator_hidden_size: int = 200
    discriminator_dropout: float = 0.5

    # gates and losses
    detach_gates: bool = True
    private_gate_loss_weight: float = 0.01
    predictor_gate_loss_weight: float = 0.01
    adversarial_lambda: float = 0.002
    n_critic: int = 1

    # ablations
    use_adversary: bool = True
    use_private_moe: bool = True
    use_predictor_moe: bool = True

    pad_token_id: int = 0

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.validate_manmoe()

    @property
    def all_languages(self) -> list[str]:
        """Source languages first (their index is their expert's index), then the unlabeled ones."""
        return list(self.source_languages) + list(self.unlabeled_languages)

    @property
    def num_experts(self) -> int:
        return len(self.source_languages)

    @property
    def input_size(self) -> int:
        """Size of the per-word input representation E(x) fed to both extractors."""
        if self.input_mode == "encoder":
            base = self.encoder_config.get("hidden_size") if self.encoder_config else None
        else:
            base = self.word_embedding_dim
        return base + (self.char_hidden_size if self.use_char_cnn else 0)

    def language_id(self, language: str) -> int:
        """Index of `language` in `all_languages`; raises a clear error for an unknown code."""
        if language not in self.all_languages:
            raise LanguageError(
                f"language {language!r} is not in the model's languages {self.all_languages} "
                "(config fields source_languages + unlabeled_languages)"
            )
        return self.all_languages.index(language)

    def validate_manmoe(self) -> None:
        """Check field values and combinations; raise `ManMoeConfigError` (a ValueError) naming the field."""

        def fail(field_name: str, why: str) -> None:
            raise ManMoeConfigError(f"ManMoeConfig.{field_name}: {why}")

        if not self.source_languages:
            fail("source_languages", "at least one labeled source language is required")
        for name in ("source_languages", "unlabeled_languages"):
            langs = getattr(self, name)
            if any(not isinstance(lang, str) or not lang.strip() for lang in langs):
                fail(name, f"language codes must be non-empty strings, got {langs}")
            duplicated = sorted({lang for lang in langs if langs.count(lang) > 1})
            if duplicated:
                fail(name, f"duplicate language(s) {duplicated}")
        both = sorted(set(self.source_languages) & set(self.unlabeled_languages))
        if both:
            fail(
                "unlabeled_languages",
                f"{both} also listed in source_languages; a zero-resource target cannot be a labeled source",
            )
        if self.input_mode not in INPUT_MODES:
            fail("input_mode", f"unknown input mode {self.input_mode!r}; expected one of {list(INPUT_MODES)}")
        if self.input_mode == "encoder":
            if not self.encoder_config or "hidden_size" not in self.encoder_config:
                fail("encoder_config", "input_mode='encoder' needs the encoder's config dict (with hidden_size)")
            depth = self.encoder_config.get("num_hidden_layers")
            layers = self.encoder_layers
            if not layers or len(set(layers)) != len(layers):
                fail("encoder_layers", f"must be a non-empty list of distinct hidden-state indices, got {layers}")
            if depth is not None and any(not -(depth + 1) <= layer <= depth for layer in layers):
                fail("encoder_layers", f"{layers}: the encoder has hidden states 0..{depth} (or -{depth + 1}..-1)")
            if self.encoder_pooling not in ENCODER_POOLINGS:
                fail("encoder_pooling", f"{self.encoder_pooling!r} is not one of {list(ENCODER_POOLINGS)}")
        elif self.word_vocab_size < 2:
            fail("word_vocab_size", f"must be >= 2 (padding and unknown rows), got {self.word_vocab_size}")
        for name in ("shared_hidden_size", "private_hidden_size"):
            size = getattr(self, name)
            if size <= 0 or size % 2:
                fail(name, f"must be a positive even number (the BiLSTM uses half per direction), got {size}")
        positive = [
            "word_embedding_dim",
            "shared_num_layers",
            "private_num_layers",
            "predictor_hidden_size",
            "discriminator_num_filters",
            "discriminator_hidden_size",
            "n_critic",
        ]
        if self.use_char_cnn:
            positive += ["char_vocab_size", "char_embedding_dim", "char_num_filters", "char_hidden_size"]
            if self.char_vocab_size < 2:
                fail("char_vocab_size", f"must be >= 2 (padding and unknown rows), got {self.char_vocab_size}")
        for name in positive:
            if getattr(self, name) <= 0:
                fail(name, f"must be positive, got {getattr(self, name)}")
        if self.char_cnn_implementation not in CHAR_CNN_IMPLEMENTATIONS:
            fail(
                "char_cnn_implementation",
                f"{self.char_cnn_implementation!r} is not one of {list(CHAR_CNN_IMPLEMENTATIONS)}",
            )
        for name in ("char_kernel_sizes", "discriminator_kernel_sizes"):
            sizes = getattr(self, name)
            if not sizes or any(k <= 0 for k in sizes):
                fail(name, f"must be a non-empty list of positive widths, got {sizes}")
        for name in ("input_dropout", "char_dropout", "lstm_dropout", "expert_dropout", "predictor_dropout",
                     "discriminator_dropout"):  # fmt: skip
            if not 0.0 <= getattr(self, name) < 1.0:
                fail(name, f"a dropout probability must be in [0, 1), got {getattr(self, name)}")
        for name in ("private_gate_loss_weight", "predictor_gate_loss_weight", "adversarial_lambda"):
            if getattr(self, name) < 0:
                fail(name, f"must be >= 0, got {getattr(self, name)}")
        if self.use_adversary and not self.unlabeled_languages and len(self.source_languages) < 2:
            fail("use_adversary", "the language discriminator needs at least two languages")
        if self.id2label is not None and len(self.id2label) < 2:
            fail("id2label", f"at least two labels are needed, got {self.id2label}")


__all__ = ["ManMoeConfig"]
