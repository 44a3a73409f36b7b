"""`--push_to_hub` in the example scripts, offline: everything up to the upload call. The Hub is replaced by a
recorder of `HfApi.create_repo` / `HfApi.upload_folder`; the staged folder must hold exactly what would be pushed,
load as a model, and carry a card that `ModelCard.load` parses with the run's numbers."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.examples.test_run_classification import load_run_classification
from tests.examples.test_run_classification import write_fixtures as write_review_fixtures
from tests.examples.test_run_ner import load_run_ner
from tests.examples.test_run_ner import write_fixtures as write_conll_fixtures

CODE_FILES = {  # the model's flat modules; the `kernels` subpackage is not carried (`kernel_switch.py`)
    "char_cnn.py",
    "configuration_manmoe.py",
    "discriminator.py",
    "encoder_inputs.py",
    "errors.py",
    "extractors.py",
    "input_embeddings.py",
    "kernel_switch.py",
    "mixture_of_experts.py",
    "modeling_manmoe.py",
    "predictors.py",
    "real_words.py",
    "representation_transformation.py",
    "tokenization_manmoe.py",
    "word_vector_inputs.py",
}
MODEL_FILES = {"config.json", "model.safetensors", "tokenizer_config.json", "manmoe_vocab.json"}
RUN_FILES = {"all_results.json", "gates.png", "README.md"}


@pytest.fixture
def hub(monkeypatch):
    """A fake Hub: records create_repo / upload_folder calls (and what the folder held at upload time)."""
    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token_for_tests")

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        return SimpleNamespace(repo_id=repo_id)

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        files = sorted(p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file())
        calls.append(("upload_folder", repo_id, {"folder_path": folder_path, "files": files, **kwargs}))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/0")

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def ner_argv(tmp_path: Path, out: Path) -> list[str]:
    files, vectors = write_conll_fixtures(tmp_path)
    return ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
            "--validation_files", *files, "--test_files", *files, "--word_vectors", *vectors, "--output_dir",
            str(out), "--do_train", "--do_eval", "--do_predict", "--max_steps", "3", "--eval_steps", "2",
            "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip


def test_run_ner_push_to_hub_stages_exactly_what_is_uploaded(tmp_path, hub):
    from huggingface_hub import ModelCard
    from matplotlib.image import imread
    from transformers import AutoModelForTokenClassification, pipeline

    out = tmp_path / "run"
    argv = ner_argv(tmp_path, out) + ["--push_to_hub", "--hub_model_id", "me/manmoe-conll-nl", "--hub_private_repo",
                                      "true", "--hub_token", "hf_secret_from_the_command_line"]  # fmt: skip
    results = load_run_ner().main(argv)
    folder = out / "hub_upload"
    assert [call[0] for call in hub] == ["create_repo", "upload_folder"]
    assert hub[0][1] == "me/manmoe-conll-nl" and hub[0][2]["private"] is True
    upload = hub[1][2]
    assert hub[1][1] == "me/manmoe-conll-nl" and Path(upload["folder_path"]) == folder
    # exactly: weights (safetensors), configs, vocabulary, remote code (with the pipeline), results, picture, card
    assert set(upload["files"]) == MODEL_FILES | CODE_FILES | {"pipeline_manmoe.py"} | RUN_FILES
    assert not list(out.glob(".hub_upload.*")), "no staging folder left behind"
    assert checkpoints_exist(out), "the run's own checkpoints stay in the run folder, unpushed"
    # the card parses, and its model-index numbers are the run's
    card = ModelCard.load(folder / "README.md")
    f1 = {(r.dataset_config, r.dataset_split): r.metric_value for r in card.data.eval_results if r.metric_type == "f1"}
    assert f1 == {(lang, "test"): scores["f1"] for lang, scores in results["test"].items()} | {
        (lang, "validation"): scores["f1"] for lang, scores in results["dev"].items()
    }
    assert "me/manmoe-conll-nl" in card.text and "](gates.png)" in card.text
    assert json.loads((folder / "all_results.json").read_text()) == json.loads((out / "all_results.json").read_text())
    assert results["training_arguments"]["push_to_hub"] is True, "recorded as given on the command line"
    for path in (out / "all_results.json", folder / "README.md"):
        text = path.read_text(encoding="utf-8")
        assert "hf_secret_from_the_command_line" not in text and "--hub_token <HUB_TOKEN>" in text, path
    picture = imread(folder / "gates.png")
    assert picture.ndim == 3 and picture.shape[0] > 100
    # what would be pushed is the run's final model, and loads on its own with the remote-code pipeline
    staged = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True).state_dict()
    final = AutoModelForTokenClassification.from_pretrained(out, trust_remote_code=True).state_dict()
    assert staged.keys() == final.keys() and all(torch.equal(staged[k], final[k]) for k in staged)
    tagger = pipeline("token-classification", model=str(folder), trust_remote_code=True)
    assert isinstance(tagger("Piet woont in Amsterdam ."), list)


def checkpoints_exist(out: Path) -> bool:
    return any(p.name.startswith("checkpoint-") for p in out.iterdir())


def test_push_to_hub_without_a_token_fails_before_training(tmp_path, hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no stored token either
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="--push_to_hub needs a Hugging Face token"):
        load_run_ner().main(ner_argv(tmp_path, out) + ["--push_to_hub"])
    assert not (out / "all_results.json").exists() and not hub


def test_push_to_hub_without_hub_model_id_uses_the_token_owner_and_the_folder_name(tmp_path, hub, monkeypatch):
    from huggingface_hub import HfApi, ModelCard

    monkeypatch.setattr(HfApi, "whoami", lambda self, *args, **kwargs: {"name": "someone"})
    out = tmp_path / "manmoe-sentiment-ja"
    files, vectors = write_review_fixtures(tmp_path)
    argv = ["--source_languages", "en", "de", "fr", "--target_language", "ja", "--train_files", *files,
            "--test_files", *files, "--word_vectors", *vectors, "--output_dir", str(out), "--do_train",
            "--do_predict", "--max_steps", "2", "--eval_steps", "2", "--validation_fraction", "0.25",
            "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true",
            "--push_to_hub"]  # fmt: skip
    results = load_run_classification().main(argv)
    assert hub[0][2]["private"] is None and hub[1][1] == "someone/manmoe-sentiment-ja"
    # a classifier uses transformers' own text-classification pipeline: no pipeline file
    assert set(hub[1][2]["files"]) == MODEL_FILES | CODE_FILES | RUN_FILES
    card = ModelCard.load(out / "hub_upload" / "README.md")
    accuracy = {r.dataset_config: r.metric_value for r in card.data.eval_results if r.dataset_split == "test"}
    assert accuracy == {lang: scores["accuracy"] for lang, scores in results["test"].items()}
