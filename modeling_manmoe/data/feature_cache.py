"""`EncoderFeatureCache`: frozen-encoder word features computed once per dataset and kept on disk.

The encoder is frozen, so its word features never change during training: they are computed once, in
length-sorted batches, stored as one safetensors file per dataset (float16 by default) and reused by every epoch
and every later run. A file is keyed by everything its features depend on: the encoder (name or path plus a hash
of its weights), the layers and pooling, the encoder tokenizer, the position limit (windows), the storage dtype and
the sentences themselves; change any of them and a new file is built.

Location: `cache_dir`, else `$MANMOE_FEATURE_CACHE`, else `$HF_HOME/modeling_manmoe/features`
(`~/.cache/huggingface/modeling_manmoe/features`). Size: 2 bytes x words x layers x hidden in float16, e.g.
about 0.99 GB for all CoNLL en/de/es/nl splits with one 384-d layer. Delete the folder to reclaim the space.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..encoder_inputs import FrozenEncoderFeatures
from ..tokenization_manmoe import ManMoeTokenizer, pad_subtokens

logger = logging.getLogger(__name__)
FORMAT_VERSION = 1


def default_cache_dir() -> str:
    """`$MANMOE_FEATURE_CACHE`, else `$HF_HOME/modeling_manmoe/features`."""
    if os.environ.get("MANMOE_FEATURE_CACHE"):
        return os.environ["MANMOE_FEATURE_CACHE"]
    from huggingface_hub import constants

    return os.path.join(constants.HF_HOME, "modeling_manmoe", "features")


def tensors_sha256(module: torch.nn.Module) -> str:
    """sha256 of a module's parameters and buffers (names, dtypes, shapes and bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class EncoderFeatureCache:
    """Word features of the frozen encoder in `encoder_features`, per sentence, read from or written to disk.

    `features(sentences)` returns one (words, len(encoder_layers), hidden) tensor per sentence (views into one
    stored tensor, in `dtype`). Build statistics of the last build are in `last_build`. `device`: where the encoder
    runs while a file is built (it is moved there for the build and back after); None (default): where it is.
    `ManMoeTrainer` sets its own device (`args.device`, a GPU where there is one) when it is None.

    Example:

    ```python
    >>> cache = EncoderFeatureCache.for_model(model, tokenizer)
    >>> features = cache.features(dataset["tokens"])  # built once, then read from disk
    ```
    """

    def __init__(
        self,
        encoder_features: FrozenEncoderFeatures,
        tokenizer: ManMoeTokenizer,
        encoder_name_or_path: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        dtype: torch.dtype = torch.float16,
        max_batch_subtokens: int = 8192,
        show_progress: bool = True,
        device: str | torch.device | None = None,
    ):
        if tokenizer.encoder_tokenizer is None:
            raise ValueError("EncoderFeatureCache needs a ManMoeTokenizer with an encoder tokenizer (encoder mode)")
        if max_batch_subtokens <= 0:
            raise ValueError(f"max_batch_subtokens must be positive, got {max_batch_subtokens}")
        self.encoder_features, self.tokenizer = encoder_features, tokenizer
        self.encoder_name_or_path = encoder_name_or_path
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
        self.dtype, self.max_batch_subtokens, self.show_progress = dtype, max_batch_subtokens, show_progress
        self.device = device
        self._weights_sha256: str | None = None
        self._loaded: dict[str, list[torch.Tensor]] = {}
        self.last_build: dict | None = None

    @classmethod
    def for_model(cls, model, tokenizer: ManMoeTokenizer, **kwargs) -> EncoderFeatureCache:
        """The cache of an encoder-mode MAN-MoE model (any head, or `ManMoeModel`)."""
        base = getattr(model, model.base_model_prefix, model)
        if not base.inputs.cacheable:
            raise ValueError(f"the model's input component {type(base.inputs).__name__} has no features to cache; "
                             "a feature cache needs a frozen encoder (EncoderInputs)")  # fmt: skip
        kwargs.setdefault("encoder_name_or_path", model.config.encoder_name_or_path)
        return cls(base.inputs.encoder_features, tokenizer, **kwargs)

    # -- keys ---------------------------------------------------------------------------------------------
    @property
    def encoder_weights_sha256(self) -> str:
        """`tensors_sha256` of the encoder, computed once per cache object."""
        if self._weights_sha256 is None:
            self._weights_sha256 = tensors_sha256(self.encoder_features.encoder)
        return self._weights_sha256

    def key(self, sentences: list[list[str]]) -> dict:
        """Everything the features of `sentences` depend on (the file name is its hash)."""
        data = hashlib.sha256(json.dumps(sentences, ensure_ascii=False).encode("utf-8")).hexdigest()
        encoder = self.encoder_name_or_path
        if encoder is not None and os.path.isdir(encoder):  # a local folder: the same key from any working directory
            encoder = os.path.realpath(encoder)  # or through any symbolic link
        return {
            "format": FORMAT_VERSION,
            "encoder": encoder,
            "encoder_weights_sha256": self.encoder_weights_sha256,
            "layers": list(self.encoder_features.layers),
            "pooling": self.encoder_features.pooling,
            "position_limit": self.encoder_features.max_length(),
            "tokenizer_sha256": hashlib.sha256(self.tokenizer.encoder_tokenizer_json.encode("utf-8")).hexdigest(),
            "data_sha256": data,
            "sentences": len(sentences),
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    def path_for(self, key: dict) -> str:
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:40]
        return os.path.join(self.cache_dir, f"{name}.safetensors")

    # -- lookup -------------------------------------------------------------------------------------------
    def features(self, sentences: list[list[str]], description: str = "") -> list[torch.Tensor]:
        """One (words, layers, hidden) tensor per sentence: from memory, else from disk, else built and stored."""
        sentences = [list(words) for words in sentences]
        key = self.key(sentences)
        path = self.path_for(key)
        if path not in self._loaded:
            stored = self._read(path, key, sentences) if os.path.exists(path) else None
            if stored is None:
                stored = self._build(path, key, sentences, description)
            self._loaded[path] = stored
        return self._loaded[path]

    def _read(self, path: str, key: dict, sentences: list[list[str]]) -> list[torch.Tensor] | None:
        try:
            with safe_open(path, framework="pt") as handle:
                metadata = handle.metadata() or {}
                features, offsets = handle.get_tensor("features"), handle.get_tensor("offsets")
        except Exception as error:  # a damaged file is rebuilt, never trusted
            logger.warning("feature cache %s is unreadable (%s); rebuilding it", path, error)
            return None
        lengths = [len(words) for words in sentences]
        if json.loads(metadata.get("key", "null")) != key or offsets.tolist() != _offsets(lengths):
            logger.warning("feature cache %s does not match its key; rebuilding it", path)
            return None
        logger.info("feature cache hit: %s (%d sentences)", path, len(sentences))
        return _split(features, offsets)

    @torch.no_grad()
    def _build(self, path: str, key: dict, sentences: list[list[str]], description: str) -> list[torch.Tensor]:
        started = time.perf_counter()
        subtokens = [self.tokenizer.encoder_subtokens(words) for words in sentences]
        order = sorted(range(len(sentences)), key=lambda i: len(subtokens[i][0]), reverse=True)
        lengths = [len(words) for words in sentences]
        offsets = _offsets(lengths)
        encoder = self.encoder_features
        home = next(encoder.encoder.parameters()).device
        device = home if self.device is None else torch.device(self.device)
        size = encoder.encoder.config.hidden_size
        stored = torch.zeros(offsets[-1], len(encoder.layers), size, dtype=self.dtype)
        progress = tqdm(total=len(sentences), unit="sent", desc=f"encoding {description}".strip(),
                        disable=not self.show_progress)  # fmt: skip
        encoder.to(device)
        try:
            for batch in length_sorted_batches(order, [len(subtokens[i][0]) for i in order], self.max_batch_subtokens):
                ids, mask, word_ids = pad_subtokens(*zip(*(subtokens[index] for index in batch), strict=True))
                num_words = max(lengths[index] for index in batch)
                pooled = encoder(ids.to(device), mask.to(device), word_ids.to(device), num_words).cpu()
                for row, index in enumerate(batch):
                    stored[offsets[index] : offsets[index + 1]] = pooled[row, : lengths[index]].to(self.dtype)
                progress.update(len(batch))
        finally:
            encoder.to(home)
            progress.close()
        seconds = time.perf_counter() - started
        os.makedirs(self.cache_dir, exist_ok=True)
        temporary = f"{path}.tmp-{os.getpid()}"
        save_file({"features": stored, "offsets": torch.tensor(offsets)}, temporary, metadata={"key": json.dumps(key)})
        os.replace(temporary, path)  # atomic: a killed build never leaves a file that looks complete
        self.last_build = {
            "path": path,
            "sentences": len(sentences),
            "words": offsets[-1],
            "subtokens": sum(len(ids) for ids, _ in subtokens),
            "seconds": seconds,
            "sentences_per_s": len(sentences) / seconds if seconds else float("inf"),
            "bytes": os.path.getsize(path),
            "device": str(device),
        }
        logger.info("feature cache built: %s (%d sentences in %.1f s, %.1f MB)", path, len(sentences), seconds,
                    self.last_build["bytes"] / 2**20)  # fmt: skip
        return _split(stored, torch.tensor(offsets))


def _offsets(lengths: list[int]) -> list[int]:
    offsets = [0]
    for length in lengths:
        offsets.append(offsets[-1] + length)
    return offsets


def _split(features: torch.Tensor, offsets: torch.Tensor) -> list[torch.Tensor]:
    bounds = offsets.tolist()
    return [features[start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)]


def length_sorted_batches(order: list[int], lengths: list[int], budget: int) -> list[list[int]]:
    """Consecutive runs of `order` (longest first) whose padded size (rows x longest) stays within `budget`
    sub-tokens; a sentence longer than the budget gets a batch of its own."""
    batches, current, width = [], [], 0
    for index, length in zip(order, lengths, strict=True):
        if current and (len(current) + 1) * width > budget:
            batches.append(current)
            current = []
        if not current:
            width = length
        current.append(index)
    if current:
        batches.append(current)
    return batches
