"""`ManMoeConfig.kernels`: "fast" (the hand-written CPU kernels) and "torch" (plain nn.LSTM, nn.Dropout, nn.Conv1d)
compute the same model: with the same weights, the same outputs and gradients up to float rounding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modeling_manmoe import ManMoeConfig, ManMoeForSequenceClassification, ManMoeForTokenClassification
from modeling_manmoe.kernels.dropout import Dropout
from tests.conftest import TINY, random_batch

NO_DROPOUT = dict(input_dropout=0.0, char_dropout=0.0, lstm_dropout=0.0, expert_dropout=0.0, predictor_dropout=0.0,
                  discriminator_dropout=0.0)  # fmt: skip


def tiny_encoder_config() -> dict:
    from transformers import BertConfig

    return BertConfig(vocab_size=50, hidden_size=12, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=16, max_position_embeddings=32).to_dict()  # fmt: skip


def pair(model_class, **fields):
    """A model with the fast kernels and one with the torch kernels holding the same weights."""
    torch.manual_seed(0)
    fast = model_class(ManMoeConfig(**{**TINY, **fields, "kernels": "fast"}))
    if "encoder_config" not in fields:
        fast.set_word_vectors(torch.randn(TINY["word_vocab_size"], TINY["word_embedding_dim"]))
    plain = model_class(ManMoeConfig(**{**TINY, **fields, "kernels": "torch"}))
    plain.load_state_dict(fast.state_dict())
    return fast, plain


def inputs_for(config, seed: int = 0) -> dict:
    batch = random_batch(config, batch=4, words=8, chars=7, seed=seed, lengths=[8, 3, 6, 1])
    batch["lang_ids"] = torch.tensor([0, 1, 2, 3])
    if config.encoder_config is not None:
        generator = torch.Generator().manual_seed(seed)
        batch["input_features"] = torch.randn(4, 8, 12, generator=generator) * batch["attention_mask"][..., None]
        del batch["input_ids"]
    return batch


INPUTS = {
    "word vectors + CharCNN": {},
    "frozen encoder + CharCNN": {"encoder_config": "tiny"},
    "word vectors, trainable characters": {"freeze_char_embeddings": False},
}


def fields_of(name: str) -> dict:
    fields = dict(INPUTS[name])
    if fields.get("encoder_config") == "tiny":
        fields["encoder_config"] = tiny_encoder_config()
    return fields


@pytest.mark.parametrize("model_class", [ManMoeForTokenClassification, ManMoeForSequenceClassification])
@pytest.mark.parametrize("inputs", list(INPUTS))
def test_fast_and_torch_kernels_give_the_same_logits(model_class, inputs):
    fast, plain = pair(model_class, **fields_of(inputs))
    assert type(fast.manmoe.shared_extractor.encoder.lstm) is nn.LSTM
    assert (
        fast.manmoe.shared_extractor.encoder.kernels is not None
        and plain.manmoe.shared_extractor.encoder.kernels is None
    )
    assert isinstance(fast.manmoe.shared_extractor.encoder.input_dropout, Dropout)
    assert type(plain.manmoe.shared_extractor.encoder.input_dropout) is nn.Dropout
    batch = inputs_for(fast.config)
    batch.pop("labels")
    fast.eval(), plain.eval()
    with torch.no_grad():
        expected = fast(**batch, return_language_logits=True)
        got = plain(**batch, return_language_logits=True)
    torch.testing.assert_close(got.logits, expected.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.language_logits, expected.language_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.private_gate_logits, expected.private_gate_logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_class", [ManMoeForTokenClassification, ManMoeForSequenceClassification])
@pytest.mark.parametrize("inputs", list(INPUTS))
def test_fast_and_torch_kernels_give_the_same_loss_and_gradients(model_class, inputs):
    """In training mode without dropout (nothing random): the objective, D's loss and every parameter's gradient."""
    fast, plain = pair(model_class, **fields_of(inputs), **NO_DROPOUT)
    batch = inputs_for(fast.config, seed=1)
    if model_class is ManMoeForSequenceClassification:
        batch["labels"] = torch.tensor([0, 1, 1, 0]) % fast.config.num_labels
    gradients = []
    for model in (fast, plain):
        model.train()
        out = model(**batch, return_language_logits=True, task_rows=torch.tensor([True, True, True, False]))
        total = out.loss + nn.functional.nll_loss(out.language_logits, batch["lang_ids"])
        total.backward()
        gradients.append({name: p.grad for name, p in model.named_parameters() if p.grad is not None})
        gradients[-1]["loss"] = out.loss.detach()
    assert set(gradients[0]) == set(gradients[1]) and len(gradients[0]) > 10
    for name in gradients[0]:
        torch.testing.assert_close(gradients[1][name], gradients[0][name], rtol=1e-4, atol=1e-6, msg=name)


def test_torch_kernels_support_double_backward():
    """The plain path (needed by meta-gradients) differentiates twice; the fast LSTM's hand-written backward cannot."""
    _, plain = pair(ManMoeForTokenClassification, **NO_DROPOUT)
    batch = inputs_for(plain.config)
    plain.train()
    loss = plain(**batch).loss
    weights = [p for p in plain.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    weights, grads = zip(*[(w, g) for w, g in zip(weights, grads, strict=True) if g is not None], strict=True)
    second = torch.autograd.grad(sum((g * g).sum() for g in grads), weights[0])
    assert torch.isfinite(second[0]).all()


def test_an_unknown_kernels_value_names_the_field():
    from modeling_manmoe import ManMoeConfigError

    with pytest.raises(ManMoeConfigError, match=r"ManMoeConfig.kernels: 'cuda' is not one of \['fast', 'torch'\]"):
        ManMoeConfig(**TINY, kernels="cuda")
