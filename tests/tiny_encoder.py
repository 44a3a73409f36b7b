"""A tiny random BERT encoder with its own fast WordPiece tokenizer, saved to a folder (no download)."""

from __future__ import annotations

from pathlib import Path

WORDS = ["peter", "lives", "in", "berlin", "jan", "woont", "amsterdam", "ana", "vive", "madrid", "er", "wohnt"]


def make_tiny_encoder(folder: Path, max_position_embeddings: int = 64, seed: int = 0, layers: int = 2) -> Path:
    """Save a `layers`-layer, 12-d BERT and a WordPiece tokenizer (lower-casing, `##` pieces) under `folder`."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + WORDS + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += list("abcdefghijklmnopqrstuvwxyz.,")
    backend = Tokenizer(models.WordPiece({piece: i for i, piece in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=12,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=max_position_embeddings,
    )
    folder.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
