"""MAN-MoE model configuration."""

from dataclasses import field

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .errors import LanguageError, ManMoeConfigError

ENCODER_POOLINGS = ("first", "mean")
KERNELS = ("fast", "torch")
TEACHER_MIXTURES = ("uniform", "confidence", "gate")
RETIRED_FIELDS = ("char_cnn_implementation",)  # in folders saved by earlier versions; the model is the same without


@strict
class ManMoeConfig(PreTrainedConfig):
    r"""
    Configuration of a MAN-MoE model (Chen et al., ACL 2019). Defaults are the paper's CoNLL values (the reference
    implementation's, `docs/faithfulness.md`); `ManMoeConfig()` with a vocabulary size and labels builds the paper's
    tagger (3,092,765 trainable parameters with 9 tags, three sources and one target).

    Languages: `lang_ids` index `all_languages = source_languages + unlabeled_languages`, so source language `k` has
    id `k` and is also the index of its expert.

    Args:
        source_languages (`list[str]`, defaults to `["en", "de", "es"]`):
            The labeled languages; one expert each in F_p and C.
        unlabeled_languages (`list[str]`, defaults to `["nl"]`):
            Languages without labels (usually the zero-resource target): seen only by the language discriminator.
        few_shot_sizes (`dict[str, int]`, *optional*):
            {language: N} for an unlabeled language of which N labeled training sentences were used (the few-shot
            setting, `--target_train_size N`: joint training or MetaXL); the rest of its training text stays
            unlabeled. Empty: zero-resource. Results and cards call such a language a few-shot target.
        input_mode (`str`, *optional*):
            Which input component computes E(x) (`input_embeddings.INPUT_EMBEDDINGS`): "word_vectors" (frozen
            aligned word vectors + CharCNN, the paper) or "encoder" (a frozen HF encoder + CharCNN, the paper's mBERT
            setting). Default: "encoder" when `encoder_config` is given, else "word_vectors".
        kernels (`str`, defaults to `"fast"`):
            "fast": the hand-written CPU kernels of `modeling_manmoe.kernels`; "torch": plain `nn.LSTM`,
            `nn.Dropout`, `nn.Conv1d` (the readable reference; also what supports double backward). The same
            function up to float rounding (`kernel_switch.py`).
        input_dropout (`float`, defaults to 0.5):
            Dropout on E(x) before each extractor's BiLSTM (paper: 0.5).
        word_vocab_size (`int`, defaults to 2):
            Rows of the frozen word-vector table, padding (0) and unknown (1) included. Word-vector input only.
        word_embedding_dim (`int`, defaults to 300):
            Size of a word vector (paper: 300). Word-vector input only.
        use_char_cnn (`bool`, defaults to `True`):
            Add the CharCNN's features to E(x) (paper: on for tagging).
        char_vocab_size (`int`, defaults to 2):
            Rows of the character table, padding (0) and unknown (1) included.
        char_embedding_dim (`int`, defaults to 128):
            Size of a character vector (paper: 128, random, unit length).
        freeze_char_embeddings (`bool`, defaults to `True`):
            Keep the character vectors frozen (a buffer), as the paper does.
        char_kernel_sizes (`list[int]`, defaults to `[3, 4, 5]`):
            CharCNN convolution widths (paper: 3, 4, 5).
        char_num_filters (`int`, defaults to 200):
            Filters per CharCNN width (paper: 200).
        char_hidden_size (`int`, defaults to 128):
            The CharCNN's output size per word (paper: 128).
        char_dropout (`float`, defaults to 0.5):
            Dropout before the CharCNN's projection (paper: 0.5).
        encoder_config (`dict`, *optional*):
            The frozen encoder's config dict (`AutoConfig.to_dict()`); needs `hidden_size`. Encoder input only.
        encoder_name_or_path (`str`, *optional*):
            Where the encoder's weights came from (a Hub name or folder), recorded for cards and caches.
        encoder_layers (`list[int]`, defaults to `[-1]`):
            Encoder hidden states to use (0 = embeddings, -1 = last); several are mixed by learned softmax weights.
        encoder_pooling (`str`, defaults to `"first"`):
            A word's feature from its sub-tokens: "first" or "mean".
        shared_hidden_size (`int`, defaults to 200):
            F_s's BiLSTM output size, both directions together (paper: 100 per direction).
        shared_num_layers (`int`, defaults to 2):
            F_s's BiLSTM layers (paper: 2).
        private_hidden_size (`int`, defaults to 200):
            F_p's BiLSTM and expert size (paper: 200).
        private_num_layers (`int`, defaults to 2):
            F_p's BiLSTM layers (paper: 2).
        lstm_dropout (`float`, defaults to 0.5):
            Dropout between BiLSTM layers (paper: 0.5).
        expert_dropout (`float`, defaults to 0.5):
            Dropout inside F_p's experts (paper: 0.5).
        predictor_hidden_size (`int`, defaults to 400):
            Hidden size of C's experts (paper: 400).
        predictor_dropout (`float`, defaults to 0.5):
            Dropout before C's experts (paper: 0.5).
        discriminator_kernel_sizes (`list[int]`, defaults to `[3, 4, 5]`):
            D's convolution widths (paper: 3, 4, 5).
        discriminator_num_filters (`int`, defaults to 200):
            Filters per D width (paper: 200).
        discriminator_hidden_size (`int`, defaults to 200):
            D's hidden layers (paper: 200).
        discriminator_dropout (`float`, defaults to 0.5):
            D's dropout (paper: 0.5).
        detach_gates (`bool`, defaults to `True`):
            The gates read their input with gradients stopped, so the gate losses train only the gates (paper).
        private_gate_loss_weight (`float`, defaults to 0.01):
            Weight of F_p's gate cross-entropy in the objective (paper: 0.01).
        predictor_gate_loss_weight (`float`, defaults to 0.01):
            Weight of C's gate cross-entropy in the objective (paper: 0.01).
        adversarial_lambda (`float`, defaults to 0.002):
            lambda, the weight of the adversarial term that `ManMoeTrainer` adds (paper: 0.002).
        n_critic (`int`, defaults to 1):
            Discriminator steps per training step in alternating mode (paper's scripts: 1).
        distillation_alpha (`float`, defaults to 0.0):
            alpha, the weight of T^2 x KL(teacher_T || student_T) on each labeled source row against its language's
            teacher (Chi et al. 2020; MBLM's multi-teacher form), added to the gold NLL. 0: no source distillation.
        distillation_temperature (`float`, defaults to 1.0):
            T, the softmax temperature of teacher and student in both distillation terms.
        target_distillation_weight (`float`, defaults to 0.0):
            beta, the weight of T^2 x KL(mixture of the teachers_T || student_T) on the unlabeled target rows (Wu et
            al. 2020). 0: no target distillation.
        teacher_mixture (`str`, defaults to `"uniform"`):
            How the teachers are mixed on the target: "uniform" (their mean), "confidence" (each token weighted by
            each teacher's top probability) or "gate" (each token weighted by C's gate: which source language the
            student finds the word closest to; a language's ensemble members share its weight).
        rtn_bottleneck (`int`, *optional*):
            MetaXL: the bottleneck size of the representation transformation network added to the source rows' E(x)
            in training (`representation_transformation.py`); None: no such network.
        use_adversary (`bool`, defaults to `True`):
            Ablation switch: `False` drops the discriminator.
        use_private_moe (`bool`, defaults to `True`):
            Ablation switch: `False` replaces F_p's mixture by one expert shared by all languages (no gate).
        use_predictor_moe (`bool`, defaults to `True`):
            Ablation switch: `False` replaces C's mixture by one expert shared by all languages (no gate).
        pad_token_id (`int`, defaults to 0):
            The padding word id.

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
        "task_loss_per_language",
        "private_gate_accuracy",
        "predictor_gate_accuracy",
        "distillation_loss",
        "private_gate_logits",
        "predictor_gate_logits",
        "language_logits",
        "shared_features",
    ]

    source_languages: list[str] = field(default_factory=lambda: ["en", "de", "es"])
    unlabeled_languages: list[str] = field(default_factory=lambda: ["nl"])
    few_shot_sizes: dict[str, int] = field(default_factory=dict)

    input_mode: str | None = None
    kernels: str = "fast"
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
    encoder_config: dict | None = None
    encoder_name_or_path: str | None = None
    encoder_layers: list[int] = field(default_factory=lambda: [-1])
    encoder_pooling: str = "first"

    shared_hidden_size: int = 200
    shared_num_layers: int = 2
    private_hidden_size: int = 200
    private_num_layers: int = 2
    lstm_dropout: float = 0.5
    expert_dropout: float = 0.5

    predictor_hidden_size: int = 400
    predictor_dropout: float = 0.5

    discriminator_kernel_sizes: list[int] = field(default_factory=lambda: [3, 4, 5])
    discriminator_num_filters: int = 200
    discriminator_hidden_size: int = 200
    discriminator_dropout: float = 0.5

    detach_gates: bool = True
    private_gate_loss_weight: float = 0.01
    predictor_gate_loss_weight: float = 0.01
    adversarial_lambda: float = 0.002
    n_critic: int = 1

    distillation_alpha: float = 0.0
    distillation_temperature: float = 1.0
    target_distillation_weight: float = 0.0
    teacher_mixture: str = "uniform"

    rtn_bottleneck: int | None = None

    use_adversary: bool = True
    use_private_moe: bool = True
    use_predictor_moe: bool = True

    pad_token_id: int = 0

    def __post_init__(self, **kwargs):
        for name in RETIRED_FIELDS:
            kwargs.pop(name, None)
        if self.input_mode is None:
            self.input_mode = "encoder" if self.encoder_config is not None else "word_vectors"
        super().__post_init__(**kwargs)
        self.check_fields()  # once: not named `validate_*`, which `@strict` would run a second time

    @property
    def all_languages(self) -> list[str]:
        """Source languages first (their index is their expert's index), then the unlabeled ones."""
        return list(self.source_languages) + list(self.unlabeled_languages)

    @property
    def num_experts(self) -> int:
        return len(self.source_languages)

    def language_id(self, language: str) -> int:
        """Index of `language` in `all_languages`; raises a clear error for an unknown code."""
        if language not in self.all_languages:
            raise LanguageError(
                f"language {language!r} is not in the model's languages {self.all_languages} "
                "(config fields source_languages + unlabeled_languages)"
            )
        return self.all_languages.index(language)

    def check_fields(self) -> None:
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
        for lang, size in (self.few_shot_sizes or {}).items():
            if lang not in self.unlabeled_languages:
                fail("few_shot_sizes", f"{lang!r} is not one of unlabeled_languages {self.unlabeled_languages}")
            if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                fail("few_shot_sizes", f"{lang!r}: expected a positive number of labeled sentences, got {size!r}")
        if not isinstance(self.input_mode, str) or not self.input_mode:
            fail("input_mode", f"must name an input component, got {self.input_mode!r}")
        if self.kernels not in KERNELS:
            fail("kernels", f"{self.kernels!r} is not one of {list(KERNELS)}")
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
        elif self.input_mode == "word_vectors" and self.word_vocab_size < 2:
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
        for name in ("char_kernel_sizes", "discriminator_kernel_sizes"):
            sizes = getattr(self, name)
            if not sizes or any(k <= 0 for k in sizes):
                fail(name, f"must be a non-empty list of positive widths, got {sizes}")
        for name in ("input_dropout", "char_dropout", "lstm_dropout", "expert_dropout", "predictor_dropout",
                     "discriminator_dropout"):  # fmt: skip
            if not 0.0 <= getattr(self, name) < 1.0:
                fail(name, f"a dropout probability must be in [0, 1), got {getattr(self, name)}")
        if self.rtn_bottleneck is not None and self.rtn_bottleneck <= 0:
            fail("rtn_bottleneck", f"must be positive (or None: no transformation), got {self.rtn_bottleneck}")
        if not self.distillation_temperature > 0:
            fail("distillation_temperature", f"must be positive, got {self.distillation_temperature}")
        if self.teacher_mixture not in TEACHER_MIXTURES:
            fail("teacher_mixture", f"{self.teacher_mixture!r} is not one of {list(TEACHER_MIXTURES)}")
        for name in ("private_gate_loss_weight", "predictor_gate_loss_weight", "adversarial_lambda",
                     "distillation_alpha", "target_distillation_weight"):  # fmt: skip
            if getattr(self, name) < 0:
                fail(name, f"must be >= 0, got {getattr(self, name)}")
        if self.use_adversary and not self.unlabeled_languages and len(self.source_languages) < 2:
            fail("use_adversary", "the language discriminator needs at least two languages")
        if self.id2label is not None and len(self.id2label) < 2:
            fail("id2label", f"at least two labels are needed, got {self.id2label}")


__all__ = ["ManMoeConfig"]
