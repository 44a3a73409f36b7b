"""Distillation from per-language teachers: the objective's terms, the teachers and their cache, the trainer, the
scripts' flags and records."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from modeling_manmoe import LabelError, LanguageError, ManMoeConfig
from modeling_manmoe.data import CONLL_NER_LABELS as CONLL_LABELS
from modeling_manmoe.modeling_manmoe import manmoe_objective
from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments
from modeling_manmoe.training.teachers import Teacher, TeacherCache, load_teachers
from tests.examples.test_run_ner import load_run_ner, write_fixtures
from tests.synthetic import LABELS, synthetic_model, synthetic_task

transformers.logging.set_verbosity_error()


def objective_inputs(config, classification: bool = False, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 4 + [0], [1] * 2 + [0] * 3])
    lang_ids = torch.tensor([0, 1, 3, 3])  # two sources, two target rows
    if classification:
        logits = torch.randn(4, config.num_labels, generator=generator)
        labels = torch.tensor([1, 0, -100, -100])
        gates = torch.randn(4, config.num_experts, generator=generator)
    else:
        logits = torch.randn(4, 5, config.num_labels, generator=generator)
        labels = torch.randint(0, config.num_labels, (4, 5), generator=generator).masked_fill(mask == 0, -100)
        labels[2:] = -100
        gates = torch.randn(4, 5, config.num_experts, generator=generator)
    return logits, labels, lang_ids, mask, gates


@pytest.mark.parametrize("classification", [False, True])
@pytest.mark.parametrize("mixture", ["uniform", "confidence", "gate"])
def test_the_distillation_term_is_zero_when_the_student_equals_its_teachers(classification, mixture):
    config = ManMoeConfig(source_languages=["en", "de", "es"], unlabeled_languages=["nl"], num_labels=5,
                          distillation_alpha=0.7, target_distillation_weight=0.4, distillation_temperature=2.0,
                          teacher_mixture=mixture)  # fmt: skip
    logits, labels, lang_ids, mask, gates = objective_inputs(config, classification)
    teachers = logits.unsqueeze(1).expand(-1, 3, *logits.shape[1:]).clone()  # every teacher predicts as the student
    teacher_mask = torch.tensor([[True, False, False], [True, False, False], [True] * 3, [True] * 3])
    terms = manmoe_objective(config, logits, labels, lang_ids, mask, None, gates, teachers, teacher_mask)
    assert abs(float(terms.distillation_loss)) < 1e-6
    other = manmoe_objective(config, logits, labels, lang_ids, mask, None, gates, teachers.flip(-1), teacher_mask)
    assert float(other.distillation_loss) > 0.01
    torch.testing.assert_close(other.loss - other.distillation_loss, terms.loss)


def test_the_distillation_term_is_alpha_t_squared_kl_on_sources_and_beta_on_the_target():
    config = ManMoeConfig(num_labels=5, distillation_alpha=0.5, target_distillation_weight=0.25,
                          distillation_temperature=2.0, teacher_mixture="uniform")  # fmt: skip
    logits, labels, lang_ids, mask, gates = objective_inputs(config)
    generator = torch.Generator().manual_seed(1)
    teachers = torch.randn(4, 3, 5, 5, generator=generator)
    teacher_mask = torch.tensor([[True, False, False], [True, False, False], [True] * 3, [True] * 3])
    terms = manmoe_objective(config, logits, labels, lang_ids, mask, None, None, teachers, teacher_mask)

    def kl(student, teacher_probs, words):
        log_q = torch.log_softmax(student / 2.0, -1)
        return 4.0 * (teacher_probs * (teacher_probs.log() - log_q)).sum(-1)[words].mean()

    expected = 0.0
    for row in (0, 1):  # each source row is its own language: its one teacher
        expected += 0.5 * kl(logits[row : row + 1], torch.softmax(teachers[row : row + 1, 0] / 2.0, -1),
                             mask[row : row + 1].bool())  # fmt: skip
    target_probs = torch.softmax(teachers[2:] / 2.0, -1).mean(1)
    expected += 0.25 * kl(logits[2:], target_probs, mask[2:].bool())
    torch.testing.assert_close(terms.distillation_loss, torch.as_tensor(expected))
    assert torch.isnan(terms.task_loss_per_language[3]), "the target rows have no labels: no NLL"


def test_the_gate_mixture_weights_the_languages_by_cs_gate_and_a_languages_members_equally():
    """Target rows: three sources x two ensemble members; C's gate weights each language, its members share the
    weight. Source rows: their own language's members, mixed uniformly (never by the gate over languages)."""
    config = ManMoeConfig(num_labels=5, distillation_alpha=0.5, target_distillation_weight=0.25,
                          distillation_temperature=2.0, teacher_mixture="gate")  # fmt: skip
    logits, labels, lang_ids, mask, gates = objective_inputs(config)
    generator = torch.Generator().manual_seed(2)
    teachers = torch.randn(4, 6, 5, 5, generator=generator)
    teacher_mask = torch.tensor([[True] * 3 + [False] * 3] * 2 + [[True] * 6] * 2)  # source rows: 3 members each
    terms = manmoe_objective(config, logits, labels, lang_ids, mask, None, gates, teachers, teacher_mask)

    def kl(student, teacher_probs, words):
        log_q = torch.log_softmax(student / 2.0, -1)
        return 4.0 * (teacher_probs * (teacher_probs.log() - log_q)).sum(-1)[words].mean()

    probs = torch.softmax(teachers / 2.0, -1)  # (rows, teachers, words, labels)
    expected = 0.0
    for row in (0, 1):
        expected += 0.5 * kl(logits[row : row + 1], probs[row : row + 1, :3].mean(1), mask[row : row + 1].bool())
    per_language = probs[2:].reshape(2, 3, 2, 5, 5).mean(2)  # (rows, languages, words, labels)
    weights = torch.softmax(gates[2:], -1).movedim(-1, 1).unsqueeze(-1)  # (rows, languages, words, 1)
    expected += 0.25 * kl(logits[2:], (weights * per_language).sum(1), mask[2:].bool())
    torch.testing.assert_close(terms.distillation_loss, torch.as_tensor(expected))
    with pytest.raises(ValueError, match="the same number of teachers for each of the 3 source languages; got 4"):
        manmoe_objective(config, logits, labels, lang_ids, mask, None, gates, teachers[:, :4], teacher_mask[:, :4])


def teacher_folder(tmp_path, name="teacher", seed=1, labels=LABELS):
    """A saved MAN-MoE tagger of the synthetic task, as a teacher (its own tokenizer)."""
    config, tokenizer, table, _ = synthetic_task(id2label=dict(enumerate(labels)),
                                                 label2id={label: i for i, label in enumerate(labels)})  # fmt: skip
    model = synthetic_model(config, table, seed=seed)
    model.save_pretrained(tmp_path / name)
    tokenizer.save_pretrained(tmp_path / name)
    return str(tmp_path / name)


def distilling_trainer(tmp_path, teachers, output="run", **arguments):
    config, tokenizer, table, data = synthetic_task()
    model = synthetic_model(config, table)
    settings = dict(output_dir=str(tmp_path / output), max_steps=4, per_device_train_batch_size=4, save_strategy="no",
                    logging_steps=2, disable_tqdm=True, seed=0, learning_rate=1e-2, use_cpu=True, report_to="none",
                    distillation_alpha=0.5, target_distillation_weight=0.5)  # fmt: skip
    args = ManMoeTrainingArguments(**{**settings, **arguments})
    cache = TeacherCache(tmp_path / "teacher-cache")
    return ManMoeTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, teachers=teachers,
                         teacher_cache=cache)  # fmt: skip


def trained_distillation_losses(trainer) -> list[float]:
    """Train `trainer` and return the distillation losses it logged."""
    trainer.train()
    return [entry["distillation_loss"] for entry in trainer.state.log_history if "distillation_loss" in entry]


def target_teacher_mask(trainer) -> torch.Tensor:
    """The teacher mask (rows, teachers) of the first step's unlabeled rows that have teachers: the target's."""
    step = trainer.train_dataset[0]
    return step["teacher_mask"][step["teacher_mask"].any(1) & ~step["is_labeled"]]


def test_teachers_get_no_gradient_and_no_optimizer_state(tmp_path):
    path = teacher_folder(tmp_path)
    teachers = load_teachers({"all": path}, ["en", "de", "es"], LABELS, token_classification=True)
    before = {name: p.detach().clone() for name, p in teachers["en"].model.named_parameters()}
    trainer = distilling_trainer(tmp_path, teachers)
    trainer.train()
    teacher_params = {id(p) for p in teachers["en"].model.parameters()}
    optimized = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    assert optimized and not any(id(p) in teacher_params for p in optimized)
    assert all(p.grad is None and not p.requires_grad for p in teachers["en"].model.parameters())
    assert all(torch.equal(p, before[name]) for name, p in teachers["en"].model.named_parameters())
    logged = [entry for entry in trainer.state.log_history if "distillation_loss" in entry]
    assert logged and all(entry["distillation_loss"] > 0 for entry in logged)


def test_the_teacher_cache_is_reused_and_rebuilt_when_the_teacher_changes(tmp_path):
    path = teacher_folder(tmp_path)
    _, _, _, data = synthetic_task()
    sentences = data["en"]["tokens"]
    cache = TeacherCache(tmp_path / "cache")
    first = cache.logits(Teacher(path, LABELS, True), sentences, "en")
    assert (
        cache.last_built is not None
        and len(first) == len(sentences)
        and first[0].shape == (len(sentences[0]), len(LABELS))
    )
    built, cache.last_built = cache.last_built, None
    again = TeacherCache(tmp_path / "cache").logits(Teacher(path, LABELS, True), sentences, "en")
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    changed = teacher_folder(tmp_path, seed=7)  # other weights in the same folder
    rebuilt_cache = TeacherCache(tmp_path / "cache")
    rebuilt = rebuilt_cache.logits(Teacher(changed, LABELS, True), sentences, "en")
    assert rebuilt_cache.last_built not in (None, built)
    assert not all(torch.equal(a, b) for a, b in zip(first, rebuilt, strict=True))


def test_a_teacher_shows_a_progress_bar_only_when_asked(tmp_path, capsys):
    path = teacher_folder(tmp_path)
    sentences = synthetic_task()[3]["en"]["tokens"]
    Teacher(path, LABELS, True, show_progress=False).logits(sentences, "en", "en train")
    assert "teacher en train" not in capsys.readouterr().err
    Teacher(path, LABELS, True).logits(sentences, "en", "en train")
    assert "teacher en train" in capsys.readouterr().err


@pytest.mark.parametrize("target_batches", [1, 2])
def test_a_run_with_distillation_resumes_to_the_same_weights(tmp_path, target_batches):
    path = teacher_folder(tmp_path)
    teachers = load_teachers({"all": path}, ["en", "de", "es"], LABELS, token_classification=True)
    settings = dict(target_distillation_batches=target_batches)
    straight = distilling_trainer(tmp_path, teachers, "straight", **settings)
    assert straight.train_dataset[0]["lang_ids"].tolist().count(3) == 4 * target_batches  # the target's rows
    straight.train()
    interrupted = distilling_trainer(tmp_path, teachers, "resumed", save_strategy="steps", save_steps=2, max_steps=2,
                                     **settings)  # fmt: skip
    interrupted.train()
    resumed = distilling_trainer(tmp_path, teachers, "resumed", save_strategy="steps", save_steps=2, **settings)
    resumed.train(resume_from_checkpoint=str(tmp_path / "resumed" / "checkpoint-2"))
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_mismatched_labels_and_missing_teachers_are_refused_naming_them(tmp_path):
    other_labels = ["O", "B-X", "B-Y"]
    path = teacher_folder(tmp_path, "other", labels=other_labels)
    with pytest.raises(LabelError, match=r"predicts the labels \['O', 'B-X'.*the student \['O', 'B-PER'"):
        load_teachers({"all": path}, ["en"], LABELS, token_classification=True)
    good = teacher_folder(tmp_path)
    with pytest.raises(LanguageError, match=r"no teacher for the source language\(s\) \['es'\]"):
        load_teachers({"en": good, "de": good}, ["en", "de", "es"], LABELS, token_classification=True)
    with pytest.raises(LanguageError, match=r"\['nl'\] are not labeled source languages"):
        load_teachers({"en": good, "nl": good}, ["en"], LABELS, token_classification=True)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_teachers({"all": str(tmp_path / "absent")}, ["en"], LABELS, token_classification=True)
    with pytest.raises(ValueError, match="needs teachers"):
        distilling_trainer(tmp_path, None)
    teachers = load_teachers({"all": good}, ["en", "de", "es"], LABELS, token_classification=True)
    with pytest.raises(ValueError, match="target_distillation_batches=2 adds target rows .* set target_distillation_w"):
        distilling_trainer(tmp_path, teachers, target_distillation_weight=0.0, target_distillation_batches=2)


def test_a_subword_teacher_is_read_at_each_words_first_subtoken(tmp_path):
    from transformers import BertConfig, BertForTokenClassification, PreTrainedTokenizerFast

    from tests.tiny_encoder import make_tiny_encoder

    make_tiny_encoder(tmp_path / "bert")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tmp_path / "bert")
    config = BertConfig.from_pretrained(tmp_path / "bert", num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                                        label2id={label: i for i, label in enumerate(LABELS)})  # fmt: skip
    torch.manual_seed(0)
    BertForTokenClassification(config).save_pretrained(tmp_path / "bert")
    teacher = Teacher(str(tmp_path / "bert"), LABELS, token_classification=True)
    words = [["peter", "lives", "in", "berlin"], ["jan", "woont", "amsterdam"]]  # "amsterdam" splits in pieces
    got = teacher.logits(words, "en")
    for row, sentence in enumerate(words):
        encoded = tokenizer([sentence], is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            logits = teacher.model(**encoded).logits[0]
        ids = encoded.word_ids(0)
        first = [ids.index(word) for word in range(len(sentence))]
        torch.testing.assert_close(got[row], logits[first], rtol=1e-5, atol=1e-5)


def test_run_ner_with_a_teacher_records_the_settings_and_the_teachers(tmp_path):
    """The fixture run of `run_ner.py`, first a teacher (English only, no adversary), then a student distilling from
    it on the sources and the target: `all_results.json` records the settings and the teacher's sha256 and scores."""
    files, vectors = write_fixtures(tmp_path)
    common = ["--target_language", "nl", "--train_files", *files, "--validation_files", *files, "--test_files",
              *files, "--word_vectors", *vectors, "--do_train", "--do_eval", "--do_predict", "--max_steps", "2",
              "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    run_ner = load_run_ner()
    run_ner.main(["--source_languages", "en", "--no_adversary", "true", "--model_selection", "source_mean",
                  "--output_dir", str(tmp_path / "teacher"), *common])  # fmt: skip
    student = ["--source_languages", "en", "de", "es", "--output_dir", str(tmp_path / "student"),
               "--teacher_models", f"all={tmp_path / 'teacher'}", "--distillation_alpha", "0.5",
               "--distillation_temperature", "2", "--target_distillation_weight", "0.3",
               "--teacher_cache_dir", str(tmp_path / "teacher-cache"), *common]  # fmt: skip
    results = run_ner.main(student)
    saved = json.loads((tmp_path / "student" / "all_results.json").read_text())
    distillation = saved["distillation"]
    assert (distillation["distillation_alpha"], distillation["distillation_temperature"]) == (0.5, 2.0)
    assert distillation["target_distillation_weight"] == 0.3 and distillation["teacher_mixture"] == "uniform"
    assert distillation["target_distillation_batches"] == 1
    assert sorted(distillation["teachers"]) == ["de", "en", "es"]
    entry = distillation["teachers"]["en"]
    assert len(entry["weights_sha256"]) == 64 and set(entry["test"]) == {"en", "nl"}
    assert saved["config"]["distillation_alpha"] == 0.5 and results["train"]["global_step"] == 2
    from modeling_manmoe.run.model_card import build_model_card

    card = build_model_card(tmp_path / "student")
    assert f"- Distilled from teachers: de (`{tmp_path / 'teacher'}`), en (`{tmp_path / 'teacher'}`), es (" in card.text
    assert "α 0.5, β 0.3, T 2.0, mixture uniform" in card.text and "knowledge-distillation" in card.data.tags
    with pytest.raises(ValueError, match="need --teacher_models"):
        run_ner.main([*student[:4], "--distillation_alpha", "0.5", *common, "--output_dir", str(tmp_path / "x")])
    # an ensemble of two teachers (here two copies of one run): every member is checked, loaded and recorded
    import shutil

    shutil.copytree(tmp_path / "teacher", tmp_path / "twin")
    ensemble = [part if part != f"all={tmp_path / 'teacher'}" else f"all={tmp_path / 'teacher'},{tmp_path / 'twin'}"
                for part in student]  # fmt: skip
    ensemble[ensemble.index("--output_dir") + 1] = str(tmp_path / "ensemble-student")
    entry = run_ner.main(ensemble)["distillation"]["teachers"]["en"]
    assert entry["model_type"] == "ensemble" and [m["path"] for m in entry["members"]] == [
        str(tmp_path / "teacher"),
        str(tmp_path / "twin"),
    ]
    assert entry["test"] == distillation["teachers"]["en"]["test"]
    missing = [part.replace("twin", "absent") for part in ensemble]
    with pytest.raises(ValueError, match=r"--teacher_models all: '.*absent': no such folder"):
        run_ner.main(missing)
    empty = [part.replace(f",{tmp_path / 'twin'}", ",") for part in ensemble]  # all=TEACHER, (an empty member)
    with pytest.raises(ValueError, match="expected distinct paths separated by ','"):
        run_ner.main(empty)


def test_run_classification_distils_from_a_teacher(tmp_path):
    """Sentence classification: a teacher (English only), then a student distilling on sources and target."""
    from tests.examples.test_run_classification import load_run_classification
    from tests.examples.test_run_classification import write_fixtures as write_review_fixtures

    files, vectors = write_review_fixtures(tmp_path)
    common = ["--target_language", "ja", "--train_files", *files, "--validation_files", *files, "--test_files",
              *files, "--word_vectors", *vectors, "--do_train", "--do_eval", "--do_predict", "--max_steps", "2",
              "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    run = load_run_classification()
    run.main(["--source_languages", "en", "--no_adversary", "true", "--output_dir", str(tmp_path / "teacher"),
              *common])  # fmt: skip
    results = run.main(["--source_languages", "en", "de", "fr", "--output_dir", str(tmp_path / "student"),
                        "--teacher_models", f"all={tmp_path / 'teacher'}", "--distillation_alpha", "1",
                        "--target_distillation_weight", "1", "--teacher_mixture", "gate",
                        "--teacher_cache_dir", str(tmp_path / "teacher-cache"), *common])  # fmt: skip
    assert results["distillation"]["teacher_mixture"] == "gate"
    assert set(results["distillation"]["teachers"]["en"]["test"]) == {"en", "ja"}


def test_run_ner_distils_from_frozen_encoder_teachers_with_gradient_reversal(tmp_path):
    """Frozen-encoder teachers (their features from the encoder feature cache) and student, gradient reversal."""
    from tests.tiny_encoder import make_tiny_encoder

    files, _ = write_fixtures(tmp_path)
    encoder = make_tiny_encoder(tmp_path / "encoder")
    common = ["--target_language", "nl", "--train_files", *files, "--validation_files", *files, "--test_files",
              *files, "--encoder_name_or_path", str(encoder), "--feature_cache_dir", str(tmp_path / "features"),
              "--do_train", "--do_eval", "--do_predict", "--max_steps", "2", "--per_device_train_batch_size", "2",
              "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    run_ner = load_run_ner()
    for lang in ("en", "de", "es"):
        run_ner.main(["--source_languages", lang, "--no_adversary", "true", "--model_selection", "source_mean",
                      "--output_dir", str(tmp_path / f"teacher-{lang}"), *common])  # fmt: skip
    teachers = [f"{lang}={tmp_path / f'teacher-{lang}'}" for lang in ("en", "de", "es")]
    results = run_ner.main(["--source_languages", "en", "de", "es", "--output_dir", str(tmp_path / "student"),
                            "--teacher_models", *teachers, "--distillation_alpha", "0.5",
                            "--target_distillation_weight", "0.5", "--adversarial_mode", "gradient_reversal",
                            "--teacher_cache_dir", str(tmp_path / "teacher-cache"), *common])  # fmt: skip
    recorded = results["distillation"]["teachers"]
    assert len({entry["weights_sha256"] for entry in recorded.values()}) == 3, "three different teachers"
    assert all(set(entry["test"]) == {lang, "nl"} for lang, entry in recorded.items())
    # a frozen-encoder teacher reads a whole dataset's features from the cache, never batch by batch
    features = {path.name for path in (tmp_path / "features").iterdir()}
    teacher = load_teachers({"all": str(tmp_path / "teacher-en")}, ["en"], CONLL_LABELS, True,
                            feature_cache_dir=str(tmp_path / "features"))["en"]  # fmt: skip
    teacher.batch_size = 2
    from modeling_manmoe.data import read_conll

    sentences = read_conll(files[0].split("=", 1)[1], "en")["tokens"]
    cached = teacher.logits(sentences, "en")
    assert len(cached) == len(sentences) > 2 and {path.name for path in (tmp_path / "features").iterdir()} == features


def test_an_ensemble_of_teachers_teaches_the_mixture_of_its_members(tmp_path):
    import shutil

    from modeling_manmoe.training.teachers import TeacherEnsemble, teacher_scores

    first, other = teacher_folder(tmp_path, "first", seed=1), teacher_folder(tmp_path, "other", seed=2)
    twin = str(tmp_path / "twin")
    shutil.copytree(first, twin)
    sources = ["en", "de", "es"]
    ensemble = load_teachers({"all": f"{first},{other}"}, sources, LABELS, token_classification=True)
    assert isinstance(ensemble["en"], TeacherEnsemble) and ensemble["en"] is ensemble["es"]
    described = ensemble["en"].describe()
    assert [member["path"] for member in described["members"]] == [first, other]
    assert described["weights_sha256"] not in {member["weights_sha256"] for member in described["members"]}
    # two copies of one teacher teach exactly what that teacher teaches alone; a different second member does not
    single = load_teachers({"all": first}, sources, LABELS, token_classification=True)
    doubled = load_teachers({"all": f"{first},{twin}"}, sources, LABELS, token_classification=True)

    def distillation_losses(teachers, name, **arguments):
        return trained_distillation_losses(distilling_trainer(tmp_path, teachers, name, **arguments))

    alone = distillation_losses(single, "single")
    torch.testing.assert_close(distillation_losses(doubled, "doubled"), alone)
    assert distillation_losses(ensemble, "ensemble") != pytest.approx(alone)
    # so under the gate mixture, where a language's members share its gate weight
    gated = distillation_losses(single, "gated-single", teacher_mixture="gate")
    torch.testing.assert_close(distillation_losses(doubled, "gated-doubled", teacher_mixture="gate"), gated)
    uneven = load_teachers({"en": f"{first},{other}", "de": first, "es": other}, sources, LABELS, True)
    with pytest.raises(ValueError, match=r"needs as many ensemble members; got \{'en': 2, 'de': 1, 'es': 1\}"):
        distilling_trainer(tmp_path, uneven, "uneven", teacher_mixture="gate")
    _, _, _, data = synthetic_task()
    cache = TeacherCache(tmp_path / "teacher-cache")
    data_en = data["en"]
    assert teacher_scores(doubled["en"], cache, data_en, "en", "ner_tags") == pytest.approx(
        teacher_scores(single["en"], cache, data_en, "en", "ner_tags")
    )
    with pytest.raises(ValueError, match="distinct paths"):
        load_teachers({"all": f"{first},{first}"}, sources, LABELS, token_classification=True)


def test_target_rows_carry_one_copy_of_a_teacher_shared_by_every_source(tmp_path):
    """`all=A,B`: the target rows get A's and B's logits once (not once per source language) and learn the same
    mixture as the full sources x members layout, which the gate mixture keeps (its weights over identical
    languages sum to one, so it teaches the uniform mixture too)."""
    first, other = teacher_folder(tmp_path, "first", seed=1), teacher_folder(tmp_path, "other", seed=2)
    shared = load_teachers({"all": f"{first},{other}"}, ["en", "de", "es"], LABELS, token_classification=True)
    losses = []
    for name, arguments, copies in (("uniform", {}, 1), ("gated", {"teacher_mixture": "gate"}, 3)):
        trainer = distilling_trainer(tmp_path, shared, name, **arguments)  # each built, then trained: same seeding
        losses.append(trained_distillation_losses(trainer))
        target = target_teacher_mask(trainer)
        assert len(target) and target.shape[1] == 2 * copies and bool(target.all())
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-4, atol=1e-5)
    separate = load_teachers({"en": first, "de": other, "es": first}, ["en", "de", "es"], LABELS, True)
    target = target_teacher_mask(distilling_trainer(tmp_path, separate, "separate"))
    assert target.shape[1] == 3 and bool(target.all()), "different teachers per source: one each"
