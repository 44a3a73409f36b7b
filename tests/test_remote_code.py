"""A saved model loads through `trust_remote_code` in a fresh process where `modeling_manmoe` cannot be imported.

The folder carries the model's flat code files, not the `kernels` subpackage, so there the model runs the plain torch
kernels: its outputs equal, bit for bit, those of the same weights with `kernels="torch"`."""

import subprocess
import sys
import textwrap

import torch

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification, ManMoeTokenizer
from tests.conftest import random_batch

CHILD = textwrap.dedent(
    """
    import sys

    class HidePackage:
        def find_spec(self, name, path=None, target=None):
            if name == "modeling_manmoe" or name.startswith("modeling_manmoe."):
                raise ImportError(f"{name} is hidden for this test")
            return None

    sys.meta_path.insert(0, HidePackage())
    try:
        import modeling_manmoe  # noqa: F401
        raise SystemExit("the package is still importable")
    except ImportError:
        pass

    import torch
    from transformers import AutoModel, AutoModelForTokenClassification, AutoTokenizer

    folder = sys.argv[1]
    inputs = torch.load(folder + "/inputs.pt", weights_only=True)
    expected = torch.load(folder + "/expected.pt", weights_only=True)
    model = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__name__ == "ManMoeForTokenClassification", type(model)
    assert model.manmoe.shared_extractor.encoder.kernels is None, "the fast kernels are not in the folder"
    assert torch.equal(model(**inputs).logits, expected["logits"]), "logits differ"
    base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(base).__name__ == "ManMoeModel", type(base)
    hidden = base(**{k: v for k, v in inputs.items() if k not in ("labels", "lang_ids")}).last_hidden_state
    assert torch.equal(hidden, expected["hidden"]), "base features differ"
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    assert type(tokenizer).__name__ == "ManMoeTokenizer", type(tokenizer)
    assert tokenizer(["a", "B"], language="en", is_split_into_words=True)["input_ids"].tolist() == [[2, 3]]
    print("REMOTE-OK")
    """
)


def test_remote_code_load_without_the_package(tiny_config, tmp_path):
    torch.manual_seed(0)
    model = ManMoeForTokenClassification(tiny_config).eval()
    model.set_word_vectors(torch.randn(tiny_config.word_vocab_size, tiny_config.word_embedding_dim))
    batch = random_batch(tiny_config)
    batch.pop("labels")
    tokenizer = ManMoeTokenizer(
        vocabularies={"en": ["a", "b"], "de": ["c"], "es": ["d"], "nl": ["e"]},
        characters=list("abcde"),
        languages=tiny_config.all_languages,
    )
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    torch.save(batch, tmp_path / "inputs.pt")
    plain = ManMoeForTokenClassification(ManMoeConfig(**{**tiny_config.to_dict(), "kernels": "torch"})).eval()
    plain.load_state_dict(model.state_dict())
    expected = {"logits": plain(**batch).logits, "hidden": plain.manmoe(**batch).last_hidden_state}
    torch.testing.assert_close(expected["logits"], model(**batch).logits, rtol=1e-5, atol=1e-5)
    torch.save({k: v.detach() for k, v in expected.items()}, tmp_path / "expected.pt")
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "REMOTE-OK" in result.stdout, result.stdout + result.stderr


INSTALLED_CHILD = textwrap.dedent(
    """
    import sys

    import torch
    from transformers import AutoModelForTokenClassification

    folder = sys.argv[1]
    inputs = torch.load(folder + "/inputs.pt", weights_only=True)
    expected = torch.load(folder + "/expected.pt", weights_only=True)
    model = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    kernels = model.manmoe.shared_extractor.encoder.kernels
    assert kernels is not None and kernels.__name__ == "modeling_manmoe.kernels", kernels
    assert torch.equal(model(**inputs).logits, expected["logits"]), "logits differ"
    print("REMOTE-FAST-OK")
    """
)


def test_remote_code_uses_the_installed_packages_kernels(tiny_config, tmp_path):
    """A folder loaded through its own code files (the package installed but not imported first, so the Auto classes
    do not know it) runs the installed package's fast kernels: the package model's logits, bit for bit."""
    torch.manual_seed(0)
    model = ManMoeForTokenClassification(tiny_config).eval()
    model.set_word_vectors(torch.randn(tiny_config.word_vocab_size, tiny_config.word_embedding_dim))
    batch = random_batch(tiny_config)
    batch.pop("labels")
    model.save_pretrained(tmp_path)
    torch.save(batch, tmp_path / "inputs.pt")
    with torch.no_grad():
        torch.save({"logits": model(**batch).logits}, tmp_path / "expected.pt")
    # not run from the folder itself: its `modeling_manmoe.py` would shadow the package on sys.path
    result = subprocess.run([sys.executable, "-c", INSTALLED_CHILD, str(tmp_path)], cwd=tmp_path.parent,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0 and "REMOTE-FAST-OK" in result.stdout, result.stdout + result.stderr
