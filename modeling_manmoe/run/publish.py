"""Publishing a finished run on the Hugging Face Hub: stage the exact folder to upload, then upload it.

`stage_hub_folder` writes `RUN_DIR/hub_upload/`: the model and tokenizer as `save_pretrained` writes them (weights
as safetensors, configs, vocabulary, and the package's code files the configs point to with `auto_map`, so the
Hub repository loads with `trust_remote_code=True`), the run's `all_results.json`, the gate picture `gates.png` and
the model card `README.md` built from `all_results.json` (`modeling_manmoe.run.model_card`). Nothing else: no
checkpoints, optimizer states, predictions or pickled training arguments. `push_hub_folder` creates the repository
if needed and uploads that folder as it is, in one commit.

No Hub token is ever uploaded: every secret the run knows (`modeling_manmoe.run.secrets.known_secrets`) is replaced
by `<SECRET>` in the staged text files, and both functions refuse a folder in which one of them is still found, in any
file, binary files included.

The example scripts do both at the end of a run given `--push_to_hub [--hub_model_id USER/NAME]`:

    python examples/run_ner.py ... --output_dir runs/ner-nl --push_to_hub --hub_model_id me/manmoe-conll-nl
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .gate_picture import gate_weights, plot_gate_weights
from .model_card import write_model_card
from .secrets import find_secrets_in_files, known_secrets, redact_files

logger = logging.getLogger(__name__)

HUB_FOLDER_NAME = "hub_upload"
PICTURE_NAME = "gates.png"


def hub_token_or_raise(token: str | None) -> str:
    """The token that will be used to push (`token`, else the one `hf auth login` / `HF_TOKEN` stored). Raises a
    clear `ValueError` before any training when there is none, rather than failing at the end of a long run."""
    from huggingface_hub import get_token

    found = token or get_token()
    if not found:
        raise ValueError(
            "--push_to_hub needs a Hugging Face token with write access: run `hf auth login`, set HF_TOKEN, or give "
            "--hub_token"
        )
    return found


def stage_hub_folder(
    run_dir: str | os.PathLike[str],
    model,
    tokenizer,
    *,
    model_id: str,
    sentences: dict[str, list[list[str]]] | None = None,
    tags: dict[str, list[list[str]]] | None = None,
    picture_title: str | None = None,
    license: str = "mit",
    secrets: Sequence[str] | None = None,
) -> Path:
    """Write `run_dir/hub_upload/`, exactly what `push_hub_folder` uploads, and return its path.

    Args:
        run_dir: the finished run folder; its `all_results.json` must be complete (see `load_run_results`).
        model, tokenizer: the trained MAN-MoE head and its `ManMoeTokenizer`, saved with `save_pretrained`.
        model_id: the Hub repository id, used in the card's title and loading code.
        sentences, tags: per language, the sentences (and gold tags, for a tagger) the gate picture is computed
            on (see `gate_picture.gate_sentences`); without sentences, or for a model with no gates, no picture is
            written.
        picture_title: the picture's title.
        license: the card's licence identifier.
        secrets: the values to keep out of the folder (default: `known_secrets()`, the environment's and the stored
            Hub tokens); they are replaced by `<SECRET>` in its `.json`, `.md`, `.txt` and `.py` files.

    The folder is built beside its final place and renamed into it, so an interrupted call never leaves a
    half-written `hub_upload/` behind; an older one is replaced.

    Raises:
        DataFormatError: `all_results.json` is missing or incomplete (nothing is written).
        ValueError: a secret is still found in a staged file after redaction (nothing is written).
    """
    run_dir = Path(run_dir)
    final = run_dir / HUB_FOLDER_NAME
    staging = Path(tempfile.mkdtemp(prefix=f".{HUB_FOLDER_NAME}.", dir=run_dir))
    try:
        staging.chmod(0o755)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        shutil.copyfile(run_dir / "all_results.json", staging / "all_results.json")
        picture = None
        if sentences:
            weights = gate_weights(model, tokenizer, sentences, tags)
            if weights["gates"]:
                weights["target_language"] = json.loads((run_dir / "all_results.json").read_text())["target_language"]
                plot_gate_weights(weights, staging / PICTURE_NAME, title=picture_title)
                picture = PICTURE_NAME
        write_model_card(staging, staging / "README.md", picture=picture, license=license, model_id=model_id)
        secrets = known_secrets() if secrets is None else list(secrets)
        redact_files(staging, secrets)
        refuse_folder_with_secrets(staging, secrets, final)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("staged %s for %s: %s", final, model_id, ", ".join(sorted(p.name for p in final.iterdir())))
    return final


def refuse_folder_with_secrets(
    folder: str | os.PathLike[str], secrets: Sequence[str], shown_as: str | os.PathLike[str] | None = None
) -> None:
    """Raise a `ValueError` naming the files of `folder` (as if it were `shown_as`) whose bytes still contain one of
    `secrets`; the message never holds a secret."""
    leaked = find_secrets_in_files(folder, secrets)
    if leaked:
        names = ", ".join(path.relative_to(folder).as_posix() for path in leaked)
        raise ValueError(
            f"{shown_as or folder}: a Hub token is still found in {names} (after replacing every known token by "
            "<SECRET> in the .json, .md, .txt and .py files); refusing to push. Remove the token from these files, "
            "or from the run's files they are made from, and stage the folder again"
        )


def push_hub_folder(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload MAN-MoE model, tokenizer, code, card and gate picture",
    secrets: Sequence[str] | None = None,
):
    """Create the model repository `repo_id` if it does not exist and upload `folder` (from `stage_hub_folder`) to
    it in one commit. Returns the `huggingface_hub.CommitInfo`.

    Refuses (`ValueError`, before contacting the Hub) a folder in which a file's bytes contain one of `secrets`
    (default: `token` and `known_secrets()`)."""
    from huggingface_hub import HfApi

    refuse_folder_with_secrets(folder, known_secrets(extra=[token]) if secrets is None else secrets)
    api = HfApi(token=token)
    repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        repo_id=repo.repo_id, folder_path=folder, commit_message=commit_message, revision=revision, repo_type="model"
    )
    logger.info("pushed %s to %s", folder, getattr(info, "commit_url", repo.repo_id))
    return info
