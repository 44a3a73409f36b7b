"""MetaXL's meta-gradient: exact (through the virtual step) and from first-order gradients (finite difference),
checked against a finite-difference estimate of d L_target(theta') / d RTN on a tiny model in float64."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification
from modeling_manmoe.training.metaxl import meta_gradient, meta_parameters, plain_kernels, rows_of
from tests.conftest import TINY, random_batch

NO_DROPOUT = dict(input_dropout=0.0, char_dropout=0.0, lstm_dropout=0.0, expert_dropout=0.0, predictor_dropout=0.0,
                  discriminator_dropout=0.0)  # fmt: skip
ETA = 0.5


def tiny_metaxl():
    torch.manual_seed(0)
    # detach_gates=False: a detached gate input makes autograd's gradient differ from the derivative on purpose
    config = ManMoeConfig(**TINY, **NO_DROPOUT, rtn_bottleneck=3, detach_gates=False)
    model = ManMoeForTokenClassification(config).double().train()
    model.set_word_vectors(torch.randn(TINY["word_vocab_size"], TINY["word_embedding_dim"], dtype=torch.float64))
    with torch.no_grad():  # a transformation away from the identity, so every RTN parameter has a gradient
        for p in model.manmoe.transformation.parameters():
            p.normal_(0, 0.3)
    source = random_batch(model.config, batch=3, seed=1)
    source["lang_ids"] = torch.tensor([0, 1, 2])
    source["transform_rows"] = torch.ones(3, dtype=torch.bool)
    target = random_batch(model.config, batch=2, seed=2, lengths=[5, 3])
    target["lang_ids"] = torch.tensor([3, 3])
    return model, source, target


def target_loss_after_the_virtual_step(model, source, target) -> float:
    """L_t(theta - eta grad_theta L_s(theta, phi)) at the model's current phi, by plain first-order autograd."""
    theta, _ = meta_parameters(model)
    with plain_kernels(model):
        grads = torch.autograd.grad(model(**source).loss, list(theta.values()), allow_unused=True)
        moved = {n: p - ETA * (torch.zeros_like(p) if g is None else g)
                 for (n, p), g in zip(theta.items(), grads, strict=True)}  # fmt: skip
        return float(functional_call(model, moved, args=(), kwargs=target, strict=False).loss)


@pytest.mark.parametrize("method, tolerance", [("exact", 1e-6), ("finite_difference", 1e-4)])
def test_the_meta_gradient_equals_a_finite_difference_estimate(method, tolerance):
    model, source, target = tiny_metaxl()
    _, phi = meta_parameters(model)
    gradient = meta_gradient(model, source, target, ETA, method=method, epsilon=1e-4)
    generator = torch.Generator().manual_seed(3)
    direction = [torch.randn(p.shape, generator=generator, dtype=torch.float64) for p in phi]
    h = 1e-5
    values = []
    for sign in (1, -1):
        with torch.no_grad():
            for p, u in zip(phi, direction, strict=True):
                p.add_(sign * h * u)
        values.append(target_loss_after_the_virtual_step(model, source, target))
        with torch.no_grad():
            for p, u in zip(phi, direction, strict=True):
                p.sub_(sign * h * u)
    estimate = (values[0] - values[1]) / (2 * h)
    predicted = float(sum((g * u).sum() for g, u in zip(gradient, direction, strict=True)))
    assert abs(estimate) > 1e-5, "a meta-gradient that moves the target loss"
    assert abs(predicted - estimate) <= tolerance * abs(estimate), (predicted, estimate)


def test_the_first_order_estimate_differs_from_the_exact_gradient_by_a_second_order_amount():
    """Halving r divides the finite-difference method's distance to the exact gradient by about four."""
    model, source, target = tiny_metaxl()
    exact = meta_gradient(model, source, target, ETA, method="exact")

    def distance(epsilon: float) -> float:
        approx = meta_gradient(model, source, target, ETA, method="finite_difference", epsilon=epsilon)
        return float(torch.sqrt(sum(((a - e) ** 2).sum() for a, e in zip(approx, exact, strict=True))))

    far, near = distance(0.02), distance(0.01)
    assert 0 < near < far and 3.5 < far / near < 4.5, (far, near)


def test_the_meta_step_leaves_the_model_unchanged_and_its_fast_kernels_in_place():
    model, source, target = tiny_metaxl()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    meta_gradient(model, source, target, ETA)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
    assert model.manmoe.shared_extractor.encoder.kernels is not None


def test_the_finite_difference_meta_gradient_runs_the_fast_kernels_and_matches_the_plain_ones():
    """The finite-difference method needs no double backward: it keeps the fast kernels, and gives the plain torch
    path's gradient (float64, to rounding)."""
    model, source, target = tiny_metaxl()
    calls = []
    kernels = model.manmoe.shared_extractor.encoder.kernels
    original = kernels.lstm.bilstm_encoder_forward

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    kernels.lstm.bilstm_encoder_forward = counted
    try:
        fast = meta_gradient(model, source, target, ETA, method="finite_difference", epsilon=1e-4)
    finally:
        kernels.lstm.bilstm_encoder_forward = original
    with plain_kernels(model):
        plain = meta_gradient(model, source, target, ETA, method="finite_difference", epsilon=1e-4)
    assert calls, "the fast LSTM kernel ran"
    for a, b in zip(fast, plain, strict=True):
        assert a.abs().max() > 0 and torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_rows_of_cuts_the_padding_of_the_rows_it_keeps_and_their_loss_is_the_same():
    model, source, _ = tiny_metaxl()
    model.eval()
    rows = torch.tensor([False, True, True])  # sentences of 6 and 5 words in a batch padded to 7
    picked = rows_of(source, rows)
    assert picked["input_ids"].shape == (2, 6) and picked["char_ids"].shape == (2, 6, 6)
    assert picked["labels"].shape == (2, 6) and picked["lang_ids"].tolist() == [1, 2]
    padded = {key: value[rows] for key, value in source.items()}
    assert torch.equal(model(**picked).loss, model(**padded).loss)


@pytest.mark.parametrize("method", ["joint", "metaxl"])
def test_run_ner_with_a_few_labeled_target_sentences(tmp_path, method):
    """The fixture run of `run_ner.py` with 8 labeled target sentences: joint training, or MetaXL (the RTN learned by
    the meta step, saved with the model, which reloads with the Auto classes and tags)."""
    import json

    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from tests.examples.test_run_ner import load_run_ner, write_fixtures

    files, vectors = write_fixtures(tmp_path)
    out = tmp_path / method
    argv = ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
            "--validation_files", *files, "--test_files", *files, "--word_vectors", *vectors, "--output_dir", str(out),
            "--do_train", "--do_eval", "--do_predict", "--max_steps", "3", "--per_device_train_batch_size", "2",
            "--report_to", "none", "--disable_tqdm", "true", "--transfer_method", method, "--target_train_size", "8",
            "--target_subset_seed", "5", "--rtn_bottleneck", "4", "--logging_steps", "1"]  # fmt: skip
    results = load_run_ner().main(argv)
    saved = json.loads((out / "all_results.json").read_text())
    assert saved["target_train"]["transfer_method"] == method and len(saved["target_train"]["ids"]) == 8
    assert saved["target_train"]["subset_seed"] == 5 and results["train"]["global_step"] == 3
    assert saved["config"]["few_shot_sizes"] == {"nl": 8} and saved["language_roles"]["nl"] == "few-shot target"
    from modeling_manmoe.run.model_card import build_model_card

    card = build_model_card(out)
    assert "from a few labeled sentences of **nl (Dutch)**" in card.text and "applied zero-shot" not in card.text
    assert "only 8 sentences (nl) were used **with labels**; the rest without labels" in card.text
    assert "| nl | **target (few-shot)** |" in card.text and "few-shot" in card.data.tags
    assert ("MetaXL (Xia et al., NAACL 2021): a representation transformation network (bottleneck 4)" in card.text) == (
        method == "metaxl"
    )
    model = AutoModelForTokenClassification.from_pretrained(out).eval()
    assert (model.manmoe.transformation is not None) == (method == "metaxl")
    if method == "metaxl":
        assert model.config.rtn_bottleneck == 4 and float(model.manmoe.transformation.up_weight.abs().sum()) > 0
        logged = [entry for entry in json.loads((out / "trainer_state.json").read_text())["log_history"]
                  if "meta_grad_norm" in entry]  # fmt: skip
        assert len(logged) == 3 and all("rtn_norm" in entry for entry in logged)
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert all("task_loss_nl" in entry for entry in history if "loss" in entry), "the few-shot target's NLL is logged"
    tokenizer = AutoTokenizer.from_pretrained(out)
    encoded = tokenizer(["Piet", "woont", "in", "Amsterdam"], language="nl", is_split_into_words=True,
                        return_tensors="pt")  # fmt: skip
    assert model(**encoded).logits.shape == (1, 4, 9)


def test_the_transfer_method_and_the_target_size_must_agree(tmp_path):
    from tests.examples.test_run_ner import load_run_ner, write_fixtures

    files, vectors = write_fixtures(tmp_path)
    argv = ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
            "--word_vectors", *vectors, "--output_dir", str(tmp_path / "x"), "--do_train", "--max_steps", "1",
            "--report_to", "none", "--model_selection", "source_mean"]  # fmt: skip
    with pytest.raises(ValueError, match="--transfer_method metaxl with --target_train_size 0"):
        load_run_ner().main([*argv, "--transfer_method", "metaxl"])
    with pytest.raises(ValueError, match="--transfer_method zero_shot with --target_train_size 4"):
        load_run_ner().main([*argv, "--target_train_size", "4"])


def test_a_metaxl_run_resumes_to_the_same_weights(tmp_path):
    """The RTN and its meta optimizer are in the checkpoints: 2 + 2 steps equal 4 steps, bit for bit."""
    import transformers

    from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments
    from tests.synthetic import synthetic_model, synthetic_task

    transformers.logging.set_verbosity_error()

    def trainer(output: str, **arguments):
        config, tokenizer, table, data = synthetic_task(rtn_bottleneck=4)
        model = synthetic_model(config, table)
        few = data["nl"].select(range(8))
        data["nl"] = data["nl"].remove_columns("ner_tags")
        settings = dict(output_dir=str(tmp_path / output), max_steps=4, per_device_train_batch_size=4, seed=0,
                        save_strategy="no", disable_tqdm=True, learning_rate=1e-2, use_cpu=True, report_to="none",
                        meta_learning_rate=1e-2)  # fmt: skip
        return ManMoeTrainer(model=model, args=ManMoeTrainingArguments(**{**settings, **arguments}), train_dataset=data,
                             processing_class=tokenizer, target_train_dataset={"nl": few})  # fmt: skip

    straight = trainer("straight")
    straight.train()
    trainer("resumed", save_strategy="steps", save_steps=2, max_steps=2).train()
    resumed = trainer("resumed", save_strategy="steps", save_steps=2)
    resumed.train(resume_from_checkpoint=str(tmp_path / "resumed" / "checkpoint-2"))
    assert float(straight.model.manmoe.transformation.up_weight.abs().sum()) > 0
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
