"""Encoder input mode on a tiny random BERT made in the test (no download)."""

import pytest
import torch
from transformers import BertConfig, BertModel

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification
from modeling_manmoe.embeddings import pool_subtokens
from tests.conftest import TINY


@pytest.fixture
def encoder_dir(tmp_path):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=12,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=32,
    )
    BertModel(config).save_pretrained(tmp_path / "encoder")
    return tmp_path / "encoder"


def encoder_config(encoder_dir, **overrides):
    from transformers import AutoConfig

    encoder = AutoConfig.from_pretrained(encoder_dir).to_dict()
    return ManMoeConfig(
        **{
            **TINY,
            "input_mode": "encoder",
            "encoder_config": encoder,
            "use_char_cnn": False,
            "encoder_name_or_path": str(encoder_dir),
            **overrides,
        }
    )


def batch():
    # sentence 0: words 0,1,2 with word 1 split in two sub-tokens; sentence 1: two words, padded
    ids = torch.tensor([[1, 5, 6, 7, 8, 2], [1, 9, 10, 2, 0, 0]])
    word_ids = torch.tensor([[-1, 0, 1, 1, 2, -1], [-1, 0, 1, -1, -1, -1]])
    return {
        "encoder_input_ids": ids,
        "encoder_attention_mask": (ids != 0).long(),
        "encoder_word_ids": word_ids,
        "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]]),
    }


def test_pool_subtokens_first_and_mean():
    hidden = torch.arange(12.0).reshape(1, 6, 2)
    word_ids = torch.tensor([[-1, 0, 1, 1, 2, -1]])
    first = pool_subtokens(hidden, word_ids, 4, "first")
    assert first[0, :3].tolist() == [[2.0, 3.0], [4.0, 5.0], [8.0, 9.0]] and first[0, 3].tolist() == [0.0, 0.0]
    mean = pool_subtokens(hidden, word_ids, 3, "mean")
    assert mean[0, 1].tolist() == [5.0, 6.0]


def test_encoder_is_frozen_and_loaded(encoder_dir, tmp_path):
    model = ManMoeForTokenClassification(encoder_config(encoder_dir))
    model.load_pretrained_encoder(str(encoder_dir))
    reference = BertModel.from_pretrained(encoder_dir)
    encoder = model.manmoe.inputs.encoder_features.encoder
    assert torch.equal(encoder.embeddings.word_embeddings.weight, reference.embeddings.word_embeddings.weight)
    assert not any(p.requires_grad for p in encoder.parameters())
    model.train()
    assert not encoder.training, "the frozen encoder stays in eval mode"
    model.save_pretrained(tmp_path / "saved")
    loaded = ManMoeForTokenClassification.from_pretrained(tmp_path / "saved")
    assert not any(p.requires_grad for p in loaded.manmoe.inputs.encoder_features.encoder.parameters())
    assert loaded.num_trainable_parameters() == model.num_trainable_parameters()
    loaded.eval(), model.eval()
    assert torch.equal(loaded(**batch()).logits, model(**batch()).logits)


def test_precomputed_features_give_the_same_outputs(encoder_dir):
    model = ManMoeForTokenClassification(encoder_config(encoder_dir)).eval()
    model.load_pretrained_encoder(str(encoder_dir))
    live = model(**batch())
    hidden = BertModel.from_pretrained(encoder_dir)(
        input_ids=batch()["encoder_input_ids"], attention_mask=batch()["encoder_attention_mask"]
    ).last_hidden_state
    features = pool_subtokens(hidden, batch()["encoder_word_ids"], 3, "first")
    cached = model(input_features=features, attention_mask=batch()["attention_mask"])
    assert torch.allclose(live.logits, cached.logits, atol=1e-6)


def test_encoder_mode_with_char_cnn(encoder_dir):
    model = ManMoeForTokenClassification(encoder_config(encoder_dir, use_char_cnn=True)).eval()
    inputs = batch()
    inputs["char_ids"] = torch.randint(1, 12, (2, 3, 4))
    assert model(**inputs).logits.shape == (2, 3, 5)
    with pytest.raises(ValueError, match="char_ids"):
        model(**batch())


def test_too_long_sentence_is_an_error_not_a_truncation(encoder_dir):
    model = ManMoeForTokenClassification(encoder_config(encoder_dir)).eval()
    ids = torch.ones(1, 40, dtype=torch.long)
    with pytest.raises(ValueError, match="limit of 32"):
        model(
            encoder_input_ids=ids,
            encoder_attention_mask=ids,
            encoder_word_ids=torch.arange(40)[None],
            attention_mask=torch.ones(1, 40, dtype=torch.long),
        )
