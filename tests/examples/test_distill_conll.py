"""`examples/distill_conll.sh`: the teacher and student runs it makes (a stand-in `python` records each command)."""

from __future__ import annotations

import pytest

from tests.examples.stand_in_python import option
from tests.examples.stand_in_python import run_wrapper as run_script


def run_wrapper(tmp_path, *arguments: str, **env: str) -> tuple[int, list[list[str]], str]:
    return run_script(tmp_path, "distill_conll.sh", "nl", str(tmp_path / "out"), *arguments, **env)


def test_monolingual_teachers_are_each_trained_on_their_own_language_then_the_student_on_all(tmp_path):
    code, commands, _ = run_wrapper(tmp_path, "--seed", "7")
    assert code == 0 and len(commands) == 4
    for command, lang in zip(commands[:3], ("en", "de", "es"), strict=True):
        assert option(command, "--source_languages") == lang and option(command, "--no_adversary") == "true"
        assert option(command, "--output_dir") == str(tmp_path / "out" / f"teacher-{lang}")
        assert "--teacher_models" not in command
    student = commands[3]
    assert option(student, "--source_languages", 3) == ["en", "de", "es"]
    assert option(student, "--teacher_models", 3) == [f"{lang}={tmp_path / 'out' / f'teacher-{lang}'}"
                                                       for lang in ("en", "de", "es")]  # fmt: skip
    assert option(student, "--distillation_alpha") == "0.5" and student[-2:] == ["--seed", "7"]
    assert all(option(command, "--max_steps") == "1000" for command in commands)


def test_a_manmoe_teacher_is_trained_on_all_sources_and_finished_teachers_are_kept(tmp_path):
    code, commands, _ = run_wrapper(tmp_path, "--distillation_alpha", "0", TEACHERS="manmoe", STEPS="40")
    assert code == 0 and len(commands) == 2
    teacher, student = commands
    assert option(teacher, "--source_languages", 3) == ["en", "de", "es"] and "--no_adversary" not in teacher
    assert option(teacher, "--output_dir") == str(tmp_path / "out" / "teacher-all")
    assert option(student, "--teacher_models") == f"all={tmp_path / 'out' / 'teacher-all'}"
    assert student[-2:] == ["--distillation_alpha", "0"] and option(student, "--eval_steps") == "10"

    # the teacher's run minus the teachers is the student's: the teacher is MAN-MoE alone at the student's schedule
    def without_output_dir(command):
        at = command.index("--output_dir")
        return command[:at] + command[at + 2 :]

    assert without_output_dir(teacher) == without_output_dir(student[: student.index("--teacher_models")])
    (tmp_path / "out" / "teacher-all" / "all_results.json").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "out" / "teacher-all" / "all_results.json").write_text("{}")
    code, commands, _ = run_wrapper(tmp_path, TEACHERS="manmoe")
    assert code == 0 and len(commands) == 1 and option(commands[0], "--output_dir").endswith("student")


def test_fine_tuned_teachers_are_fine_tuned_on_their_own_language_for_teacher_epochs(tmp_path):
    code, commands, _ = run_wrapper(tmp_path, TEACHERS="finetuned", TEACHER_EPOCHS="1")
    assert code == 0 and len(commands) == 4
    for command, lang in zip(commands[:3], ("en", "de", "es"), strict=True):
        assert command[0] == "examples/finetune_teacher.py" and option(command, "--languages") == lang
        assert option(command, "--num_train_epochs") == "1"
        assert option(command, "--output_dir") == str(tmp_path / "out" / f"finetuned-teacher-{lang}")
    assert option(commands[3], "--teacher_models", 3) == [f"{lang}={tmp_path / 'out' / f'finetuned-teacher-{lang}'}"
                                                           for lang in ("en", "de", "es")]  # fmt: skip
    assert option(run_wrapper(tmp_path, TEACHERS="finetuned")[1][0], "--num_train_epochs") == "3"


@pytest.mark.parametrize("kind", ["mono", "all"])
def test_an_unknown_teacher_kind_is_refused_before_any_run(tmp_path, kind):
    code, commands, stderr = run_wrapper(tmp_path, TEACHERS=kind)
    assert code == 2 and commands == [] and f"not '{kind}'" in stderr


def test_a_manmoe_teacher_ensemble_is_one_run_per_teacher_seed(tmp_path):
    code, commands, _ = run_wrapper(tmp_path, "--distillation_alpha", "0", TEACHERS="manmoe", TEACHER_SEEDS="42 43")
    assert code == 0 and len(commands) == 3
    folders = [str(tmp_path / "out" / f"teacher-all-seed{seed}") for seed in (42, 43)]
    for command, seed, folder in zip(commands[:2], ("42", "43"), folders, strict=True):
        assert option(command, "--seed") == seed and option(command, "--output_dir") == folder
        assert "--teacher_models" not in command
    assert option(commands[2], "--teacher_models") == f"all={folders[0]},{folders[1]}"
    assert option(commands[2], "--seed") is None and commands[2][-2:] == ["--distillation_alpha", "0"]


def test_a_multi_source_fine_tuned_teacher_learns_all_sources_and_is_scored_on_the_target(tmp_path):
    code, commands, _ = run_wrapper(
        tmp_path, TEACHERS="finetuned_multisource", TEACHER_EPOCHS="1", TEACHER_LEARNING_RATE="1e-4"
    )
    assert code == 0 and len(commands) == 2
    teacher, student = commands
    folder = str(tmp_path / "out" / "finetuned-teacher-all")
    assert teacher[0] == "examples/finetune_teacher.py" and option(teacher, "--output_dir") == folder
    assert option(teacher, "--languages", 3) == ["en", "de", "es"]
    assert option(teacher, "--eval_languages", 4) == ["en", "de", "es", "nl"]
    assert option(teacher, "--num_train_epochs") == "1" and option(teacher, "--learning_rate") == "1e-4"
    assert option(student, "--teacher_models") == f"all={folder}"
    assert option(run_wrapper(tmp_path, TEACHERS="finetuned")[1][0], "--learning_rate") == "5e-5"


def test_the_fine_tuned_and_manmoe_teachers_combine_into_one_ensemble(tmp_path):
    code, commands, _ = run_wrapper(tmp_path, TEACHERS="finetuned_multisource manmoe", TEACHER_SEEDS="42 43")
    assert code == 0 and len(commands) == 4
    assert commands[0][0] == "examples/finetune_teacher.py"
    assert [option(command, "--seed") for command in commands[1:3]] == ["42", "43"]
    members = [str(tmp_path / "out" / name) for name in ("finetuned-teacher-all", "teacher-all-seed42",
                                                          "teacher-all-seed43")]  # fmt: skip
    assert option(commands[3], "--teacher_models") == "all=" + ",".join(members)


@pytest.mark.parametrize("kinds", ["monolingual manmoe", "manmoe manmoe"])
def test_only_the_one_for_all_teacher_kinds_combine_each_once(tmp_path, kinds):
    code, commands, stderr = run_wrapper(tmp_path, TEACHERS=kinds)
    assert code == 2 and commands == [] and "each once, combine into one ensemble" in stderr


def test_languages_names_another_corpus_languages_and_must_hold_the_target(tmp_path):
    code, commands, _ = run_script(tmp_path, "distill_conll.sh", "fi", str(tmp_path / "out"), TEACHERS="manmoe",
                                   LANGUAGES="en de fi")  # fmt: skip
    assert code == 0 and [option(command, "--source_languages", 2) for command in commands] == [["en", "de"]] * 2
    assert all(option(command, "--target_language") == "fi" for command in commands)
    for languages in ("en de es", "fi"):
        code, commands, stderr = run_script(tmp_path, "distill_conll.sh", "fi", str(tmp_path / "out"),
                                            LANGUAGES=languages)  # fmt: skip
        assert code == 2 and commands == [] and "TARGET 'fi' must be one of LANGUAGES" in stderr


def test_the_recipe_runs_end_to_end_on_another_corpus_with_its_own_entity_types(tmp_path):
    """The reference recipe, unmodified (real runs, a tiny 10-layer encoder, 4 steps): a corpus that is not CoNLL's,
    English in IOB1 and a `fi` target in IOBES with a DATE type, found by language code. The fine-tuned teacher, two
    MAN-MoE seeds and the student (started from the seed-42 teacher) agree on the tag set the files give, and the
    student's results name the teachers and the model it started from."""
    import json
    import os
    import subprocess

    from tests.examples.stand_in_python import REPO
    from tests.tiny_encoder import make_tiny_encoder

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    english = "Peter I-PER\nlives O\nin O\nBerlin I-LOC\nsince O\nMonday I-DATE\n. O\n"
    finnish = "Jani S-PER\nasuu O\nTurussa S-LOC\nmaanantaista S-DATE\nalkaen O\nPekka B-PER\nVirtanen E-PER\n"
    for prefix, text in (("eng", english), ("fi", finnish)):
        for suffix in ("train", "testa", "testb"):
            (corpus / f"{prefix}.{suffix}").write_text("\n".join([text] * 6))
    encoder = make_tiny_encoder(tmp_path / "encoder", layers=10)
    out = tmp_path / "out"
    env = dict(os.environ, LANGUAGES="en fi", MANMOE_DATA=str(corpus), ENCODER=str(encoder), STEPS="4",
               TEACHERS="finetuned_multisource manmoe", TEACHER_SEEDS="42 43", TEACHER_EPOCHS="1",
               TEACHER_LEARNING_RATE="1e-4", MANMOE_FEATURE_CACHE=str(tmp_path / "features"),
               HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1")  # fmt: skip
    done = subprocess.run(["bash", str(REPO / "examples" / "distill_conll.sh"), "fi", str(out), "--distillation_alpha",
                           "0", "--target_distillation_weight", "3", "--distillation_temperature", "1",
                           "--model_name_or_path", str(out / "teacher-all-seed42")],
                          env=env, cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    tags = ["O", "B-DATE", "I-DATE", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    for run in ("finetuned-teacher-all", "teacher-all-seed42", "teacher-all-seed43", "student"):
        assert list(json.loads((out / run / "config.json").read_text())["id2label"].values()) == tags, run
    results = json.loads((out / "student" / "all_results.json").read_text())
    assert "f1" in results["test"]["fi"] and results["distillation"]["target_distillation_weight"] == 3
    assert len(results["distillation"]["teachers"]) == 1  # the one ensemble of three teachers
    # the student starts from the seed-42 MAN-MoE teacher: the weights it recorded are that member's
    members = {
        member["path"]: member["weights_sha256"] for member in results["distillation"]["teachers"]["en"]["members"]
    }
    initial = results["data_and_vector_files"]["initial_model"]
    assert initial["weights_sha256"] == members[initial["name_or_path"]] == members[str(out / "teacher-all-seed42")]


def test_ner_labels_gives_every_run_one_tag_set(tmp_path):
    labels = ["O", "B-DATE", "I-DATE", "B-PER", "I-PER"]
    code, commands, _ = run_wrapper(tmp_path, TEACHERS="finetuned_multisource manmoe", NER_LABELS=" ".join(labels))
    assert code == 0 and len(commands) == 3
    assert all(option(command, "--ner_labels", len(labels)) == labels for command in commands)
    code, commands, _ = run_wrapper(tmp_path, TEACHERS="manmoe")
    assert code == 0 and all("--ner_labels" not in command for command in commands)
