"""modeling_manmoe: MAN-MoE (Chen et al., ACL 2019) as HuggingFace models.

Importing the package registers `ManMoeConfig`, `ManMoeTokenizer` and the models with the Auto classes, and
marks them for remote code so that a saved folder loads with `trust_remote_code=True` where the package is not
installed.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)

from .configuration_manmoe import ManMoeConfig
from .errors import (
    CheckpointError,
    DataFormatError,
    LabelError,
    LanguageError,
    ManMoeConfigError,
    ManMoeError,
    VectorFileError,
)
from .modeling_manmoe import (
    ManMoeClassifierOutput,
    ManMoeForSequenceClassification,
    ManMoeForTokenClassification,
    ManMoeModel,
    ManMoeModelOutput,
    ManMoePreTrainedModel,
)
from .tokenization_manmoe import ManMoeTokenizer

__version__ = "0.1.0"

AutoConfig.register(ManMoeConfig.model_type, ManMoeConfig, exist_ok=True)
AutoModel.register(ManMoeConfig, ManMoeModel, exist_ok=True)
AutoModelForTokenClassification.register(ManMoeConfig, ManMoeForTokenClassification, exist_ok=True)
AutoModelForSequenceClassification.register(ManMoeConfig, ManMoeForSequenceClassification, exist_ok=True)
AutoTokenizer.register(ManMoeConfig, slow_tokenizer_class=ManMoeTokenizer, exist_ok=True)

ManMoeConfig.register_for_auto_class()
ManMoeModel.register_for_auto_class("AutoModel")
ManMoeForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")
ManMoeForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
ManMoeTokenizer.register_for_auto_class("AutoTokenizer")

__all__ = [
    "CheckpointError",
    "DataFormatError",
    "LabelError",
    "LanguageError",
    "ManMoeClassifierOutput",
    "ManMoeConfig",
    "ManMoeConfigError",
    "ManMoeError",
    "ManMoeForSequenceClassification",
    "ManMoeForTokenClassification",
    "ManMoeModel",
    "ManMoeModelOutput",
    "ManMoePreTrainedModel",
    "ManMoeTokenizer",
    "VectorFileError",
]
