"""`examples/run_ner.py` end to end: offline on tiny fixture files, and on the real CoNLL data in ../shared."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import load_script
from tests.examples.vector_fixtures import write_vec_gz

REPO = Path(__file__).resolve().parents[2]
LANGUAGES = ["en", "de", "es", "nl"]
SENTENCES = {
    "en": [("Peter lives in London .", "B-PER O O B-LOC O"), ("Acme Corp hired Mary .", "B-ORG I-ORG O B-PER O")],
    "de": [("Peter wohnt in Berlin .", "B-PER O O B-LOC O"), ("Die Acme AG sucht Anna .", "O B-ORG I-ORG O B-PER O")],
    "es": [("Pedro vive en Madrid .", "B-PER O O B-LOC O"), ("Acme SA contrata a Ana .", "B-ORG I-ORG O O B-PER O")],
    "nl": [("Piet woont in Amsterdam .", "B-PER O O B-LOC O"), ("Acme BV zoekt Anna .", "B-ORG I-ORG O B-PER O")],
}


def load_run_ner():
    """`examples/run_ner.py` as a module (registered in sys.modules, which its dataclasses need)."""
    return load_script("examples/run_ner.py")


def write_fixtures(folder: Path) -> tuple[list[str], list[str]]:
    """Tiny CoNLL files (train = dev = test, a few copies) and 6-d `.vec.gz` files for the four languages."""
    rng = np.random.default_rng(0)
    files, vectors = [], []
    for lang, sentences in SENTENCES.items():
        block = "\n\n".join(
            "\n".join(f"{w} {t}" for w, t in zip(text.split(), tags.split(), strict=True)) for text, tags in sentences
        )
        path = folder / f"{lang}.conll"
        path.write_text("\n\n".join([block] * 4) + "\n", encoding="utf-8")
        files.append(f"{lang}={path}")
        words = sorted({w for text, _ in sentences for w in text.split()})
        vec = folder / f"{lang}.vec.gz"
        vectors.append(f"{lang}={write_vec_gz(vec, words, rng)}")
    return files, vectors


def test_run_ner_on_fixture_files_writes_every_output(tmp_path):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    files, vectors = write_fixtures(tmp_path)
    out = tmp_path / "run"
    argv = ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
            "--validation_files", *files, "--test_files", *files, "--word_vectors", *vectors,
            "--output_dir", str(out), "--do_train", "--do_eval", "--do_predict", "--max_steps", "3",
            "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    results = load_run_ner().main(argv)
    saved = json.loads((out / "all_results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["train"]["global_step"] == 3 and saved["seed"] == 42
    for split in ("dev", "test"):
        assert sorted(saved[split]) == sorted(LANGUAGES)
        assert all(set(scores) == {"precision", "recall", "f1"} for scores in saved[split].values())
    assert saved["config"]["unlabeled_languages"] == ["nl"] and saved["wall_time_s"] > 0
    assert saved["tokenizer"]["language"] == "nl" and saved["tokenizer"]["lowercase_characters"] is False
    assert sorted(saved["tokenizer"]["words"]) == sorted(LANGUAGES) and saved["tokenizer"]["characters"] > 0
    provenance = saved["data_and_vector_files"]
    assert {"train/nl", "validation/en", "test/es", "word_vectors/de"} <= set(provenance)
    assert all(len(entry["sha256"]) == 64 for entry in provenance.values())
    coverage = provenance["word_vectors/de"]["coverage"]  # every fixture word has a vector
    assert coverage["tokens_found"] == coverage["tokens"] > 0 and coverage["token_coverage"] == 1.0
    # predictions: `word gold predicted`, one sentence per block, in the input order
    lines = (out / "predictions_test_en.conll").read_text(encoding="utf-8").splitlines()
    assert lines[0].split()[:2] == ["Peter", "B-PER"] and len(lines[0].split()) == 3
    assert sum(1 for line in lines if line == "") == 8
    assert not list(out.glob(".*.tmp")), "no temporary files left behind"
    # the saved folder loads with the Auto classes and tags a sentence
    model = AutoModelForTokenClassification.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    encoded = tokenizer(["Piet", "woont", "in", "Amsterdam"], language="nl", is_split_into_words=True,
                        return_tensors="pt")  # fmt: skip
    assert model(**encoded).logits.shape == (1, 4, 9)


def test_a_corpus_vocabulary_trains_the_same_model_with_a_smaller_table(tmp_path):
    """`--word_vocabulary corpus` (the reference's vocabulary) keeps only the vector-file words of the given
    data: the run's scores, predictions and every trained weight equal those of the whole files; only the frozen
    table is smaller, and a word outside the data is unknown to the saved model."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    files, _ = write_fixtures(tmp_path)
    rng = np.random.default_rng(1)
    vectors = []
    for lang, sentences in SENTENCES.items():  # the data's words plus words (and characters) it never uses
        words = sorted({w for text, _ in sentences for w in text.split()}) + ["Zürich", "Œuvre", "xylofoon"]
        vectors.append(f"{lang}={write_vec_gz(tmp_path / f'{lang}-big.vec.gz', words, rng)}")
    argv = ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
            "--validation_files", *files, "--test_files", *files, "--word_vectors", *vectors, "--do_train",
            "--do_eval", "--do_predict", "--max_steps", "3", "--per_device_train_batch_size", "2", "--report_to",
            "none", "--disable_tqdm", "true"]  # fmt: skip
    run = load_run_ner().main
    whole = run([*argv, "--output_dir", str(tmp_path / "file")])
    corpus = run([*argv, "--output_dir", str(tmp_path / "corpus"), "--word_vocabulary", "corpus"])
    assert corpus["dev"] == whole["dev"] and corpus["test"] == whole["test"]
    assert corpus["tokenizer"]["characters"] == whole["tokenizer"]["characters"]
    assert all(corpus["tokenizer"]["words"][lang] == whole["tokenizer"]["words"][lang] - 3 for lang in LANGUAGES)
    for lang in LANGUAGES:
        name = f"predictions_test_{lang}.conll"
        assert (tmp_path / "corpus" / name).read_text() == (tmp_path / "file" / name).read_text()
    expected, actual = (load_file(tmp_path / run_dir / "model.safetensors") for run_dir in ("file", "corpus"))
    table = next(name for name in expected if "word_embeddings" in name)
    assert actual[table].shape[0] == expected[table].shape[0] - 12
    assert all(torch.equal(expected[name], actual[name]) for name in expected if name != table)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "corpus")
    assert tokenizer(["Zürich", "Piet"], language="nl", is_split_into_words=True)["input_ids"][0][0] == 1


@pytest.mark.parametrize(
    "target, option, lowercased",
    [("de", "auto", True), ("nl", "auto", False), ("de", "no", False), ("nl", "yes", True)],
)
def test_characters_are_lowercased_for_a_german_target_unless_asked_otherwise(tmp_path, target, option, lowercased):
    """`--lowercase_characters auto` follows the reference (a German target only); `all_results.json` records what
    the run did, and the saved tokenizer does it."""
    from transformers import AutoTokenizer

    files, vectors = write_fixtures(tmp_path)
    argv = ["--source_languages", *[lang for lang in LANGUAGES if lang != target], "--target_language", target,
            "--train_files", *files, "--validation_files", *files, "--word_vectors", *vectors,
            "--lowercase_characters", option, "--output_dir", str(tmp_path / "run"), "--do_train", "--max_steps", "1",
            "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    results = load_run_ner().main(argv)
    assert results["tokenizer"]["lowercase_characters"] is lowercased and results["tokenizer"]["language"] == target
    assert AutoTokenizer.from_pretrained(tmp_path / "run").lowercase_characters is lowercased


def test_run_ner_with_a_frozen_encoder_and_its_feature_cache(tmp_path):
    """Encoder mode end to end on the fixtures with a tiny BERT made here: the first run builds the feature cache,
    a second run over the same data reuses it, and the saved model tags raw words with the live encoder."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from tests.tiny_encoder import make_tiny_encoder

    files, _ = write_fixtures(tmp_path)
    encoder = make_tiny_encoder(tmp_path / "encoder")
    cache = tmp_path / "cache"

    def run(name: str) -> dict:
        argv = ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
                "--validation_files", *files, "--test_files", *files, "--encoder_name_or_path", str(encoder),
                "--encoder_layers", "0", "-1", "--feature_cache_dir", str(cache), "--output_dir", str(tmp_path / name),
                "--do_train", "--do_eval", "--do_predict", "--max_steps", "3", "--per_device_train_batch_size", "2",
                "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
        return load_run_ner().main(argv)

    results = run("first")
    files_after_first = {path.name: path.stat().st_mtime_ns for path in cache.iterdir()}
    assert len(files_after_first) == 4, "one cache file per distinct dataset (train = dev = test here)"
    assert results["config"]["encoder_config"]["hidden_size"] == 12 and results["config"]["encoder_layers"] == [0, -1]
    assert len(results["data_and_vector_files"]["encoder"]["weights_sha256"]) == 64
    assert sorted(results["test"]) == sorted(LANGUAGES)
    again = run("second")
    assert {path.name: path.stat().st_mtime_ns for path in cache.iterdir()} == files_after_first, "cache reused"
    assert again["test"] == results["test"], "same seed, same cached features: same scores"
    model = AutoModelForTokenClassification.from_pretrained(tmp_path / "first").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "first")
    encoded = tokenizer(["Piet", "woont", "in", "Amsterdam"], language="nl", is_split_into_words=True,
                        return_tensors="pt")  # fmt: skip
    assert model(**encoded).logits.shape == (1, 4, 9)


@pytest.mark.slow
def test_run_ner_under_accelerate_launch_with_two_processes(tmp_path):
    files, vectors = write_fixtures(tmp_path)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(REPO / "examples" / "run_ner.py"), "--source_languages", "en", "de", "es", "--target_language",
               "nl", "--train_files", *files, "--validation_files", *files, "--test_files", *files,
               "--word_vectors", *vectors, "--output_dir", str(out), "--do_train", "--do_eval", "--do_predict",
               "--max_steps", "4", "--per_device_train_batch_size", "2", "--disable_tqdm", "true"]  # fmt: skip
    # two CPU processes (gloo) also where a GPU is present: one GPU cannot hold two NCCL ranks
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    saved = json.loads((out / "all_results.json").read_text())
    assert saved["hardware"]["processes"] == 2, "the two processes train one model data-parallel"
    assert saved["train"]["global_step"] == 4 and saved["train"]["steps_per_epoch"] == 2
    # every test sentence predicted exactly once (no duplicates from the distributed sampler)
    blocks = (out / "predictions_test_nl.conll").read_text(encoding="utf-8").strip().split("\n\n")
    assert len(blocks) == 8


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--target_language", "en"], "also a source language"),
        (["--word_vectors", "en=x.vec"], "no vector file for language"),
        (["--train_files", "en"], "expected LANG=VALUE"),
        (["--oov_words", "zero"], "--oov_words: expected unknown or random"),
        (["--word_vocabulary", "all"], "--word_vocabulary: expected file or corpus"),
    ],
)
def test_run_ner_argument_errors_name_the_option(tmp_path, extra, message):
    files, vectors = write_fixtures(tmp_path)
    argv = ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
            "--validation_files", *files, "--word_vectors", *vectors, "--output_dir", str(tmp_path / "run"),
            "--do_train", "--max_steps", "1", "--report_to", "none"]  # fmt: skip
    for option in ("--target_language", "--word_vectors", "--train_files"):
        if extra[0] == option:
            start = argv.index(option)
            end = next((i for i in range(start + 1, len(argv)) if argv[i].startswith("--")), len(argv))
            argv = argv[:start] + argv[end:]
    with pytest.raises(ValueError, match=message):
        load_run_ner().main(argv + extra)


def test_a_conll_folder_names_any_language_by_its_code(tmp_path):
    """A corpus beyond CoNLL's four languages: `fi.train`, `fi.testa`, `fi.testb` beside `eng.*` in --conll_dir."""
    files, vectors = write_fixtures(tmp_path)
    paths = dict(item.split("=", 1) for item in files)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for suffix in ("train", "testa", "testb"):
        shutil.copy(paths["en"], corpus / f"eng.{suffix}")
        shutil.copy(paths["nl"], corpus / f"fi.{suffix}")
    fi_vectors = "fi=" + vectors[3].split("=", 1)[1]
    results = load_run_ner().main(["--source_languages", "en", "--target_language", "fi", "--conll_dir", str(corpus),
                                   "--word_vectors", vectors[0], fi_vectors, "--output_dir", str(tmp_path / "run"),
                                   "--do_train", "--do_predict", "--max_steps", "2", "--report_to", "none",
                                   "--disable_tqdm", "true"])  # fmt: skip
    recorded = results["data_and_vector_files"]
    assert recorded["train/fi"]["path"] == str(corpus / "fi.train") and "f1" in results["test"]["fi"]


@pytest.mark.integration
@pytest.mark.slow
def test_zero_shot_ner_on_real_conll_learns(shared_dir, tmp_path):
    """A short schedule on a subset of the real CoNLL data (en, de, es labeled -> nl unlabeled; batches of 8 per
    language, half the paper's, to fit CI): the Dutch test F1 of the selected model must be well above zero
    (zero-shot transfer happened)."""
    vectors = [f"{lang}={shared_dir}/embeddings/conll-use-m3/{lang}.vec.gz" for lang in LANGUAGES]
    out = tmp_path / "run"
    argv = ["--source_languages", "en", "de", "es", "--target_language", "nl", "--conll_dir",
            str(shared_dir / "data"), "--word_vectors", *vectors, "--output_dir", str(out), "--do_train",
            "--do_eval", "--do_predict", "--max_steps", "150", "--learning_rate", "3e-3", "--max_train_sentences",
            "3000", "--per_device_train_batch_size", "8", "--max_eval_sentences", "500", "--per_device_eval_batch_size",
            "64", "--eval_strategy", "steps", "--eval_steps", "75", "--logging_steps", "25", "--report_to", "none",
            "--disable_tqdm", "true"]  # fmt: skip
    results = load_run_ner().main(argv)
    assert results["train"]["global_step"] == 150
    assert results["data_and_vector_files"]["train/nl"]["sentences"] == 3000
    assert results["test"]["en"]["f1"] > 25, results["test"]  # measured 57.4 (nl 22.1), 2 threads
    assert results["test"]["nl"]["f1"] > 10, results["test"]


@pytest.mark.integration
@pytest.mark.slow
def test_zero_shot_ner_with_the_shared_frozen_encoder_learns(shared_dir, tmp_path):
    """Encoder mode on a subset of the real CoNLL data with ../shared/models/multilingual-e5-small-trimmed (en, de,
    es labeled -> nl unlabeled; features cached in a fresh folder; batches of 8 per language): the Dutch test F1
    must be well above zero."""
    out = tmp_path / "run"
    argv = ["--source_languages", "en", "de", "es", "--target_language", "nl", "--conll_dir",
            str(shared_dir / "data"), "--encoder_name_or_path", str(shared_dir / "models/multilingual-e5-small-trimmed"),
            "--use_char_cnn", "false", "--feature_cache_dir", str(tmp_path / "cache"), "--output_dir", str(out),
            "--do_train", "--do_eval", "--do_predict", "--max_steps", "150", "--learning_rate", "3e-3",
            "--max_train_sentences", "400", "--max_eval_sentences", "100", "--per_device_train_batch_size", "8",
            "--per_device_eval_batch_size", "64", "--eval_strategy", "steps", "--eval_steps", "75", "--logging_steps",
            "25", "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    results = load_run_ner().main(argv)
    assert results["train"]["global_step"] == 150 and results["config"]["encoder_config"] is not None
    assert len(list((tmp_path / "cache").iterdir())) == 12, "one cache file per language and split"
    assert results["test"]["en"]["f1"] > 20, results["test"]  # measured 43.2 (nl 16.4), 2 threads
    assert results["test"]["nl"]["f1"] > 10, results["test"]


PAUSED_RUN_NER = [sys.executable, str(REPO / "tests" / "examples" / "paused_run_ner.py")]


def resume_test_arguments(folder: Path) -> list[str]:
    """run_ner.py arguments of the resume tests: fixture data, batches of 2, evaluation and a checkpoint every 2 steps
    (no `--max_steps`, `--save_total_limit` or `--output_dir`), on the CPU also where a GPU is present: the claims
    are bit for bit, which CUDA's order-dependent kernels (atomic adds) do not promise."""
    files, vectors = write_fixtures(folder)
    return ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
            "--validation_files", *files, "--test_files", *files, "--word_vectors", *vectors, "--do_train",
            "--do_predict", "--per_device_train_batch_size", "2", "--eval_strategy", "steps", "--eval_steps", "2",
            "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true"]  # fmt: skip


def run_in_fresh_process(ready: Path, argv: list[str], output_dir: Path, *extra: str) -> dict:
    """`paused_run_ner.py` (never pausing) in its own process; its `all_results.json`."""
    command = [*PAUSED_RUN_NER, "0", str(ready), *argv, "--output_dir", str(output_dir), *extra]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((output_dir / "all_results.json").read_text())


def assert_same_weights(expected_file: Path, actual_file: Path) -> None:
    """The two safetensors files hold the same tensors, bit for bit."""
    from safetensors.torch import load_file

    expected, actual = load_file(expected_file), load_file(actual_file)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


@pytest.mark.slow
def test_run_killed_while_saving_resumes_to_the_same_model(tmp_path):
    """SIGKILL a run while it writes checkpoint-6 (weights saved, optimizer and state not), resume with
    `--resume_from_checkpoint last`: the half-written checkpoint is skipped, training continues from checkpoint-4,
    and the final model and scores equal those of an uninterrupted run with the same seed."""
    argv = [*resume_test_arguments(tmp_path), "--max_steps", "10", "--save_total_limit", "3"]
    ready = tmp_path / "ready"
    uninterrupted = run_in_fresh_process(ready, argv, tmp_path / "full")

    killed = tmp_path / "killed"
    command = [*PAUSED_RUN_NER, "6", str(ready), *argv, "--output_dir", str(killed)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert process.poll() is None, process.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the run never reached checkpoint-6"
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    half_written = killed / "checkpoint-6"
    assert (half_written / "model.safetensors").exists() and not (half_written / "trainer_state.json").exists()
    assert not (killed / "all_results.json").exists(), "a killed run leaves no results file"

    resumed = run_in_fresh_process(ready, argv, killed, "--resume_from_checkpoint", "last")
    assert resumed["train"]["global_step"] == 10
    assert resumed["train"]["resumed_at_step"] == 4 and resumed["train"]["resumed_from_checkpoint"].endswith("-4")
    assert "resumed_at_step" not in uninterrupted["train"] and "resumed_from_checkpoint" not in uninterrupted["train"]
    assert resumed["test"] == uninterrupted["test"] and resumed["dev"] == uninterrupted["dev"]
    assert_same_weights(tmp_path / "full" / "model.safetensors", killed / "model.safetensors")


@pytest.mark.slow
def test_a_finished_run_extended_to_more_steps_equals_the_longer_run(tmp_path):
    """A run of 4 steps, resumed from its last checkpoint with `--max_steps 8`, reaches at step 8 the weights of an
    8-step run, with the same scores (the rate is constant and every step's batches depend only on the seed and the
    step): how the README's 9,000-step runs continued the 4,500-step ones."""
    from safetensors.torch import load_file

    argv = [*resume_test_arguments(tmp_path), "--save_total_limit", "2"]
    ready = tmp_path / "ready"
    longer = run_in_fresh_process(ready, argv, tmp_path / "longer", "--max_steps", "8")
    run_in_fresh_process(ready, argv, tmp_path / "short", "--max_steps", "4")
    assert (tmp_path / "short" / "checkpoint-4").is_dir() and not (tmp_path / "short" / "checkpoint-8").exists()
    extended = run_in_fresh_process(
        ready, argv, tmp_path / "short", "--max_steps", "8", "--resume_from_checkpoint", "last"
    )
    assert extended["train"]["global_step"] == 8 and extended["train"]["resumed_at_step"] == 4
    assert extended["test"] == longer["test"] and extended["dev"] == longer["dev"]
    expected = load_file(tmp_path / "longer" / "checkpoint-8" / "model.safetensors")
    at_step_2 = load_file(tmp_path / "longer" / "checkpoint-2" / "model.safetensors")
    assert any(not torch.equal(expected[name], at_step_2[name]) for name in expected), "steps 3-8 changed nothing"
    assert_same_weights(tmp_path / "longer" / "checkpoint-8" / "model.safetensors",
                        tmp_path / "short" / "checkpoint-8" / "model.safetensors")  # fmt: skip


def test_resuming_from_an_incomplete_checkpoint_is_refused(tmp_path):
    from modeling_manmoe import CheckpointError
    from modeling_manmoe.training.checkpoints import last_complete_checkpoint, resolve_resume_checkpoint

    for step, files in ((2, {"model.safetensors": "x", "optimizer.pt": "x", "trainer_state.json": "{}"}),
                        (4, {"model.safetensors": "x", "optimizer.pt": "x", "trainer_state.json": '{"glob'}),
                        (6, {"model.safetensors": "x"})):  # fmt: skip
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
    assert last_complete_checkpoint(str(tmp_path), ("optimizer.pt",)) == str(tmp_path / "checkpoint-2")
    assert resolve_resume_checkpoint("last", str(tmp_path)) == str(tmp_path / "checkpoint-2")
    assert resolve_resume_checkpoint(None, str(tmp_path)) is None
    with pytest.raises(CheckpointError, match=r"checkpoint-4.*trainer_state.json"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-4"), str(tmp_path))
    with pytest.raises(CheckpointError, match=r"checkpoint-6.*discriminator_optimizer.pt"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-6"), str(tmp_path), ("discriminator_optimizer.pt",))
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        resolve_resume_checkpoint(True, str(tmp_path / "empty"))


# -- output folders, resumes and claims ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 2-step run of run_ner.py on the fixtures (checkpoint-2, dev scores, predictions): its arguments
    without `--output_dir`, and its folder (copy it before changing anything)."""
    folder = tmp_path_factory.mktemp("finished")
    files, vectors = write_fixtures(folder)
    argv = ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
            "--validation_files", *files, "--test_files", *files, "--word_vectors", *vectors, "--do_train",
            "--do_eval", "--do_predict", "--max_steps", "2", "--eval_strategy", "steps", "--eval_steps", "2",
            "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true",
            "--use_cpu", "true"]  # fmt: skip
    load_run_ner().main([*argv, "--output_dir", str(folder / "run")])
    return argv, folder / "run"


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_a_run_ties_its_model_and_results_with_one_run_id(finished_run):
    _, out = finished_run
    results = json.loads((out / "all_results.json").read_text())
    run_id = json.loads((out / "config.json").read_text())["manmoe_run_id"]
    assert len(run_id) == 32 and results["run_id"] == results["config"]["manmoe_run_id"] == run_id
    assert json.loads((out / "checkpoint-2" / "config.json").read_text())["manmoe_run_id"] == run_id
    assert results["language_roles"] == {"en": "labeled source", "de": "labeled source", "es": "labeled source",
                                         "nl": "zero-shot target"}  # fmt: skip
    assert results["train"]["train_loss_steps"] == [1, 2] and not (out / ".manmoe.lock").exists()


def test_a_training_run_into_a_finished_run_folder_is_refused_and_changes_nothing(finished_run, tmp_path, monkeypatch):
    argv, finished = finished_run
    out = shutil.copytree(finished, tmp_path / "run")
    before = folder_bytes(out)
    run_ner = load_run_ner()
    monkeypatch.setattr(run_ner, "load_split", lambda *args: pytest.fail("data loaded before the folder was checked"))
    expected = (
        r"--output_dir: '.*run' holds the outputs of another run \(all_results.json, checkpoint-2, model.safetensors, "
        r"predictions_test_de.conll, .* and \d+ more\); give an empty or new folder, --overwrite_output_dir to remove "
        r"them first, or --resume_from_checkpoint last to continue that run"
    )
    with pytest.raises(ValueError, match=expected):
        run_ner.main([*argv, "--output_dir", str(out)])
    assert folder_bytes(out) == before, "the finished run's files are byte-identical, and no lock is left"


def test_an_evaluation_only_run_writes_into_no_other_runs_folder_and_keeps_its_own_models_training_record(
    finished_run, tmp_path
):
    """Evaluating a model into another finished run's folder is refused (that folder stays byte-identical);
    evaluating it in its own folder rewrites the scores, keeps its `train` entry, and the folder stays one run's."""
    from modeling_manmoe.run.model_card import build_model_card

    argv, finished = finished_run
    other = shutil.copytree(finished, tmp_path / "other")
    own = shutil.copytree(finished, tmp_path / "own")
    before = folder_bytes(other)
    data = argv[: argv.index("--word_vectors")]
    evaluate = [*data, "--do_eval", "--do_predict", "--report_to", "none", "--disable_tqdm", "true",
                "--use_cpu", "true"]  # fmt: skip
    with pytest.raises(ValueError, match=r"holds the outputs of another run .*\(an evaluation-only run writes"):
        load_run_ner().main([*evaluate, "--model_name_or_path", str(own), "--output_dir", str(other)])
    assert folder_bytes(other) == before
    trained = json.loads((own / "all_results.json").read_text())
    results = load_run_ner().main([*evaluate, "--model_name_or_path", str(own), "--output_dir", str(own)])
    assert results["train"] == trained["train"] and results["train_recorded_by_run"] == trained["run_id"]
    assert results["config"]["manmoe_run_id"] == trained["run_id"] and "test" in results
    build_model_card(own)  # the folder's model and results are one run's


def test_overwrite_output_dir_removes_the_old_runs_outputs_and_nothing_else(finished_run, tmp_path):
    argv, finished = finished_run
    out = shutil.copytree(finished, tmp_path / "run")
    (out / "notes.txt").write_text("mine")
    old_id = json.loads((out / "all_results.json").read_text())["run_id"]
    without_predictions = [arg for arg in argv if arg != "--do_predict"]
    results = load_run_ner().main([*without_predictions, "--output_dir", str(out), "--overwrite_output_dir"])
    assert not list(out.glob("predictions_test_*")), "the old run's predictions are gone"
    assert (out / "notes.txt").read_text() == "mine" and "test" not in results
    assert (
        results["run_id"] != old_id
        and json.loads((out / "config.json").read_text())["manmoe_run_id"] == results["run_id"]
    )


def test_resuming_with_other_arguments_is_refused_listing_the_differences(finished_run, tmp_path):
    """The checkpoint records the run's fingerprint: a resume with another vector file and another character case
    is refused before any step, naming both, and leaves the folder unchanged; the same arguments resume, and the
    training loss then covers the whole run."""
    from modeling_manmoe import CheckpointError

    argv, finished = finished_run
    out = shutil.copytree(finished, tmp_path / "run")
    before = folder_bytes(out)
    words = sorted({w for text, _ in SENTENCES["nl"] for w in text.split()})
    other = write_vec_gz(tmp_path / "nl-other.vec.gz", words, np.random.default_rng(5))
    changed = [f"nl={other}" if arg.startswith("nl=") and arg.endswith(".vec.gz") else arg for arg in argv]
    resume = ["--output_dir", str(out), "--max_steps", "4", "--resume_from_checkpoint", "last"]
    expected = (
        r"checkpoint-2' was saved by a run of another configuration, and resuming would mix the two: "
        r"tokenizer\.lowercase_characters: False in the checkpoint, True now; inputs\.word_vectors/nl: '[0-9a-f]{64}' "
        r"in the checkpoint, '[0-9a-f]{64}' now\. Resume with the arguments of the run that saved it"
    )
    with pytest.raises(CheckpointError, match=expected):
        load_run_ner().main([*changed, *resume, "--lowercase_characters", "yes"])
    assert folder_bytes(out) == before
    results = load_run_ner().main([*argv, *resume])
    assert results["train"]["resumed_at_step"] == 2 and results["train"]["global_step"] == 4
    assert results["train"]["train_loss_steps"] == [1, 4], "the loss of steps 1-2 (from the checkpoint) is counted"


def test_resuming_with_other_languages_is_refused_before_any_data_is_loaded(finished_run, tmp_path, monkeypatch):
    from modeling_manmoe import CheckpointError

    argv, finished = finished_run
    out = shutil.copytree(finished, tmp_path / "run")
    before = folder_bytes(out)
    run_ner = load_run_ner()
    monkeypatch.setattr(
        run_ner, "load_split", lambda *args: pytest.fail("data loaded before the checkpoint was checked")
    )
    reordered = [*argv]
    start = reordered.index("--source_languages") + 1
    reordered[start : start + 3] = ["de", "en", "es"]
    expected = (r"checkpoint-2' was saved by a run of another configuration, and resuming would mix the two: "
                r"source_languages: \['en', 'de', 'es'\] in the checkpoint, \['de', 'en', 'es'\] now\.")  # fmt: skip
    with pytest.raises(CheckpointError, match=expected):
        run_ner.main([*reordered, "--output_dir", str(out), "--max_steps", "4", "--resume_from_checkpoint", "last"])
    assert folder_bytes(out) == before


def test_an_evaluated_source_language_is_not_reported_as_zero_shot(finished_run, tmp_path, caplog):
    """The finished en de es -> nl model evaluated with `--target_language en`: the roles come from the model's
    config, in the results, the log and the card."""
    from modeling_manmoe.run.model_card import build_model_card

    argv, finished = finished_run
    tests = argv[argv.index("--test_files") + 1 : argv.index("--word_vectors")]
    out = tmp_path / "eval"
    with caplog.at_level("INFO"):
        results = load_run_ner().main(["--source_languages", "de", "es", "nl", "--target_language", "en",
                                       "--model_name_or_path", str(finished), "--validation_files", *tests,
                                       "--test_files", *tests, "--do_eval", "--do_predict", "--output_dir", str(out),
                                       "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true"])  # fmt: skip
    assert results["language_roles"]["en"] == "labeled source" and results["language_roles"]["nl"] == "zero-shot target"
    assert "dev en (labeled source)" in caplog.text and "test nl (zero-shot target)" in caplog.text
    assert "--target_language en is not a zero-shot language of the model (labeled source" in caplog.text
    card = build_model_card(out)
    assert {e.metric_name for e in card.data.eval_results if e.dataset_config == "en"} >= {"F1 (en, labeled source)"}
    assert "applied zero-shot to **nl (Dutch)**" in card.text


def test_a_trained_model_given_with_do_train_is_trained_further_from_its_weights(finished_run, tmp_path):
    """--model_name_or_path with --do_train starts from the model's weights (a student from its teacher): at
    learning rate 0 the new run's weights are the model's, where a new model's are not."""
    from safetensors.torch import load_file

    argv, finished = finished_run
    zero = ["--learning_rate", "0", "--max_steps", "1", "--eval_steps", "1"]
    further = load_run_ner().main([*argv, *zero, "--model_name_or_path", str(finished),
                                   "--output_dir", str(tmp_path / "further")])  # fmt: skip
    assert further["config"]["manmoe_run_id"] != json.loads((finished / "config.json").read_text())["manmoe_run_id"]
    initial = further["data_and_vector_files"]["initial_model"]
    assert initial["name_or_path"] == str(finished) and len(initial["weights_sha256"]) == 64
    expected = load_file(finished / "model.safetensors")
    for name, folder in (("further", True), ("new", False)):
        if not folder:
            load_run_ner().main([*argv, *zero, "--seed", "7", "--output_dir", str(tmp_path / name)])
        actual = load_file(tmp_path / name / "model.safetensors")
        assert actual.keys() == expected.keys()
        same = all(torch.equal(actual[key], expected[key]) for key in expected)
        assert same is folder, name


def test_training_a_model_further_with_other_languages_is_refused(finished_run, tmp_path, monkeypatch):
    argv, finished = finished_run
    run_ner = load_run_ner()
    monkeypatch.setattr(run_ner, "load_split", lambda *args: pytest.fail("data loaded before the model was checked"))
    swapped = [*argv[: argv.index("--source_languages")], "--source_languages", "en", "de", "nl",
               "--target_language", "es", *argv[argv.index("--train_files"):]]  # fmt: skip
    message = (r"--model_name_or_path '.*run' was trained with sources \['en', 'de', 'es'\] and target \['nl'\]; "
               r"this run has --source_languages \['en', 'de', 'nl'\] and --target_language 'es'")  # fmt: skip
    with pytest.raises(ValueError, match=message):
        run_ner.main([*swapped, "--model_name_or_path", str(finished), "--output_dir", str(tmp_path / "o")])
