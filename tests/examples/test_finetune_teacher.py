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
    arguments = ["--language", "en", "--model_name_or_path", str(encoder), "--train_file", en, "--validation_file", en,
                 "--test_file", en, "--output_dir", str(teacher_dir), "--max_steps", "4", "--learning_rate", "1e-3",
                 "--per_device_train_batch_size", "4", "--report_to", "none", "--use_cpu", "true",
                 "--disable_tqdm", "true", "--max_length", "6"]  # fmt: skip
    results = script.main(arguments)
    recorded = json.loads((teacher_dir / "all_results.json").read_text())
    assert recorded["dev"] == results["dev"] and 0.0 <= recorded["test"]["f1"] <= 100.0
    assert len(recorded["data_files"]["train"]["sha256"]) == 64 and recorded["train"]["train_runtime"] > 0
    # "Acme Corp hired Mary ." is 5 words; with 6 sub-tokens including [CLS] and [SEP] some words are cut, and counted
    assert recorded["words_beyond_max_length"]["train"] > 0
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
