"""Encoder input mode on a tiny random BERT made in the test (no download)."""

import pytest
import torch
from transformers import BertConfig, BertModel

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification
from modeling_manmoe.encoder_inputs import pool_subtokens, window_owners, window_starts
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


def test_window_starts_cover_every_position_with_context():
    assert window_starts(10, 16) == [0]
    starts = window_starts(40, 16)
    assert starts == [0, 8, 16, 24]
    owners = window_owners(40, 16, starts)
    for position, owner in enumerate(owners.tolist()):
        assert starts[owner] <= position < starts[owner] + 16
    assert owners[:12].tolist() == [0] * 12 and owners[-4:].tolist() == [3] * 4


def test_long_sentence_is_encoded_in_windows_not_truncated(tmp_path):
    from tests.tiny_encoder import make_tiny_encoder

    folder = make_tiny_encoder(tmp_path / "short", max_position_embeddings=16)
    config = encoder_config(folder, encoder_layers=[-1, 1])
    features = ManMoeForTokenClassification(config).manmoe.inputs.encoder_features
    features.encoder.load_state_dict(BertModel.from_pretrained(folder).state_dict())
    torch.manual_seed(1)
    long_ids = torch.randint(4, 40, (1, 40))
    short_ids = torch.randint(4, 40, (1, 9))
    ids = torch.cat([long_ids, torch.cat([short_ids, torch.zeros(1, 31, dtype=torch.long)], 1)])
    mask = (torch.arange(40)[None] < torch.tensor([[40], [9]])).long()
    states = features.subtoken_states(ids, mask)  # (2, 40, 2 layers, 12)
    assert states.shape == (2, 40, 2, 12)
    alone = features.subtoken_states(long_ids[:, :16], torch.ones(1, 16, dtype=torch.long))
    assert torch.allclose(states[0, :12], alone[0, :12], atol=1e-5), "the first window's own positions"
    tail = features.subtoken_states(long_ids[:, 24:], torch.ones(1, 16, dtype=torch.long))
    assert torch.allclose(states[0, 36:], tail[0, 12:], atol=1e-5), "the last window's own positions"
    assert (states[0].abs().sum(dim=(1, 2)) > 0).all(), "every sub-token of the long sentence has a state"
    short = features.subtoken_states(short_ids, torch.ones(1, 9, dtype=torch.long))
    assert torch.allclose(states[1, :9], short[0], atol=1e-5), "a short row is unaffected by the long one"
    word_ids = torch.arange(40)[None].expand(2, 40) // 2  # two sub-tokens per word
    pooled = features(ids, mask, torch.where(mask.bool(), word_ids, -1), num_words=20)
    assert pooled.shape == (2, 20, 2, 12)


def test_layer_mix_weights_the_configured_layers(encoder_dir):
    model = ManMoeForTokenClassification(encoder_config(encoder_dir, encoder_layers=[0, -1])).eval()
    mix = model.manmoe.inputs.layer_mix
    assert mix is not None and mix.weights.requires_grad
    features = torch.randn(2, 3, 2, 12)
    assert torch.allclose(mix(features), features.mean(dim=2), atol=1e-6), "starts as the plain average"
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.0, 30.0]))
    assert torch.allclose(mix(features), features[:, :, 1], atol=1e-5)
    out = model(input_features=features, attention_mask=torch.ones(2, 3, dtype=torch.long))
    assert out.logits.shape == (2, 3, 5)


@pytest.mark.parametrize("layers, message", [([], "non-empty"), ([5], "hidden states 0..2"), ([-1, -1], "distinct")])
def test_encoder_layers_are_validated(encoder_dir, layers, message):
    from modeling_manmoe import ManMoeConfigError

    with pytest.raises(ManMoeConfigError, match=message):
        encoder_config(encoder_dir, encoder_layers=layers)


def test_encoder_tokenizer_round_trips_through_save_pretrained(tmp_path):
    from transformers import AutoTokenizer

    from modeling_manmoe.data.inputs import build_encoder_inputs
    from tests.tiny_encoder import make_tiny_encoder

    folder = make_tiny_encoder(tmp_path / "encoder")
    tokenizer, _ = build_encoder_inputs(str(folder), ["en", "nl"], characters=["Peter woont"])
    words = ["Peter", "woont", "in", "Amsterdamx"]
    encoded = tokenizer.encode_words(words, "nl")
    assert encoded["encoder_word_ids"] == [-1, 0, 1, 2, 3, 3, -1], "Amsterdamx is two pieces; CLS/SEP are -1"
    tokenizer.save_pretrained(tmp_path / "saved")
    loaded = AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert loaded.encode_words(words, "nl") == encoded
    batch = loaded([words, words[:2]], language="nl", is_split_into_words=True, return_tensors="pt")
    assert (
        batch["encoder_input_ids"].shape == (2, 7) and batch["encoder_attention_mask"][1].tolist() == [1] * 4 + [0] * 3
    )
