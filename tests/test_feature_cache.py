"""EncoderFeatureCache and encoder-mode training on a tiny random BERT + WordPiece tokenizer made in the test."""

import os
import random

import datasets
import pytest
import torch
import transformers

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification
from modeling_manmoe.data.feature_cache import EncoderFeatureCache
from modeling_manmoe.data.inputs import build_encoder_inputs
from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments
from tests.conftest import TINY
from tests.tiny_encoder import WORDS, make_tiny_encoder

transformers.logging.set_verbosity_error()
LANGUAGES = ["en", "de", "es", "nl"]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return make_tiny_encoder(tmp_path_factory.mktemp("encoder"))


def sentences(count: int, seed: int, max_words: int = 9) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(WORDS).title() for _ in range(rng.randint(1, max_words))] for _ in range(count)]


def encoder_model(encoder_dir, layers=(-1,), **overrides):
    tokenizer, encoder_config = build_encoder_inputs(str(encoder_dir), LANGUAGES, characters=WORDS)
    fields = {**TINY, "char_vocab_size": tokenizer.char_vocab_size, **overrides}
    config = ManMoeConfig(**fields, encoder_config=encoder_config,
                          encoder_name_or_path=str(encoder_dir), encoder_layers=list(layers))  # fmt: skip
    torch.manual_seed(0)
    model = ManMoeForTokenClassification(config)
    model.load_pretrained_encoder(str(encoder_dir))
    return model, tokenizer


def cache_for(model, tokenizer, folder, **kwargs):
    return EncoderFeatureCache.for_model(model, tokenizer, cache_dir=folder, show_progress=False, **kwargs)


def test_cache_is_built_once_then_read(encoder_dir, tmp_path):
    model, tokenizer = encoder_model(encoder_dir, layers=(0, -1))
    data = sentences(30, seed=1)
    first = cache_for(model, tokenizer, tmp_path)
    built = first.features(data)
    assert first.last_build["sentences"] == 30 and os.listdir(tmp_path) == [os.path.basename(first.last_build["path"])]
    assert [f.shape for f in built] == [(len(words), 2, 12) for words in data] and built[0].dtype == torch.float16
    second = cache_for(model, tokenizer, tmp_path)
    read = second.features(data)
    assert second.last_build is None, "a second cache over the same data reads the file instead of rebuilding"
    assert all(torch.equal(a, b) for a, b in zip(built, read, strict=True))
    # the stored features are the live encoder's, in float16
    live = model.manmoe.inputs.encoder_features
    ids, word_ids = tokenizer.encoder_subtokens(data[3])
    expected = live(torch.tensor([ids]), torch.ones(1, len(ids)), torch.tensor([word_ids]), len(data[3]))[0]
    assert torch.allclose(read[3].float(), expected, atol=1e-2, rtol=1e-3)


@pytest.mark.parametrize("change", ["data", "layers", "pooling", "weights", "dtype"])
def test_cache_is_rebuilt_when_a_key_changes(encoder_dir, tmp_path, change):
    model, tokenizer = encoder_model(encoder_dir)
    data = sentences(12, seed=2)
    cache_for(model, tokenizer, tmp_path).features(data)
    kwargs = {}
    if change == "data":
        data = data[:-1] + [["Berlin"]]
    elif change in ("layers", "pooling"):
        model, tokenizer = encoder_model(encoder_dir, **({"layers": (1,)} if change == "layers" else {}),
                                         **({"encoder_pooling": "mean"} if change == "pooling" else {}))  # fmt: skip
    elif change == "weights":
        with torch.no_grad():
            model.manmoe.inputs.encoder_features.encoder.embeddings.word_embeddings.weight[5] += 1.0
    else:
        kwargs["dtype"] = torch.float32
    again = cache_for(model, tokenizer, tmp_path, **kwargs)
    again.features(data)
    assert again.last_build is not None, f"changing the {change} must rebuild the cache"
    assert len(os.listdir(tmp_path)) == 2


def test_damaged_cache_file_is_rebuilt_not_trusted(encoder_dir, tmp_path):
    model, tokenizer = encoder_model(encoder_dir)
    data = sentences(10, seed=3)
    first = cache_for(model, tokenizer, tmp_path)
    good = first.features(data)
    with open(first.last_build["path"], "r+b") as handle:  # truncate the file as a crash of another tool might
        handle.truncate(100)
    again = cache_for(model, tokenizer, tmp_path)
    rebuilt = again.features(data)
    assert again.last_build is not None
    assert all(torch.equal(a, b) for a, b in zip(good, rebuilt, strict=True))
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name], "no temporary file is left behind"


def test_cache_needs_an_encoder_tokenizer(encoder_dir, tmp_path, tiny_config):
    model, tokenizer = encoder_model(encoder_dir)
    word_model = ManMoeForTokenClassification(tiny_config)
    with pytest.raises(ValueError, match="a feature cache needs a frozen encoder"):
        EncoderFeatureCache.for_model(word_model, tokenizer, cache_dir=tmp_path)


def training_run(encoder_dir, output_dir, cache_dir=None, dtype=torch.float32, layers=(-1,), use_cpu=True):
    model, tokenizer = encoder_model(encoder_dir, layers=layers)
    train = {}
    for index, language in enumerate(LANGUAGES):
        data = sentences(24, seed=10 + index)
        rows = {"tokens": data}
        if language != "nl":
            rows["ner_tags"] = [[(len(word) + index) % TINY["num_labels"] for word in words] for words in data]
        train[language] = datasets.Dataset.from_dict(rows)
    args = ManMoeTrainingArguments(output_dir=str(output_dir), max_steps=5, per_device_train_batch_size=4,
                                   save_strategy="no", report_to=[], disable_tqdm=True, seed=0, use_cpu=use_cpu,
                                   learning_rate=1e-2)  # fmt: skip
    cache = cache_for(model, tokenizer, cache_dir, dtype=dtype) if cache_dir is not None else None
    trainer = ManMoeTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                            feature_cache=cache)  # fmt: skip
    if cache is not None:
        first_item = trainer.train_dataset.labeled["en"][0]
        assert "input_features" in first_item and "encoder_input_ids" not in first_item
        # the cache was built where the trainer runs
        assert cache.device == trainer.args.device and cache.last_build["device"] == str(trainer.args.device)
    trainer.train()
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@pytest.mark.parametrize("layers", [(-1,), (0, 1, 2)])
def test_training_from_the_cache_gives_the_model_of_the_live_encoder(encoder_dir, tmp_path, layers):
    live = training_run(encoder_dir, tmp_path / "live", layers=layers)
    cached = training_run(encoder_dir, tmp_path / "cached", cache_dir=tmp_path / "cache", layers=layers)
    assert live.keys() == cached.keys()
    for name in live:
        assert torch.allclose(live[name], cached[name], atol=1e-5, rtol=1e-4), name
    start, _ = encoder_model(encoder_dir, layers=layers)
    moved = [n for n, t in start.state_dict().items() if "encoder." not in n and not torch.equal(t, live[n])]
    assert moved, "training changed the MAN-MoE weights"
    if len(layers) > 1:
        assert not torch.equal(live["manmoe.inputs.layer_mix.weights"], torch.zeros(len(layers))), "the mix learns"


def test_float16_cache_trains_close_to_float32(encoder_dir, tmp_path):
    full = training_run(encoder_dir, tmp_path / "a", cache_dir=tmp_path / "c32")
    half = training_run(encoder_dir, tmp_path / "b", cache_dir=tmp_path / "c16", dtype=torch.float16)
    drift = max((full[n] - half[n]).abs().max().item() for n in full if full[n].is_floating_point())
    assert drift < 5e-2, f"float16 features changed the trained weights by up to {drift}"
