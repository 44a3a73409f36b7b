"""ManMoeTrainer on the synthetic multilingual task (tests/synthetic.py): batching, resume, accumulation, logs."""

import contextlib
import json
import math

import pytest
import torch
import transformers
from transformers import TrainerCallback

from modeling_manmoe.tokenization_manmoe import collate_word_features
from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments, MultiSourceStepDataset, encode_sentences
from modeling_manmoe.training.trainer import DISCRIMINATOR_OPTIMIZER
from tests.synthetic import synthetic_model, synthetic_task

transformers.logging.set_verbosity_error()


def make_trainer(tmp_path, config_overrides=None, train=True, **arguments):
    config, tokenizer, table, data = synthetic_task(**(config_overrides or {}))
    model = synthetic_model(config, table)
    settings = dict(output_dir=str(tmp_path), max_steps=6, per_device_train_batch_size=4, save_strategy="no",
                    logging_steps=2, disable_tqdm=True, seed=0, learning_rate=1e-2, use_cpu=True)  # fmt: skip
    args = ManMoeTrainingArguments(**{**settings, **arguments})
    trainer = ManMoeTrainer(
        model=model,
        args=args,
        train_dataset=data if train else None,
        eval_dataset={"en": data["en"], "nl": data["nl"]},
        processing_class=tokenizer,
    )
    return trainer


def test_defaults_reproduce_the_paper(tmp_path):
    args = ManMoeTrainingArguments(output_dir=str(tmp_path))
    assert (args.learning_rate, args.weight_decay, args.max_grad_norm) == (1e-3, 1e-8, 0.0)
    assert (
        str(args.lr_scheduler_type.value if hasattr(args.lr_scheduler_type, "value") else args.lr_scheduler_type)
        == "constant"
    )
    assert args.per_device_train_batch_size == 16 and args.adversarial_mode == "alternating"
    trainer = make_trainer(tmp_path)
    optimizer = trainer.create_optimizer()
    assert type(optimizer) is torch.optim.Adam and type(trainer.discriminator_optimizer) is torch.optim.Adam
    d_params = {id(p) for p in trainer.model.manmoe.discriminator.parameters()}
    assert not any(id(p) in d_params for group in optimizer.param_groups for p in group["params"])
    assert trainer.n_critic == 1 and trainer.adversarial_lambda == 0.002


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(adversarial_mode="wgan"), "adversarial_mode"),
        (dict(model_selection="best"), "model_selection"),
        (dict(adversarial_lambda=-1.0), "adversarial_lambda"),
        (dict(n_critic=0), "n_critic"),
        (dict(per_device_train_batch_size=0), "per_device_train_batch_size"),
        (dict(target_distillation_batches=0), "target_distillation_batches"),
    ],  # fmt: skip
)
def test_invalid_arguments(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        ManMoeTrainingArguments(output_dir=str(tmp_path), **bad)


def test_step_dataset_draws_every_language_and_is_deterministic():
    labeled = {"en": [{"input_ids": [i + 2], "char_ids": [[1]], "lang_ids": 0, "labels": [0]} for i in range(10)],
               "de": [{"input_ids": [i + 20], "char_ids": [[1]], "lang_ids": 1, "labels": [0]} for i in range(40)]}  # fmt: skip
    unlabeled = dict(labeled, nl=[{"input_ids": [i + 90], "char_ids": [[1]], "lang_ids": 2} for i in range(7)])
    steps = MultiSourceStepDataset(labeled, unlabeled, batch_size=4, n_critic=2, seed=3)
    assert len(steps) == round(math.sqrt(3 * 10))  # geometric mean of 3 and 10 batches
    item = steps[0]
    assert item["is_labeled"].tolist() == [True] * 8 + [False] * 12
    assert item["lang_ids"].tolist() == [0] * 4 + [1] * 4 + [0] * 4 + [1] * 4 + [2] * 4
    assert (item["labels"][~item["is_labeled"]] == -100).all()
    assert len(item["critic"]) == 2 and item["critic"][0]["lang_ids"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    again = MultiSourceStepDataset(labeled, unlabeled, batch_size=4, n_critic=2, seed=3)
    again.set_epoch(0)
    assert torch.equal(again[0]["input_ids"], item["input_ids"])
    steps.set_epoch(1)
    assert not torch.equal(steps[0]["input_ids"], item["input_ids"]), "a new epoch continues the streams"
    # a stream visits every sentence once per pass: en has 10 sentences in 3 batches of <= 4
    seen = [s for position in range(3) for s in steps.stream_batch("labeled", "en", labeled["en"], position)]
    assert sorted(x["input_ids"][0] for x in seen) == list(range(2, 12))


def test_the_target_gives_target_batches_consecutive_batches_per_step_and_the_sources_are_unchanged():
    labeled = {"en": [{"input_ids": [i + 2], "char_ids": [[1]], "lang_ids": 0, "labels": [0]} for i in range(10)]}
    unlabeled = dict(labeled, nl=[{"input_ids": [i + 90], "char_ids": [[1]], "lang_ids": 1} for i in range(30)])
    one = MultiSourceStepDataset(labeled, unlabeled, batch_size=4, n_critic=1, seed=3)
    three = MultiSourceStepDataset(labeled, unlabeled, batch_size=4, n_critic=1, seed=3, target_batches=3)
    for step in range(2):
        a, b = one[step], three[step]
        assert b["lang_ids"].tolist() == [0] * 4 + [0] * 4 + [1] * 12
        assert torch.equal(a["input_ids"][:8], b["input_ids"][:8]), "the sources' rows do not change"
        expected = [s["input_ids"][0] for position in range(3 * step, 3 * step + 3)
                    for s in one.stream_batch("unlabeled", "nl", unlabeled["nl"], position)]  # fmt: skip
        assert b["input_ids"][8:, 0].tolist() == expected
        assert torch.equal(a["critic"][0]["input_ids"], b["critic"][0]["input_ids"]), "D's batches do not change"
    # 30 target sentences in 8 batches per pass: steps 0-1 (positions 0-5) see 24 distinct sentences
    seen = torch.cat([three[step]["input_ids"][8:, 0] for step in range(2)]).tolist()
    assert len(set(seen)) == 24
    with pytest.raises(ValueError, match="target_batches must be positive"):
        MultiSourceStepDataset(labeled, unlabeled, batch_size=4, n_critic=1, seed=3, target_batches=0)


@pytest.mark.parametrize("mode", ["alternating", "gradient_reversal"])
def test_training_logs_per_language_metrics_and_learns(tmp_path, mode):
    trainer = make_trainer(
        tmp_path, {"adversarial_lambda": 0.05}, adversarial_mode=mode, max_steps=45, logging_steps=15
    )
    before = trainer.evaluate()["eval_en_loss"]
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 3
    for key in ["task_loss_en", "task_loss_de", "task_loss_es", "d_loss", "d_acc_nl", "d_acc_en",
                "private_gate_acc_en", "predictor_gate_acc_es"]:  # fmt: skip
        assert key in logs[-1], key
    assert ("critic_d_loss" in logs[-1]) == (mode == "alternating")
    assert logs[-1]["task_loss_en"] < logs[0]["task_loss_en"]
    metrics = trainer.evaluate()
    assert metrics["eval_en_loss"] < before
    assert metrics["eval_selection_score"] == metrics["eval_target_f1"] == metrics["eval_nl_f1"]
    assert metrics["eval_source_mean_f1"] == metrics["eval_en_f1"]  # only en among the eval sources


def test_model_selection_by_source_mean(tmp_path):
    trainer = make_trainer(tmp_path, train=False, model_selection="source_mean")
    metrics = trainer.evaluate()
    assert metrics["eval_selection_score"] == metrics["eval_source_mean_f1"]


def test_no_adversary_has_no_discriminator_optimizer(tmp_path):
    trainer = make_trainer(tmp_path, {"use_adversary": False}, max_steps=2)
    trainer.train()
    assert trainer.discriminator_optimizer is None
    assert "d_loss" not in trainer.state.log_history[0]


def final_state(trainer):
    model = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    d_state = trainer.discriminator_optimizer.state_dict()["state"]
    return model, {k: {n: t.clone() for n, t in v.items()} for k, v in d_state.items()}


def assert_same_final_state(got, expected):
    """Bitwise equal weights and D optimizer state (two `final_state` results)."""
    (got_model, got_d), (expected_model, expected_d) = got, expected
    for key, value in expected_model.items():
        assert torch.equal(got_model[key], value), key
    for key, state in expected_d.items():
        for name, tensor in state.items():
            assert torch.equal(got_d[key][name], tensor), (key, name)


def test_resume_gives_the_same_final_weights(tmp_path):
    """Train 8 steps; stop after 4 (a checkpoint), resume in a new trainer, finish: identical weights and D
    optimizer state."""
    full = make_trainer(tmp_path / "full", max_steps=8, save_strategy="no")
    full.train()
    expected = final_state(full)

    first = make_trainer(tmp_path / "run", max_steps=8, save_strategy="steps", save_steps=4)

    class StopAfterFour(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 4:
                control.should_training_stop = True

    first.add_callback(StopAfterFour())
    first.train()
    checkpoint = tmp_path / "run" / "checkpoint-4"
    assert (checkpoint / DISCRIMINATOR_OPTIMIZER).exists()
    resumed = make_trainer(tmp_path / "run", max_steps=8, save_strategy="no")
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert_same_final_state(final_state(resumed), expected)


class StopAfterFour(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 4:
            control.should_training_stop = True


def checkpoint_after_four_steps(tmp_path, fingerprint=None, **arguments):
    """A run of 8 steps stopped after 4, with a checkpoint there (`tmp_path/run/checkpoint-4`)."""
    first = make_trainer(tmp_path / "run", max_steps=8, save_strategy="steps", save_steps=4, **arguments)
    if fingerprint is not None:
        first.set_run_fingerprint(fingerprint(first.model.config))
    first.add_callback(StopAfterFour())
    first.train()
    return tmp_path / "run" / "checkpoint-4"


def test_resuming_under_another_run_fingerprint_is_refused_listing_each_difference(tmp_path):
    """The checkpoint records the languages in their order, the labels, the inputs and the tokenizer's settings; a
    resume under other ones is refused before any training, each difference named."""
    from modeling_manmoe import CheckpointError
    from modeling_manmoe.training.checkpoints import CHECKPOINT_RECORD, run_fingerprint

    settings = {"lowercase_characters": False, "words": {"nl": 24}}
    checkpoint = checkpoint_after_four_steps(
        tmp_path, lambda config: run_fingerprint(config, settings, {"word_vectors/nl": "aa"})
    )
    record = json.loads((checkpoint / CHECKPOINT_RECORD).read_text())
    assert record["run_fingerprint"]["source_languages"] == ["en", "de", "es"]
    assert record["run_fingerprint"]["labels"] == ["O", "B-PER", "B-LOC"] and record["train_loss_steps"] == [1, 4]
    resumed = make_trainer(tmp_path / "run", {"source_languages": ["de", "en", "es"]}, max_steps=8)
    resumed.set_run_fingerprint(run_fingerprint(resumed.model.config, {"lowercase_characters": True,
                                                                       "words": {"nl": 24}}, {"word_vectors/nl": "bb"}))  # fmt: skip
    before = {name: value.clone() for name, value in resumed.model.state_dict().items()}
    expected = (
        r"checkpoint-4' was saved by a run of another configuration.*: source_languages: \['en', 'de', 'es'\] in the "
        r"checkpoint, \['de', 'en', 'es'\] now; tokenizer\.lowercase_characters: False in the checkpoint, True now; "
        r"inputs\.word_vectors/nl: 'aa' in the checkpoint, 'bb' now\. Resume with the arguments"
    )
    with pytest.raises(CheckpointError, match=expected):
        resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 0 and all(
        torch.equal(before[k], v) for k, v in resumed.model.state_dict().items()
    )
    same = make_trainer(tmp_path / "run", max_steps=8)  # the same configuration resumes
    same.set_run_fingerprint(run_fingerprint(same.model.config, settings, {"word_vectors/nl": "aa"}))
    same.train(resume_from_checkpoint=str(checkpoint))
    assert same.state.global_step == 8


def test_a_checkpoint_without_its_record_resumes_with_a_warning(tmp_path, caplog):
    from modeling_manmoe.training.checkpoints import CHECKPOINT_RECORD

    checkpoint = checkpoint_after_four_steps(tmp_path)
    (checkpoint / CHECKPOINT_RECORD).unlink()  # a checkpoint of an older version
    resumed = make_trainer(tmp_path / "run", {"source_languages": ["de", "en", "es"]}, max_steps=8)
    with caplog.at_level("WARNING", logger="modeling_manmoe.training.checkpoints"):
        output = resumed.train(resume_from_checkpoint=str(checkpoint))
    assert f"has no {CHECKPOINT_RECORD}" in caplog.text and resumed.state.global_step == 8
    # the loss before the resume is unknown: the record says which steps the loss covers
    assert resumed.train_loss_record == {"train_loss": output.training_loss, "train_loss_steps": [5, 8]}


def test_the_training_loss_after_a_resume_covers_the_whole_run(tmp_path):
    full = make_trainer(tmp_path / "full", max_steps=8, save_strategy="no")
    whole = full.train().training_loss
    assert full.train_loss_record == {"train_loss": whole, "train_loss_steps": [1, 8]}
    checkpoint = checkpoint_after_four_steps(tmp_path)
    resumed = make_trainer(tmp_path / "run", max_steps=8, save_strategy="steps", save_steps=2)
    output = resumed.train(resume_from_checkpoint=str(checkpoint))
    assert output.training_loss != pytest.approx(whole), "the Trainer's own mean covers steps 5-8 only"
    assert resumed.train_loss_record["train_loss"] == pytest.approx(whole, rel=1e-6)
    assert resumed.train_loss_record["train_loss_steps"] == [1, 8]


def test_max_steps_zero_is_refused(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=0)
    with pytest.raises(ValueError, match=r"max_steps=0 \(--max_steps 0\): the Trainer would still train one step"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    """Gradient reversal mode: 2 accumulated steps of 4 sentences per language = 1 step of 8 (same sentences,
    all of one length, no dropout)."""
    overrides = {"adversarial_lambda": 0.1, "input_dropout": 0.0, "lstm_dropout": 0.0, "expert_dropout": 0.0,
                 "predictor_dropout": 0.0, "discriminator_dropout": 0.0}  # fmt: skip
    grads = []

    class Capture(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})

    for batch, steps in ((8, 1), (4, 2)):
        trainer = make_trainer(tmp_path / str(batch), overrides, adversarial_mode="gradient_reversal", max_steps=1,
                               per_device_train_batch_size=batch, gradient_accumulation_steps=steps)  # fmt: skip
        streams = trainer.train_dataset
        for dataset in list(streams.labeled.values()) + list(streams.unlabeled.values()):
            for item in dataset:  # one length for every sentence, so per-batch means average exactly
                item["input_ids"], item["char_ids"] = item["input_ids"][:3] * 1, item["char_ids"][:3]
                if "labels" in item:
                    item["labels"] = item["labels"][:3]
        trainer.add_callback(Capture())
        trainer.train()
    big, accumulated = grads
    assert big.keys() == accumulated.keys() and any("discriminator" in n for n in big)
    for name in big:
        assert torch.allclose(big[name], accumulated[name], atol=1e-6, rtol=1e-4), name


def test_alternating_step_computes_no_discriminator_gradients_and_trains_the_same(tmp_path, monkeypatch):
    """Alternating mode: the main step's adversarial term treats D's parameters as constants, so no gradient is
    computed for them (D trains only in its own steps); the trained weights and D's optimizer state equal those of
    a run that computes and discards those gradients, bit for bit."""
    discriminator_step = ManMoeTrainer._discriminator_step
    counts = {"d_step": 0, "main_step": 0}
    where = ["main_step"]

    def counting_discriminator_step(self, model, batch):
        where[0] = "d_step"
        discriminator_step(self, model, batch)
        where[0] = "main_step"

    def trained(name):
        trainer = make_trainer(tmp_path / name, max_steps=4)
        for param in trainer.model.manmoe.discriminator.parameters():
            param.register_hook(lambda grad: counts.__setitem__(where[0], counts[where[0]] + 1))
        counts.update(d_step=0, main_step=0)
        trainer.train()
        return final_state(trainer), dict(counts)

    monkeypatch.setattr(ManMoeTrainer, "_discriminator_step", counting_discriminator_step)
    got, got_counts = trained("constant")
    assert got_counts["d_step"] > 0 and got_counts["main_step"] == 0
    monkeypatch.setattr(ManMoeTrainer, "_discriminator_as_constant", lambda self, model: contextlib.nullcontext())
    expected, control_counts = trained("computed")
    assert control_counts["main_step"] == control_counts["d_step"] > 0  # the control computes them
    assert_same_final_state(got, expected)


def test_encoded_occurrences_of_a_word_share_one_char_id_list():
    """`encode_sentences` gives every sentence the tokenizer's own features; the occurrences of a word share one
    `char_ids` list (memory), which collates as the tokenizer's per-occurrence lists do."""
    _, tokenizer, _, data = synthetic_task(sentences_per_language=40)
    items = encode_sentences(data["de"], tokenizer, "de", "ner_tags")
    by_word = {}
    for words, item in zip(data["de"]["tokens"], items, strict=True):
        expected = tokenizer.encode_words(words, "de")
        assert item["input_ids"] == expected["input_ids"] and item["char_ids"] == expected["char_ids"]
        for word, chars in zip(words, item["char_ids"], strict=True):
            assert by_word.setdefault(word, chars) is chars
    assert sum(len(words) for words in data["de"]["tokens"]) > len(by_word)  # words do repeat
    plain = [{**tokenizer.encode_words(words, "de"), "labels": item["labels"]}
             for words, item in zip(data["de"]["tokens"], items, strict=True)]  # fmt: skip
    collated = collate_word_features(plain)
    for key, value in collate_word_features(items).items():
        assert torch.equal(value, collated[key])


def test_prediction_reads_longest_first_and_returns_rows_in_the_dataset_order(tmp_path):
    """Evaluation batches are read longest first (fewer BiLSTM steps per sentence); `predict` gives each row back
    where the dataset has it: the tags a forward pass over that sentence alone gives, and its own labels."""
    from modeling_manmoe.training.batching import EncodedDataset

    trainer = make_trainer(tmp_path, train=False, per_device_eval_batch_size=5)
    _, tokenizer, _, data = synthetic_task()
    dataset = EncodedDataset(trainer.encode_dataset(data["de"], tokenizer, "de", trainer.label_column), "de")
    lengths = [len(item["input_ids"]) for item in dataset.items]
    longest_first = sorted(range(len(lengths)), key=lambda row: -lengths[row])
    assert longest_first != list(range(len(lengths))), "the fixture's order is not already longest first"
    assert list(trainer._get_eval_sampler(dataset)) == longest_first
    output = trainer.predict(dataset)
    assert output.metrics["test_loss"] > 0 and "test_f1" in output.metrics
    model = trainer.model.eval()
    with torch.no_grad():
        for row, item in enumerate(dataset.items):
            alone = model(**collate_word_features([item])).logits.argmax(-1)[0]
            assert output.predictions[row][: lengths[row]].tolist() == alone.tolist()
            assert output.label_ids[row][: lengths[row]].tolist() == item["labels"]
            assert (output.label_ids[row][lengths[row] :] == -100).all()


@pytest.mark.parametrize("mode", ["alternating", "gradient_reversal"])
def test_the_trainer_loss_is_the_model_objective_plus_lambda_times_the_adversarial_term(tmp_path, mode):
    """On one step's batch the trainer adds only the adversarial term to the model's own loss: alternating mode
    optimises loss - lambda x D loss; gradient reversal optimises loss + D loss, whose backward scales h_s's gradient
    by -lambda (so the value is the model's loss + the D loss)."""
    trainer = make_trainer(tmp_path, adversarial_mode=mode, adversarial_lambda=0.3)
    model = trainer.model.train()
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    batch.pop("critic", None)
    torch.manual_seed(0)
    loss = trainer.compute_loss(model, batch)
    torch.manual_seed(0)  # the same dropout masks
    inputs = {key: batch[key] for key in ("input_ids", "char_ids", "attention_mask") if key in batch}
    outputs = model(**inputs, labels=batch["labels"], lang_ids=batch["lang_ids"], output_shared_features=True,
                    task_rows=batch["is_labeled"])  # fmt: skip
    rows = ~batch["is_labeled"]
    d_loss, _ = trainer._language_loss(model, outputs.shared_features[rows], batch["lang_ids"][rows],
                                       batch["attention_mask"][rows], reverse=None)  # fmt: skip
    expected = outputs.loss - 0.3 * d_loss if mode == "alternating" else outputs.loss + d_loss
    assert trainer.adversarial_lambda == model.config.adversarial_lambda == 0.3
    torch.testing.assert_close(loss, expected, rtol=0, atol=0)
    assert outputs.loss > 0 and d_loss > 0 and outputs.task_loss > 0 and outputs.gate_loss > 0


def test_the_model_objective_sums_per_language_means():
    """`manmoe_objective`: per language the mean NLL over its labels, + the weighted gate cross-entropies for a
    source; summed over the languages (not one mean over all tokens)."""
    from modeling_manmoe.modeling_manmoe import manmoe_objective

    config, _, _, _ = synthetic_task()
    torch.manual_seed(0)
    batch, words, labels_count, experts = 4, 5, config.num_labels, config.num_experts
    log_probs = torch.log_softmax(torch.randn(batch, words, labels_count), -1)
    mask = torch.tensor([[1] * 5, [1] * 2 + [0] * 3, [1] * 4 + [0], [1] * 3 + [0] * 2])
    labels = torch.randint(0, labels_count, (batch, words)).masked_fill(mask == 0, -100)
    lang_ids = torch.tensor([0, 0, 1, len(config.all_languages) - 1])
    gates = torch.randn(batch, words, experts)
    terms = manmoe_objective(config, log_probs, labels, lang_ids, mask, gates, None)
    expected = torch.zeros(())
    for k, rows in ((0, slice(0, 2)), (1, slice(2, 3)), (None, slice(3, 4))):
        nll = torch.nn.functional.nll_loss(log_probs[rows].reshape(-1, labels_count), labels[rows].reshape(-1))
        expected = expected + nll
        if k is not None:
            real = gates[rows][mask[rows].bool()]
            expected = expected + config.private_gate_loss_weight * torch.nn.functional.cross_entropy(
                real, torch.full(real.shape[:1], k)
            )
    torch.testing.assert_close(terms.loss, expected)
    assert torch.isnan(terms.task_loss_per_language[2]) and not torch.isnan(terms.task_loss_per_language[-1])
    assert torch.isnan(terms.private_gate_accuracy[-1]) and torch.isnan(terms.predictor_gate_accuracy).all()
