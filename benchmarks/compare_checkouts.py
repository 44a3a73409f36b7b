"""Compare the speed of two checkouts of the package in one process, their passes alternating.

Usage: python benchmarks/compare_checkouts.py --base DIR [--workload synthetic|conll] [--shared ../shared]
           [--rounds 12] [--batch_size 256] [--train_batches 12] [--threads N] [--synthetic_dir ...]

On a shared machine whose speed drifts by 15% within minutes, separate runs of two versions mostly measure the drift.
Here the package of the checkout `DIR` (e.g. `git worktree add /tmp/base COMMIT`; its `modeling_manmoe/` is copied to
a temporary folder and imported as `manmoe_base`, which works because the package imports itself relatively) and the
package this script imports (the working tree) build the paper configuration with the same weights, and their passes
alternate, so both see the same drift:
- prediction: the target's dev set (synthetic `nl.dev`, 500 sentences; CoNLL `ned.testa`) in file order, batches of
  `--batch_size`, each collated by its own package's `collate_word_features` (encoded once, by the working tree's
  tokenizer), under `torch.inference_mode()`, argmax over the tags; `--rounds` passes each after one warm-up;
- training: `--train_batches` labeled batches of 48 English sentences (3 sources x 16), forward and backward of the
  training loss in training mode (dropout on; the two models draw their own masks).
Prints JSON (the medians, the ratio base / working tree, the largest difference between the two models' logits) and
a one-line summary. Both models must have the same parameters (names and shapes).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers
from synthetic_workload import LANGUAGES, add_workload_arguments, workload_files

import modeling_manmoe
from modeling_manmoe.data import CONLL_NER_LABELS, read_conll
from modeling_manmoe.data.inputs import build_word_vector_inputs
from modeling_manmoe.tokenization_manmoe import collate_word_features
from modeling_manmoe.training.batching import encode_sentences

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
add_workload_arguments(parser)
parser.add_argument("--base", required=True, help="a checkout of the repository (its modeling_manmoe/ is compared)")
parser.add_argument("--rounds", type=int, default=12, help="alternating passes per measure (after one warm-up)")
parser.add_argument("--batch_size", type=int, default=256, help="sentences per prediction batch")
parser.add_argument("--train_batches", type=int, default=12, help="labeled batches of 48 timed per model")
parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
options = parser.parse_args()
base_package = Path(options.base) / "modeling_manmoe"
if not (base_package / "__init__.py").is_file():
    parser.error(
        f"--base {options.base}: no modeling_manmoe/__init__.py there (expected a checkout of this repository)"
    )
if options.rounds < 1 or options.train_batches < 1:
    parser.error("--rounds and --train_batches must be at least 1")
if options.threads:
    torch.set_num_threads(options.threads)
transformers.logging.set_verbosity_error()

copy = Path(tempfile.mkdtemp(prefix="manmoe-base-"))
shutil.copytree(base_package, copy / "manmoe_base", ignore=shutil.ignore_patterns("__pycache__"))
sys.path.insert(0, str(copy))
packages = {"base": importlib.import_module("manmoe_base"), "working_tree": modeling_manmoe}

files = workload_files(options)
target, source = "nl", "en"
dev = read_conll(files["dev"][target], target)
train = read_conll(files["train"][source], source)
if len(train) < 48 * options.train_batches:
    parser.error(f"--train_batches {options.train_batches} needs {48 * options.train_batches} English training "
                 f"sentences; the workload has {len(train)}")  # fmt: skip
tokenizer, table = build_word_vector_inputs(files["vectors"], LANGUAGES)
models = {}
for name, package in packages.items():
    config = package.ManMoeConfig(word_vocab_size=table.shape[0], word_embedding_dim=table.shape[1],
                                  char_vocab_size=tokenizer.char_vocab_size,
                                  id2label=dict(enumerate(CONLL_NER_LABELS)),
                                  label2id={label: i for i, label in enumerate(CONLL_NER_LABELS)})  # fmt: skip
    transformers.set_seed(0)
    models[name] = package.ManMoeForTokenClassification(config)
    models[name].set_word_vectors(table)
models["working_tree"].load_state_dict(models["base"].state_dict())  # strict: the same parameters

encoded_dev = encode_sentences(dev, tokenizer, target, None)
dev_batches = [
    encoded_dev[start : start + options.batch_size] for start in range(0, len(encoded_dev), options.batch_size)
]
collate = {name: package.tokenization_manmoe.collate_word_features for name, package in packages.items()}
encoded_train = encode_sentences(train, tokenizer, source, "ner_tags")
train_batches = []
for start in range(0, 48 * options.train_batches, 48):
    batch = collate_word_features(encoded_train[start : start + 48])
    batch["lang_ids"] = torch.zeros(len(batch["input_ids"]), dtype=torch.long)
    train_batches.append(batch)


def predict(name: str) -> list[torch.Tensor]:
    """The dev set's logits from model `name`, each batch collated by its own package (as users predict)."""
    with torch.inference_mode():
        return [models[name](**collate[name](items)).logits for items in dev_batches]


def train_step(model, batch) -> None:
    model(**batch).loss.backward()
    model.zero_grad(set_to_none=True)


for model in models.values():
    model.eval()
logits = {name: predict(name) for name in models}  # the warm-up pass
difference = max((a - b).abs().max().item() for a, b in zip(logits["base"], logits["working_tree"], strict=True))
prediction = {name: [] for name in models}
for _ in range(options.rounds):
    for name in models:
        started = time.perf_counter()
        [out.argmax(-1) for out in predict(name)]
        prediction[name].append(time.perf_counter() - started)
training = {name: [] for name in models}
for model in models.values():
    model.train()
    train_step(model, train_batches[0])  # warm-up
for batch in train_batches:
    for name, model in models.items():
        started = time.perf_counter()
        train_step(model, batch)
        training[name].append(time.perf_counter() - started)

predict_seconds = {name: statistics.median(times) for name, times in prediction.items()}
train_seconds = {name: statistics.median(times) for name, times in training.items()}
result = {
    "base": str(Path(options.base).resolve()), "workload": options.workload, "files": files["description"],
    "threads": torch.get_num_threads(), "dev_sentences": len(dev), "batch_size": options.batch_size,
    "rounds": options.rounds, "train_batches": options.train_batches,
    "max_logit_difference": difference,
    "prediction_seconds": {name: round(value, 4) for name, value in predict_seconds.items()},
    "prediction_sentences_per_second": {name: round(len(dev) / value, 1) for name, value in predict_seconds.items()},
    "prediction_speedup": round(predict_seconds["base"] / predict_seconds["working_tree"], 3),
    "training_batch_seconds": {name: round(value, 4) for name, value in train_seconds.items()},
    "training_speedup": round(train_seconds["base"] / train_seconds["working_tree"], 3),
}  # fmt: skip
shutil.rmtree(copy, ignore_errors=True)
print(json.dumps(result))
rates = result["prediction_sentences_per_second"]
print(f"compare ({options.workload}, {result['threads']} threads, median of {options.rounds} alternating passes): "
      f"prediction {rates['base']:.0f} (base) vs {rates['working_tree']:.0f} (working tree) sentences/s = "
      f"{result['prediction_speedup']:.3f}x; training forward+backward of 48 labeled sentences "
      f"{train_seconds['base'] * 1000:.1f} vs {train_seconds['working_tree'] * 1000:.1f} ms = "
      f"{result['training_speedup']:.3f}x; largest logit difference {difference:.2g}")  # fmt: skip
