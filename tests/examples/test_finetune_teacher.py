"""`examples/finetune_teacher.py`: a fine-tuned sub-word teacher, saved so that `run_ner.py --teacher_models`
reads it."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import load_script
from tests.examples.test_run_ner import load_run_ner, write_fixtures
from tests.tiny_encoder import make_tiny_encoder


def test_a_fine_tuned_teacher_is_saved_scored_and_read_by_a_student(tmp_path):
    from transformers import AutoModelForTokenClassification

    from modeling_manmoe.data import CONLL_NER_LABELS
    from modeling_manmoe.training.teachers import Teacher

    script = load_script("examples/finetune_teacher.py")
    files, vectors = write_fixtures(tmp_path)
    en = files[0].split("=", 1)[1]
    encoder = make_tiny_encoder(tmp_path / "bert")
    teacher_dir = tmp_path / "teacher-en"
    arguments = ["--languages", "en", "--model_name_or_path", str(encoder), "--train_files", f"en={en}",
                 "--validation_files", f"en={en}", "--test_files", f"en={en}", "--output_dir", str(teacher_dir), "--max_steps", "4", "--learning_rate", "1e-3",
                 "--per_device_train_batch_size", "4", "--report_to", "none", "--use_cpu", "true",
                 "--disable_tqdm", "true", "--max_length", "6"]  # fmt: skip
    results = script.main(arguments)
    recorded = json.loads((teacher_dir / "all_results.json").read_text())
    assert recorded["dev"] == results["dev"] and 0.0 <= recorded["test"]["en"]["f1"] <= 100.0
    assert len(recorded["data_files"]["train"]["en"]["sha256"]) == 64 and recorded["train"]["train_runtime"] > 0
    # "Acme Corp hired Mary ." is 5 words; with 6 sub-tokens including [CLS] and [SEP] some words are cut, and counted
    assert recorded["words_beyond_max_length"]["train"]["en"] > 0
    assert (teacher_dir / "model.safetensors").exists() and not (teacher_dir / "pytorch_model.bin").exists()
    model = AutoModelForTokenClassification.from_pretrained(teacher_dir)
    assert [model.config.id2label[i] for i in range(len(CONLL_NER_LABELS))] == CONLL_NER_LABELS
    logits = Teacher(str(teacher_dir), CONLL_NER_LABELS, token_classification=True).logits([["peter", "lives"]], "en")
    assert logits[0].shape == (2, len(CONLL_NER_LABELS)) and torch.isfinite(logits[0]).all()
    with pytest.raises(ValueError, match="holds the outputs of another run"):
        script.main(arguments)
    # the fine-tuned teacher teaches a MAN-MoE student on the source and target rows
    student = load_run_ner().main(["--source_languages", "en", "--target_language", "nl", "--train_files", *files[::3],
                                   "--validation_files", *files[::3], "--test_files", *files[::3],
                                   "--word_vectors", *vectors[::3], "--output_dir", str(tmp_path / "student"),
                                   "--teacher_models", f"en={teacher_dir}", "--distillation_alpha", "0.5",
                                   "--target_distillation_weight", "1", "--teacher_cache_dir", str(tmp_path / "cache"),
                                   "--do_train", "--do_eval", "--max_steps", "2", "--disable_tqdm", "true",
                                   "--report_to", "none"])  # fmt: skip
    assert student["distillation"]["teachers"]["en"]["model_type"] == "bert"


def test_a_multi_source_teacher_learns_several_languages_keeps_its_lower_layers_and_scores_the_target(tmp_path):
    from safetensors.torch import load_file

    script = load_script("examples/finetune_teacher.py")
    conll = tmp_path / "conll"
    conll.mkdir()
    sentences = {
        "eng": "Peter B-PER\nlives O\nin O\nBerlin B-LOC\n. O\n",
        "esp": "Juan B-PER\nvive O\n. O\n",
        "fi": "Jani B-PER\nasuu O\nTurussa B-LOC\n. O\n",
    }  # the language code names a non-CoNLL language's files
    for prefix, text in sentences.items():
        for suffix in ("train", "testa", "testb"):
            (conll / f"{prefix}.{suffix}").write_text("\n".join([text] * 4))
    encoder = make_tiny_encoder(tmp_path / "bert")
    output = tmp_path / "teacher"
    results = script.main(["--languages", "en", "es", "--eval_languages", "en", "es", "fi", "--frozen_layers", "1",
                           "--conll_dir", str(conll), "--model_name_or_path", str(encoder), "--output_dir", str(output),
                           "--max_steps", "3", "--learning_rate", "1e-2", "--per_device_train_batch_size", "4",
                           "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true"])  # fmt: skip
    assert sorted(results["data_files"]["train"]) == ["en", "es"]
    assert sorted(results["test"]) == sorted(results["dev"]) == ["en", "es", "fi"] and results["frozen_layers"] == 1
    assert results["data_files"]["test"]["fi"]["path"] == str(conll / "fi.testb")
    before, after = load_file(encoder / "model.safetensors"), load_file(output / "model.safetensors")
    kept = [name for name in after if name.startswith(("bert.embeddings.", "bert.encoder.layer.0."))]
    tuned = [name for name in after if name.startswith("bert.encoder.layer.1.") and name.endswith("weight")]
    assert kept and tuned
    assert all(torch.equal(after[name], before[name.removeprefix("bert.")]) for name in kept)
    assert any(not torch.equal(after[name], before[name.removeprefix("bert.")]) for name in tuned)
    with pytest.raises(ValueError, match=r"no training data for \['es'\]: give --conll_dir or --train_files"):
        script.main(["--languages", "en", "es", "--train_files", f"en={conll / 'eng.train'}", "--model_name_or_path",
                     str(encoder), "--output_dir", str(tmp_path / "other"), "--report_to", "none"])  # fmt: skip
    with pytest.raises(ValueError, match=r"--test_files: \['de'\] are not among the languages read for test"):
        script.main(["--languages", "en", "--conll_dir", str(conll), "--test_files", f"de={conll / 'eng.testb'}",
                     "--model_name_or_path", str(encoder), "--output_dir", str(tmp_path / "other"),
                     "--report_to", "none"])  # fmt: skip
    with pytest.raises(ValueError, match="has only 2 layers"):
        script.main(["--languages", "en", "--frozen_layers", "5", "--conll_dir", str(conll), "--model_name_or_path",
                     str(encoder), "--output_dir", str(tmp_path / "third"), "--report_to", "none",
                     "--use_cpu", "true"])  # fmt: skip


def test_explicit_files_come_before_the_folder_for_each_language(tmp_path):
    script = load_script("examples/finetune_teacher.py")
    arguments = script.TeacherArguments(
        languages=["en", "fi"], model_name_or_path="unused", eval_languages=["en", "fi", "sv"], conll_dir=str(tmp_path),
        train_files=["fi=/data/fi-train.conll"], test_files=["sv=/data/sv-test.conll"],
    )  # fmt: skip
    for name in ("eng.train", "eng.testa", "fi.train", "fi.testb"):
        (tmp_path / name).write_text("x O\n")
    files = script.data_files(arguments)
    assert files["train"] == {"en": str(tmp_path / "eng.train"), "fi": "/data/fi-train.conll"}
    assert files["validation"] == {"en": str(tmp_path / "eng.testa")}  # no dev file for fi or sv: not scored
    assert files["test"] == {"fi": str(tmp_path / "fi.testb"), "sv": "/data/sv-test.conll"}


def test_a_corpus_with_other_entity_types_runs_teacher_student_and_prediction(tmp_path):
    """A held-out corpus whose types are not CoNLL's (DATE here): the teacher and the student infer the same tag set
    from the files, the student accepts the teacher, a saved student predicts with its own labels, and a tag outside
    a trained model's labels is refused naming the file and line."""
    from modeling_manmoe.errors import DataFormatError

    files, vectors = write_fixtures(tmp_path)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    texts = {"eng": "Peter B-PER\nlives O\non O\nMonday B-DATE\n. O\n", "fi": "Jani B-PER\nasuu O\nmaanantaina "
             "B-DATE\nTurussa B-LOC\n. O\n"}  # fmt: skip
    for prefix, text in texts.items():
        for suffix in ("train", "testa", "testb"):
            (corpus / f"{prefix}.{suffix}").write_text("\n".join([text] * 4))
    teacher = tmp_path / "teacher"
    load_script("examples/finetune_teacher.py").main(
        ["--languages", "en", "--eval_languages", "en", "fi", "--conll_dir", str(corpus), "--model_name_or_path",
         str(make_tiny_encoder(tmp_path / "bert")), "--output_dir", str(teacher), "--max_steps", "2",
         "--per_device_train_batch_size", "4", "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true"]
    )  # fmt: skip
    tags = ["O", "B-DATE", "I-DATE", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert list(json.loads((teacher / "config.json").read_text())["id2label"].values()) == tags
    fi_vectors = "fi=" + vectors[3].split("=", 1)[1]
    run_ner = load_run_ner()
    student = tmp_path / "student"
    results = run_ner.main(["--source_languages", "en", "--target_language", "fi", "--conll_dir", str(corpus),
                            "--word_vectors", vectors[0], fi_vectors, "--output_dir", str(student),
                            "--teacher_models", f"all={teacher}", "--target_distillation_weight", "1",
                            "--teacher_cache_dir", str(tmp_path / "cache"),
                            "--do_train", "--do_predict", "--max_steps", "2", "--report_to", "none",
                            "--disable_tqdm", "true"])  # fmt: skip
    assert list(json.loads((student / "config.json").read_text())["id2label"].values()) == tags
    assert "f1" in results["test"]["fi"] and results["distillation"]["teachers"]
    predicted = run_ner.main(["--source_languages", "en", "--target_language", "fi", "--conll_dir", str(corpus),
                              "--model_name_or_path", str(student), "--output_dir", str(tmp_path / "predict"),
                              "--do_predict", "--report_to", "none", "--disable_tqdm", "true"])  # fmt: skip
    assert predicted["test"]["fi"] == results["test"]["fi"]
    with pytest.raises(ValueError, match=r"--ner_labels \['O', 'B-PER', 'I-PER'\] are not the labels of"):
        run_ner.main(["--source_languages", "en", "--target_language", "fi", "--conll_dir", str(corpus),
                      "--model_name_or_path", str(student), "--output_dir", str(tmp_path / "other"), "--do_predict",
                      "--ner_labels", "O", "B-PER", "I-PER", "--report_to", "none"])  # fmt: skip
    (corpus / "fi.testb").write_text("Jani B-PER\nasuu O\nTurussa B-EVENT\n")
    with pytest.raises(DataFormatError, match=r"fi\.testb:3: NER tag 'B-EVENT' is not one of the label names"):
        run_ner.main(["--source_languages", "en", "--target_language", "fi", "--conll_dir", str(corpus),
                      "--model_name_or_path", str(student), "--output_dir", str(tmp_path / "third"), "--do_predict",
                      "--report_to", "none"])  # fmt: skip
