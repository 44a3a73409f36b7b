"""A Hub token never reaches a run's files: `modeling_manmoe.run.secrets`, and `examples/run_ner.py` given a fake
token under every spelling argparse accepts (and in the environment), with every output file grepped as bytes."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from types import SimpleNamespace

import pytest

from modeling_manmoe.run.secrets import (
    SECRET_PLACEHOLDER,
    find_secrets_in_files,
    known_secrets,
    redact,
    redact_data,
    redact_files,
)
from modeling_manmoe.run.setup import redact_secrets
from tests.examples.test_push_to_hub import hub  # noqa: F401 (the fake Hub fixture)
from tests.examples.test_run_ner import load_run_ner, write_fixtures

# every way argparse (HfArgumentParser, allow_abbrev) accepts `--hub_token` on run_ner.py's command line
SPELLINGS = {
    "hub_token": lambda token: ["--hub_token", token],
    "hub_token=": lambda token: [f"--hub_token={token}"],
    "hub-token": lambda token: ["--hub-token", token],
    "hub-token=": lambda token: [f"--hub-token={token}"],
    "hub_tok": lambda token: ["--hub_tok", token],
    "hub_tok=": lambda token: [f"--hub_tok={token}"],
    "hub-to": lambda token: ["--hub-to", token],
    "hub_t=": lambda token: [f"--hub_t={token}"],
}


def fake_token() -> str:
    return "hf_" + "".join(random.choices(string.ascii_letters, k=30))


@pytest.fixture
def no_stored_token(monkeypatch):
    """No token from the environment or from `hf auth login`: the test decides every secret the run knows."""
    import huggingface_hub

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)


def ner_argv(tmp_path: Path, out: Path) -> list[str]:
    files, vectors = write_fixtures(tmp_path)
    return ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
            "--validation_files", *files, "--test_files", *files, "--word_vectors", *vectors,
            "--output_dir", str(out), "--do_train", "--do_eval", "--do_predict", "--max_steps", "2",
            "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip


def files_holding(folder: Path, token: str) -> list[str]:
    """Every file under `folder` (recursively, as bytes) that contains `token`."""
    return [p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*")) if p.is_file()
            and token.encode() in p.read_bytes()]  # fmt: skip


def test_known_secrets_take_the_parsed_token_and_the_environment(no_stored_token, monkeypatch):
    token, environment = fake_token(), fake_token()
    monkeypatch.setenv("HF_TOKEN", environment)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "short")  # under 8 characters: not scrubbed
    assert known_secrets(SimpleNamespace(hub_token=token)) == sorted([token, environment])
    assert known_secrets(None, extra=[None, token + "x"]) == [token + "x", environment]
    monkeypatch.delenv("HF_TOKEN")
    assert known_secrets(SimpleNamespace(hub_token=None)) == []


def test_redact_replaces_every_occurrence_longest_first():
    assert redact("a SECRETLONG b SECRET", ["SECRET", "SECRETLONG"]) == "a <SECRET> b <SECRET>"
    data = {"command": "--hub_tok abcdefgh", "list": ["x abcdefgh", 3, None], "abcdefgh": (1.5, "abcdefgh")}
    assert redact_data(data, ["abcdefgh"]) == {"command": "--hub_tok <SECRET>", "list": ["x <SECRET>", 3, None],
                                               "<SECRET>": (1.5, "<SECRET>")}  # fmt: skip


def test_redact_secrets_hides_token_options_by_name_also_with_dashes():
    command = ["python", "x.py", "--hub-token", "A", "--hub_token=B", "--hub-token=C", "--seed", "1"]
    assert redact_secrets(command) == ["python", "x.py", "--hub-token", "<HUB_TOKEN>", "--hub_token=<HUB_TOKEN>",
                                       "--hub-token=<HUB_TOKEN>", "--seed", "1"]  # fmt: skip


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_a_token_in_any_spelling_reaches_no_output_file(spelling, tmp_path, no_stored_token):
    from transformers import HfArgumentParser

    from modeling_manmoe.training import ManMoeTrainingArguments

    token, out = fake_token(), tmp_path / "run"
    parsed = HfArgumentParser((ManMoeTrainingArguments,)).parse_args_into_dataclasses(
        args=[*SPELLINGS[spelling](token), "--output_dir", str(out)], look_for_args_file=False
    )[0]
    assert parsed.hub_token == token, "argparse reads this spelling as --hub_token"
    results = load_run_ner().main(ner_argv(tmp_path, out) + SPELLINGS[spelling](token))
    assert list(out.rglob("training_args.bin")), "the pickled training arguments are among the files grepped"
    assert files_holding(out, token) == []
    assert token not in json.dumps(results)
    assert "<SECRET>" in results["command"] or "<HUB_TOKEN>" in results["command"]


@pytest.mark.parametrize("variable", ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"])
def test_a_token_in_the_environment_reaches_no_output_file(variable, tmp_path, no_stored_token, monkeypatch):
    token, out = fake_token(), tmp_path / "run"
    monkeypatch.setenv(variable, token)
    load_run_ner().main(ner_argv(tmp_path, out))
    assert files_holding(out, token) == []


def test_push_to_hub_with_an_abbreviated_token_option_uploads_no_token(tmp_path, hub):  # noqa: F811
    token, out = fake_token(), tmp_path / "run"
    argv = ner_argv(tmp_path, out) + ["--push_to_hub", "--hub_model_id", "me/manmoe-conll-nl", f"--hub-tok={token}"]
    results = load_run_ner().main(argv)
    assert [call[0] for call in hub] == ["create_repo", "upload_folder"], "pushed once, with the abbreviated token"
    assert "--hub-tok=<SECRET>" in results["command"]
    assert (out / "hub_upload" / "README.md").is_file()
    assert files_holding(out, token) == [] and files_holding(out, "hf_fake_token_for_tests") == []


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """One tiny run_ner.py run (no token): a model, tokenizer and results to stage."""
    folder = tmp_path_factory.mktemp("trained")
    load_run_ner().main(ner_argv(folder, folder / "run"))
    return folder / "run"


def test_staging_scrubs_a_token_from_every_staged_file(trained_run, tmp_path, no_stored_token, monkeypatch):
    """An `all_results.json` that holds a token (e.g. written by another tool) is staged with the token replaced in
    the copied results and in the card made from them, as are the environment's tokens."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from modeling_manmoe.run.publish import stage_hub_folder

    token, environment = fake_token(), fake_token()
    monkeypatch.setenv("HF_TOKEN", environment)
    results = json.loads((trained_run / "all_results.json").read_text())
    results["command"] += f" --hub_tok {token} --note {environment}"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "all_results.json").write_text(json.dumps(results), encoding="utf-8")
    model = AutoModelForTokenClassification.from_pretrained(trained_run, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(trained_run, trust_remote_code=True)
    secrets = known_secrets(SimpleNamespace(hub_token=token))  # as publish_run gives them
    folder = stage_hub_folder(run_dir, model, tokenizer, model_id="me/x", secrets=secrets)
    staged = sorted(p.name for p in folder.iterdir())
    assert {"README.md", "all_results.json", "config.json", "model.safetensors"} <= set(staged)
    assert files_holding(folder, token) == [] and files_holding(folder, environment) == []
    assert f"--hub_tok {SECRET_PLACEHOLDER} --note {SECRET_PLACEHOLDER}" in (folder / "README.md").read_text()
    assert f"--hub_tok {SECRET_PLACEHOLDER}" in json.loads((folder / "all_results.json").read_text())["command"]


def test_push_refuses_a_folder_where_a_token_remains_in_any_file(tmp_path, hub):  # noqa: F811
    from modeling_manmoe.run.publish import push_hub_folder

    token = fake_token()
    folder = tmp_path / "hub_upload"
    folder.mkdir()
    (folder / "README.md").write_text("# a model\n", encoding="utf-8")
    (folder / "weights.bin").write_bytes(b"\x00\x01" + token.encode() + b"\xff")
    with pytest.raises(ValueError, match=r"still found in weights\.bin.*refusing to push") as refused:
        push_hub_folder(folder, "me/x", token=token)
    assert token not in str(refused.value) and not hub, "refused before any call to the Hub"
    (folder / "weights.bin").write_bytes(b"\x00\x01")
    push_hub_folder(folder, "me/x", token=token)
    assert [call[0] for call in hub] == ["create_repo", "upload_folder"]


def test_redact_files_and_find_secrets_in_files(tmp_path):
    token = fake_token()
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.json").write_text(json.dumps({"t": token + '"'}), encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_bytes(f"x {token}\r\n".encode())
    (tmp_path / "c.bin").write_bytes(b"\x00" * ((1 << 20) - 5) + token.encode())  # across two chunks
    assert find_secrets_in_files(tmp_path, [token]) == [tmp_path / "a.json", tmp_path / "c.bin", tmp_path / "sub" / "b.md"]  # fmt: skip
    assert redact_files(tmp_path, [token]) == [tmp_path / "a.json", tmp_path / "sub" / "b.md"]
    assert (tmp_path / "sub" / "b.md").read_bytes() == b"x <SECRET>\r\n", "line endings kept"
    assert find_secrets_in_files(tmp_path, [token]) == [tmp_path / "c.bin"]
