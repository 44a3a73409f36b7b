import pytest
import torch

from modeling_manmoe import (
    ManMoeConfig,
    ManMoeForSequenceClassification,
    ManMoeForTokenClassification,
    ManMoeModel,
)
from modeling_manmoe.mixture_of_experts import BatchedExperts
from modeling_manmoe.word_vector_inputs import FrozenWordEmbedding
from tests.conftest import TINY, load_script, random_batch

memory = load_script("benchmarks/memory.py")  # the benchmarks' reader of /proc/self/status


def build(config, cls=ManMoeForTokenClassification, seed=0):
    torch.manual_seed(seed)
    model = cls(config)
    vectors = torch.nn.functional.normalize(torch.randn(config.word_vocab_size, config.word_embedding_dim), dim=-1)
    vectors[0] = 0
    model.set_word_vectors(vectors)
    return model


def test_paper_configuration_parameter_count():
    """The reference has 3,092,765 trainable parameters (D included, frozen tables excluded) for CoNLL."""
    config = ManMoeConfig(word_vocab_size=1000, char_vocab_size=100, num_labels=9)
    model = ManMoeForTokenClassification(config)
    assert model.num_trainable_parameters() == 3_092_765
    buffers = dict(model.named_buffers())
    assert buffers["manmoe.inputs.word_embeddings.weight"].shape == (1000, 300)
    assert buffers["manmoe.inputs.char_cnn.char_vectors"].shape == (100, 128)


def test_shapes(tiny_config):
    model = build(tiny_config).eval()
    batch = random_batch(tiny_config)
    out = model(**batch, return_language_logits=True)
    assert out.logits.shape == (3, 7, 5)
    assert out.private_gate_logits.shape == out.predictor_gate_logits.shape == (3, 7, 3)
    assert out.language_logits.shape == (3, 4)
    assert out.loss.dim() == 0 and torch.isclose(out.loss, out.task_loss + out.gate_loss)
    base = ManMoeModel(tiny_config)(input_ids=batch["input_ids"], char_ids=batch["char_ids"])
    assert base.last_hidden_state.shape == (3, 7, 16) and base.shared_features.shape == (3, 7, 8)
    assert base.language_logits is None


def test_sequence_classification_shapes_and_loss(tiny_config):
    config = ManMoeConfig(**{**TINY, "num_labels": 2})
    model = build(config, ManMoeForSequenceClassification).eval()
    batch = random_batch(config)
    batch["labels"] = torch.tensor([0, 1, 1])
    out = model(**batch)
    assert out.logits.shape == (3, 2) and out.predictor_gate_logits.shape == (3, 3)
    assert out.private_gate_logits.shape == (3, 7, 3)
    assert (out.logits.exp().sum(-1) <= 1 + 1e-6).all()  # gate-weighted sum of log-probabilities
    assert out.loss > 0


def test_mixture_of_normalised_log_distributions(tiny_config):
    """The reference mixes log-probabilities: output = sum_e softmax(gate)_e * log_softmax(expert_e). Each expert
    is a normalised log-distribution and the gate weights sum to one; the weighted sum itself is the log of an
    unnormalised geometric mixture (exp sums to <= 1), on which the reference takes the NLL."""
    model = build(tiny_config).eval()
    batch = random_batch(tiny_config, lengths=[7, 3, 5])
    logits = model(**batch).logits
    real = batch["attention_mask"].bool()
    predictor = model.predictor.mixture
    features = model.manmoe(**{k: v for k, v in batch.items() if k != "labels"})
    flat = features.last_hidden_state[real]  # real positions only: the mixture is not computed on padding
    experts = predictor.experts(flat)
    assert torch.allclose(experts.exp().sum(-1), torch.ones_like(experts[..., 0]), atol=1e-5)
    weights = torch.softmax(predictor.gate(flat), -1)
    assert torch.allclose(weights.sum(-1), torch.ones(flat.shape[0]), atol=1e-6)
    assert torch.allclose((weights.unsqueeze(-1) * experts).sum(1), logits[real], atol=1e-5)
    assert (logits[real] <= 1e-6).all()
    assert (logits[~real] == 0).all()


def test_task_rows_equal_the_full_forward_on_those_rows(tiny_config):
    """Training sends only the labeled rows through F_p and C (`task_rows`); their outputs and loss are those of
    a forward over those rows alone, and h_s still covers every row."""
    model = build(tiny_config).eval()
    batch = random_batch(tiny_config, lengths=[7, 3, 5])
    rows = torch.tensor([True, False, True])
    out = model(**batch, task_rows=rows, output_shared_features=True)
    alone = model(**{k: v[rows] for k, v in batch.items()}, output_shared_features=True)
    assert torch.allclose(out.logits, alone.logits, atol=1e-6)
    assert torch.allclose(out.loss, alone.loss, atol=1e-6)
    assert torch.allclose(out.private_gate_logits, alone.private_gate_logits, atol=1e-6)
    full = model(**batch, output_shared_features=True)
    assert out.shared_features.shape[0] == 3
    assert torch.allclose(out.shared_features, full.shared_features, atol=1e-6)


def test_padding_invariance(tiny_config):
    model = build(tiny_config).eval()
    batch = random_batch(tiny_config, lengths=[7, 3, 5])
    out = model(**batch)
    for row, length in enumerate([7, 3, 5]):
        alone = {k: v[row : row + 1, :length] if v.dim() > 1 else v[row : row + 1] for k, v in batch.items()}
        single = model(**alone)
        assert torch.allclose(single.logits[0], out.logits[row, :length], atol=1e-5)
        assert torch.allclose(single.private_gate_logits[0], out.private_gate_logits[row, :length], atol=1e-5)


def test_save_load_round_trip_identical_outputs(tiny_config, tmp_path):
    model = build(tiny_config).eval()
    batch = random_batch(tiny_config)
    expected = model(**batch)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = ManMoeForTokenClassification.from_pretrained(tmp_path).eval()
    got = loaded(**batch)
    assert torch.equal(got.logits, expected.logits) and torch.equal(got.loss, expected.loss)
    assert torch.equal(loaded.manmoe.inputs.word_embeddings.weight, model.manmoe.inputs.word_embeddings.weight), (
        "frozen word table must round-trip"
    )
    assert loaded.num_trainable_parameters() == model.num_trainable_parameters()
    assert not any("word_embeddings" in n or "char_vectors" in n for n, _ in loaded.named_parameters())


def test_word_table_is_used_as_is_when_it_owns_its_storage_else_copied(tiny_config):
    shape = (tiny_config.word_vocab_size, tiny_config.word_embedding_dim)
    table = torch.randn(shape)
    model = ManMoeForTokenClassification(tiny_config)
    model.set_word_vectors(table)
    buffer = model.manmoe.inputs.word_embeddings.weight
    assert buffer.data_ptr() == table.data_ptr(), "a float32 table that owns its storage is not duplicated"
    assert "manmoe.inputs.word_embeddings.weight" in dict(model.named_buffers())
    for other in (torch.randn(shape[0] + 1, shape[1])[1:], table.double(), torch.randn(shape[::-1]).T):
        model = ManMoeForTokenClassification(tiny_config)
        model.set_word_vectors(other)  # a view into a larger storage, another dtype, a non-contiguous tensor
        buffer = model.manmoe.inputs.word_embeddings.weight
        assert buffer.dtype == torch.float32 and buffer.is_contiguous() and torch.equal(buffer, other.float())
        assert buffer.untyped_storage().data_ptr() != other.untyped_storage().data_ptr()
    with pytest.raises(ValueError, match="word vector table has shape"):
        model.set_word_vectors(torch.randn(shape[0] - 1, shape[1]))


def test_new_word_table_is_zeros_that_follow_the_default_dtype_and_device():
    table = FrozenWordEmbedding(7, 3).weight
    assert table.dtype == torch.float32 and table.device.type == "cpu" and not table.any()
    with torch.device("meta"):
        assert FrozenWordEmbedding(7, 3).weight.device.type == "meta"  # from_pretrained builds on meta
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert FrozenWordEmbedding(7, 3).weight.dtype == torch.float64
    finally:
        torch.set_default_dtype(default)


@pytest.mark.skipif(memory.resident_mib("RssAnon") is None, reason="RssAnon is read from Linux's /proc/self/status")
def test_a_new_word_table_is_not_resident_until_written():
    """A (vocab, dim) table that `set_word_vectors` replaces must not be written at construction (torch.zeros
    would make all its 240 MB resident for a moment)."""
    before = memory.resident_mib("RssAnon")
    embedding = FrozenWordEmbedding(200_000, 300)
    assert memory.resident_mib("RssAnon") - before < 40, "the zero table's pages were written"
    assert not embedding.weight[::997].any()
    embedding.load_vectors(torch.ones(200_000, 300))
    assert embedding.weight.all()


def test_frozen_tables_unchanged_after_optimizer_step(tiny_config):
    model = build(tiny_config).train()
    words = model.manmoe.inputs.word_embeddings.weight.clone()
    chars = model.manmoe.inputs.char_cnn.char_vectors.clone()
    lstm = model.manmoe.shared_extractor.encoder.lstm.weight_ih_l0.clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(**random_batch(tiny_config)).loss.backward()
    optimizer.step()
    assert torch.equal(model.manmoe.inputs.word_embeddings.weight, words)
    assert torch.equal(model.manmoe.inputs.char_cnn.char_vectors, chars)
    assert not torch.equal(model.manmoe.shared_extractor.encoder.lstm.weight_ih_l0, lstm), "training did happen"


def test_trainable_char_vectors_option(tiny_config):
    config = ManMoeConfig(**{**TINY, "freeze_char_embeddings": False})
    model = ManMoeForTokenClassification(config)
    assert "manmoe.inputs.char_cnn.char_vectors" in dict(model.named_parameters())


def test_gate_losses_send_no_gradient_into_the_bilstms(tiny_config):
    model = build(tiny_config).train()
    out = model(**random_batch(tiny_config))
    gate_only = 0.01 * torch.nn.functional.cross_entropy(
        out.private_gate_logits.reshape(-1, 3), torch.zeros(21, dtype=torch.long)
    ) + 0.01 * torch.nn.functional.cross_entropy(
        out.predictor_gate_logits.reshape(-1, 3), torch.zeros(21, dtype=torch.long)
    )
    gate_only.backward()
    for name, param in model.named_parameters():
        is_gate = ".gate." in name
        has_grad = param.grad is not None and param.grad.abs().sum() > 0
        assert has_grad == is_gate, name


def test_gates_not_detached_when_configured(tiny_config):
    config = ManMoeConfig(**{**TINY, "detach_gates": False})
    model = build(config).train()
    out = model(**random_batch(config))
    out.private_gate_logits.sum().backward()
    assert model.manmoe.private_extractor.encoder.lstm.weight_ih_l0.grad.abs().sum() > 0


def test_gate_loss_only_on_source_rows(tiny_config):
    model = build(tiny_config).eval()
    batch = random_batch(tiny_config)
    batch["lang_ids"] = torch.tensor([3, 3, 3])  # the unlabeled target: no expert, no gate loss
    out = model(**batch)
    assert out.gate_loss == 0 and torch.equal(out.loss, out.task_loss)


@pytest.mark.parametrize(
    "ablation, missing",
    [
        ("use_adversary", "manmoe.discriminator."),
        ("use_private_moe", "manmoe.private_extractor.mixture.gate."),
        ("use_predictor_moe", "predictor.mixture.gate."),
    ],
)
def test_ablations(ablation, missing):
    config = ManMoeConfig(**{**TINY, ablation: False})
    model = build(config).eval()
    assert not any(name.startswith(missing) for name, _ in model.named_parameters())
    out = model(**random_batch(config))
    assert out.logits.shape == (3, 7, 5) and torch.isfinite(out.loss)
    if ablation == "use_adversary":
        with pytest.raises(ValueError, match="no discriminator"):
            model(**random_batch(config), return_language_logits=True)
    else:
        gates = out.private_gate_logits if ablation == "use_private_moe" else out.predictor_gate_logits
        assert gates is None


def test_charcnn_word_feature_independent_of_other_words(tiny_config):
    cnn = build(tiny_config).manmoe.inputs.char_cnn.eval()
    word = torch.tensor([[[3, 4, 0, 0, 0, 0, 0, 0]]])
    longer_batch = torch.tensor([[[3, 4, 0, 0, 0, 0, 0, 0], [5, 6, 7, 8, 9, 10, 11, 3]]])
    assert torch.allclose(cnn(word[:, :, :2])[0, 0], cnn(longer_batch)[0, 0], atol=1e-6)


@pytest.mark.parametrize("vocab_size", [2, 300, 70_000])
def test_distinct_rows_equals_torch_unique_over_rows(vocab_size):
    """The CharCNN's fast `distinct_rows` gives `torch.unique(dim=0, return_inverse=True)`'s rows, order and inverse
    (repeated words, padding words, rows that differ only in their last column, several packed columns)."""
    from modeling_manmoe.kernels.distinct_words import distinct_rows

    generator = torch.Generator().manual_seed(vocab_size)
    words = torch.randint(1, vocab_size, (40, 23), generator=generator)
    words[1, :-1] = words[0, :-1]  # differs from row 0 in the last column only (if at all)
    lengths = torch.randint(0, 24, (400,), generator=generator)
    ids = words[torch.randint(0, 40, (400,), generator=generator)] * (torch.arange(23)[None] < lengths[:, None])
    expected, expected_inverse = torch.unique(ids, dim=0, return_inverse=True)
    actual, inverse = distinct_rows(ids, vocab_size)
    assert torch.equal(actual, expected) and torch.equal(inverse, expected_inverse)
    empty, empty_inverse = distinct_rows(ids[:0], vocab_size)
    assert empty.shape == (0, 23) and empty_inverse.shape == (0,)


def test_lstm_runs_in_float32_under_an_autocast_this_cpu_has_no_lstm_for(monkeypatch):
    """CPUs without AVX-512 bf16 have no oneDNN bfloat16 LSTM: under `torch.autocast("cpu", bfloat16)` the BiLSTM
    then runs in float32 (the exact float32 result) instead of failing; elsewhere autocast reaches it."""
    from modeling_manmoe import extractors

    torch.manual_seed(0)
    encoder = extractors.BiLSTMEncoder(6, 8, num_layers=2, input_dropout=0.0, dropout=0.0).eval()
    x, mask = torch.randn(3, 5, 6), torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] + [0] * 4])
    lacks_lstm = extractors.cpu_autocast_lacks_lstm
    assert not lacks_lstm(x)  # no autocast: nothing to avoid
    with torch.no_grad():
        expected = encoder(x, mask).padded()
        monkeypatch.setattr(extractors, "cpu_autocast_lacks_lstm", lambda tensor: True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fallback = encoder(x, mask).padded()
    assert fallback.dtype == torch.float32 and torch.equal(fallback, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("p", [0.5, 0.1, 0.3])
def test_dropout_equals_the_float_mask_definition_and_saves_a_boolean_mask(p, dtype):
    """`Dropout` gives bitwise the values and gradients of `x * keep.to(dtype).mul_(1 / (1 - p))` from the same
    random draws (keep: `random_bits` at p = 0.5, `rand >= p` otherwise), and keeps only a bool tensor (1 byte per
    element) for the backward pass."""
    from modeling_manmoe.kernels.dropout import Dropout, random_bits

    x = torch.randn(4, 7, 9, dtype=dtype, requires_grad=True)
    upstream = torch.randn(4, 7, 9, dtype=dtype)
    torch.manual_seed(3)
    keep = random_bits(x.shape, x.device) if p == 0.5 else torch.rand_like(x) >= p
    expected = x * keep.to(x.dtype).mul_(1.0 / (1.0 - p))
    (expected_grad,) = torch.autograd.grad(expected, x, upstream)
    saved = []
    torch.manual_seed(3)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        actual = Dropout(p).train()(x)
    (actual_grad,) = torch.autograd.grad(actual, x, upstream)
    assert torch.equal(actual, expected) and torch.equal(actual_grad, expected_grad)
    assert saved[0].dtype == torch.bool and saved[0].shape == x.shape and [t.numel() for t in saved[1:]] == [1]
    assert Dropout(p).eval()(x) is x and Dropout(0.0).train()(x) is x


def test_random_bits_are_fair_independent_coins():
    """Each of the 63 bits taken from a draw is a fair coin, neighbours do not agree more than chance, and the
    shape is any shape (the last draw partly used)."""
    from modeling_manmoe.kernels.dropout import random_bits

    torch.manual_seed(0)
    bits = random_bits(torch.Size([4000, 63]), torch.device("cpu")).float()  # row r = draw r: column = bit position
    assert bits.shape == (4000, 63) and bits.dtype == torch.float32
    # 4,000 flips per bit position: mean 0.5, standard deviation 0.0079; 5 sigma
    assert (bits.mean(0) - 0.5).abs().max() < 0.04
    assert abs(bits.mean() - 0.5) < 0.005
    agree = (bits[:, 1:] == bits[:, :-1]).float().mean()  # adjacent bits of one draw
    assert abs(agree - 0.5) < 0.005
    assert abs((bits[1:] == bits[:-1]).float().mean() - 0.5) < 0.005  # the same bit of consecutive draws
    odd = random_bits(torch.Size([3, 5, 7]), torch.device("cpu"))
    assert odd.shape == (3, 5, 7) and odd.dtype == torch.bool and 0 < int(odd.sum()) < 105
    assert random_bits(torch.Size([0]), torch.device("cpu")).shape == (0,)


@pytest.mark.parametrize("activation", ["tanh", "log_softmax"])
def test_batched_experts_are_separate_two_layer_mlps(activation):
    """Without dropout (eval) `BatchedExperts` is each expert's own MLP (its first layers computed side by side in
    one product), and `weighted_sum` the gate-weighted sum of their outputs; in training with dropout every expert
    reads its own mask."""
    torch.manual_seed(0)
    experts = BatchedExperts(3, 5, 4, 6, dropout=0.5, dropout_between=True, activation=activation)
    experts.reset_parameters(torch.nn.init)
    x = torch.randn(7, 5)
    outputs = []
    for e in range(3):
        hidden = torch.relu(torch.nn.functional.linear(x, experts.weight1[e].T, experts.bias1[e]))
        out = torch.nn.functional.linear(hidden, experts.weight2[e].T, experts.bias2[e])
        outputs.append(torch.tanh(out) if activation == "tanh" else torch.log_softmax(out, -1))
    expected = torch.stack(outputs, dim=1)
    torch.testing.assert_close(experts.eval()(x), expected)
    weights = torch.softmax(torch.randn(7, 3), dim=-1)
    torch.testing.assert_close(experts.weighted_sum(x, weights), (weights.unsqueeze(-1) * expected).sum(1))
    torch.testing.assert_close(experts.weighted_sum(x, None), expected[:, 0])
    # without dropout but recorded (eval with gradients): the gradients of the separate MLPs
    grads = torch.autograd.grad((experts.weighted_sum(x, weights) ** 2).sum(), list(experts.parameters()))
    reference = torch.autograd.grad(((weights.unsqueeze(-1) * expected).sum(1) ** 2).sum(), list(experts.parameters()))
    for grad, expected_grad in zip(grads, reference, strict=True):
        torch.testing.assert_close(grad, expected_grad)
    trained = experts.train()(x)
    assert trained.shape == expected.shape and not torch.allclose(trained, expected)
    assert not torch.allclose(trained[:, 0], trained[:, 1])


def test_prediction_reads_each_distinct_word_once_with_the_same_outputs(tiny_config):
    """Without dropout, word-vector E(x) comes once per distinct (word id, characters) of the batch
    (`DistinctWordInputs`): repeated words, the unknown id with other characters and the same characters under
    another id are told apart; its rows per position, and the model's outputs, equal those of E(x) computed per
    position (the training path with its dropout off), also for a subset of rows (`task_rows`)."""
    from modeling_manmoe.kernels.distinct_words import DistinctWordInputs

    model = build(tiny_config).eval()
    word_types = [(5, [3, 4]), (1, [6, 7, 8]), (1, [6]), (9, [3, 4]), (7, [2, 2, 2, 2, 2, 2])]  # (word id, chars)
    sentences = [[0, 1, 0, 2, 3], [4, 0, 0], [2, 1, 3, 4, 4]]
    input_ids = torch.zeros(3, 6, dtype=torch.long)
    char_ids = torch.zeros(3, 6, 6, dtype=torch.long)
    for row, sentence in enumerate(sentences):
        for position, kind in enumerate(sentence):
            input_ids[row, position] = word_types[kind][0]
            char_ids[row, position, : len(word_types[kind][1])] = torch.tensor(word_types[kind][1])
    batch = {"input_ids": input_ids, "char_ids": char_ids, "attention_mask": (input_ids != 0).long()}
    distinct = model.manmoe.embed(batch["attention_mask"], input_ids=input_ids, char_ids=char_ids)
    assert isinstance(distinct, DistinctWordInputs)
    assert [len(block) for block in distinct.blocks] == [6, 6]  # five word types and the padding word
    with torch.no_grad():
        predicted = model(**batch)
        model.manmoe.inputs.train()
        model.manmoe.inputs.char_cnn.dropout.p = 0.0  # the per-position path, no dropout anywhere
        per_position = model.manmoe.embed(batch["attention_mask"], input_ids=input_ids, char_ids=char_ids)
        assert isinstance(per_position, list)
        for block, expected in zip(distinct.expand(), per_position, strict=True):
            torch.testing.assert_close(block, expected, rtol=0, atol=1e-6)
        reference = model(**batch)
        rows = torch.tensor([True, False, True])
        subset = model.manmoe(**batch, task_rows=rows)
        model.manmoe.inputs.eval()
        distinct_subset = model.manmoe(**batch, task_rows=rows)
    torch.testing.assert_close(predicted.logits, reference.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(distinct_subset.last_hidden_state, subset.last_hidden_state, rtol=0, atol=1e-6)


def test_a_model_larger_than_the_available_memory_is_refused_before_anything_is_allocated(tiny_config):
    """The size check counts the weights on the meta device and names the largest tensors and the size fields."""
    from modeling_manmoe.errors import ManMoeConfigError
    from modeling_manmoe.modeling_manmoe import check_model_memory

    needed = check_model_memory(ManMoeForTokenClassification, tiny_config, available=1 << 40)
    model = ManMoeForTokenClassification(tiny_config)
    held = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    assert needed == held
    with pytest.raises(ManMoeConfigError, match=r"holds \d.* KiB of weights, more than the .* KiB of memory available; "
                       r"its largest tensors: \S+ \[\d+"):  # fmt: skip
        check_model_memory(ManMoeForTokenClassification, tiny_config, available=needed - 1)
    absurd = ManMoeConfig(source_languages=["en"], word_vocab_size=10**12, word_embedding_dim=300)
    with pytest.raises(ManMoeConfigError, match=r"manmoe\.inputs\.word_embeddings\.weight \[1000000000000, 300\].*"
                       r"largest: word_vocab_size=1000000000000"):  # fmt: skip
        ManMoeForTokenClassification(absurd)


def test_a_saved_config_with_absurd_sizes_is_refused_naming_its_file(tiny_config, tmp_path):
    import json

    from modeling_manmoe.errors import ManMoeConfigError

    ManMoeForTokenClassification(tiny_config).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["shared_hidden_size"] = 2_000_000
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ManMoeConfigError, match=rf"ManMoeConfig \(from {tmp_path / 'config.json'}\): .*"
                       r"shared_hidden_size=2000000"):  # fmt: skip
        ManMoeForTokenClassification.from_pretrained(tmp_path)
