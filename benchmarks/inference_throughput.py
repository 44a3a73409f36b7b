"""Inference throughput of the paper configuration on the target's dev set: sentences/s and tokens/s; peak RSS.

Usage: python benchmarks/inference_throughput.py [--workload synthetic|conll] [--shared ../shared]
           [--batch_size 256] [--repeats 5] [--threads N] [--bf16] [--sort_by_length] [--model_dir DIR]
           [--split dev|test] [--count_flops] [--device cpu|cuda] [--word_vocabulary corpus|file]
           [--dev_sentences 500 --vocab_size 20000 ...]

Data: the Dutch (target) dev set: synthetic `nl.dev` (500 sentences), or the whole CoNLL-2002 `ned.testa` (2,895
sentences) with `--workload conll` (`--split test`: `ned.testb`, 5,195 sentences). Model: the paper configuration
with random weights (speed does not depend on them), or a trained one from `--model_dir` (its own tokenizer and word
table). The random model's word table holds, as the original implementation's vocabulary, the vector files' words
that the workload's train and dev files use (`--word_vocabulary file`: every word of the files). As users predict: the sentences are encoded once by the tokenizer (`encode_sentences`, what
`ManMoeTrainer.encode_dataset` does in word-vector mode), then collated in batches of `--batch_size` in file order
(`--sort_by_length`: longest first, the order in which `ManMoeTrainer.evaluate` and `predict` batch them) and run
under `torch.inference_mode()` (`--bf16`: inside `torch.autocast("cpu", dtype=torch.bfloat16)`), argmax over the
tags, one list of tag ids per sentence. One warm-up pass, then `--repeats` timed passes: the median of the
prediction time (collate + forward + argmax) gives sentences/s and tokens/s; `with_tokenization` adds the encoding.
The predictions' entity-level precision, recall and F1 against the file's gold tags (`seqeval`, conlleval mode) are
reported too: meaningful with a trained `--model_dir`, where a run with and one without `--bf16` compare the two
precisions' F1.
`--count_flops`: one more pass under `torch.utils.flop_counter.FlopCounterMode` counts the floating-point operations
of the prediction (per top-level module), and a large float32 matrix product times what this machine's cores reach
at the same thread count: the compute floor of the pass (its operations at that rate) and the sentences/s it caps.
`--device cuda`: the model and each collated batch on the GPU (the BiLSTMs then run cuDNN's LSTM); the tags come back
to the CPU once per batch; the JSON adds the device, its peak allocated memory and the TF32 settings.
Prints JSON and a one-line summary. Besides the peak RSS, `rss_after_imports_mib` is the peak before any data is read:
the share of the imported libraries (torch, transformers, datasets); `rss_file_mib_at_end` is the file-backed part of
the resident set at the end (the libraries' pages, which the page cache's state moved by ~70 MiB on one machine:
benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch
import transformers
from compute_floor import count_flops, floor_report, floor_summary
from memory import peak_rss_mib, resident_file_mib
from synthetic_workload import LANGUAGES, add_workload_arguments, vocabulary_corpus, workload_files

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification
from modeling_manmoe.data import CONLL_NER_LABELS, conll_file_path, read_conll
from modeling_manmoe.data.inputs import build_word_vector_inputs
from modeling_manmoe.tokenization_manmoe import collate_word_features
from modeling_manmoe.training.batching import EncodedDataset, encode_sentences
from modeling_manmoe.training.metrics import entity_scores
from modeling_manmoe.training.trainer import longest_first

# The peak so far, before any data: what importing torch, transformers, datasets and the package costs in this
# environment (part of the peak RSS below, and not under the package's control).
imports_rss_mib = peak_rss_mib()

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
add_workload_arguments(parser)
parser.add_argument("--batch_size", type=int, default=256, help="sentences per forward pass")
parser.add_argument("--repeats", type=int, default=5, help="timed passes after one warm-up pass; the median is quoted")
parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
parser.add_argument("--bf16", action="store_true", help="forward passes under torch.autocast(cpu, bfloat16)")
parser.add_argument(
    "--sort_by_length",
    action="store_true",
    help="batch the sentences longest first, as ManMoeTrainer.evaluate / predict do (fewer BiLSTM steps)",
)
parser.add_argument(
    "--model_dir", default=None, help="a trained model folder (model + tokenizer) instead of random weights"
)
parser.add_argument("--split", choices=["dev", "test"], default="dev", help="test: ned.testb (--workload conll only)")
parser.add_argument("--count_flops", action="store_true", help="count the pass's operations; time a large matmul")
parser.add_argument(
    "--device", default="cpu", help="where the model runs: cpu (the issue's figures) or an accelerator, e.g. cuda"
)
parser.add_argument(
    "--kernels",
    choices=["fast", "torch"],
    default="fast",
    help="ManMoeConfig.kernels: the hand-written CPU kernels or plain torch modules (the same model)",
)
options = parser.parse_args()
if options.count_flops and options.device != "cpu":
    parser.error("--count_flops compares with this CPU's matmul rate: use it with --device cpu")
if options.split == "test" and options.workload != "conll":
    parser.error("--split test needs --workload conll (the synthetic workload has no test set)")
if options.threads:
    torch.set_num_threads(options.threads)
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
target = "nl"
device = torch.device(options.device)

files = workload_files(options)
if options.split == "test":
    files["dev"][target] = conll_file_path(f"{options.shared}/data", target, "test")
dev = read_conll(files["dev"][target], target)
vocabulary = None if options.model_dir else vocabulary_corpus(options, files, read={"dev": {target: dev}})
started = time.perf_counter()
if options.model_dir:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(options.model_dir, trust_remote_code=True)
    model = AutoModelForTokenClassification.from_pretrained(
        options.model_dir, trust_remote_code=True, kernels=options.kernels
    )
else:  # the character vocabulary is the vector files' (no training corpus read): the same speed
    tokenizer, table = build_word_vector_inputs(files["vectors"], LANGUAGES, vocabulary_corpus=vocabulary)
    config = ManMoeConfig(word_vocab_size=table.shape[0], word_embedding_dim=table.shape[1],
                          char_vocab_size=tokenizer.char_vocab_size, id2label=dict(enumerate(CONLL_NER_LABELS)),
                          label2id={label: i for i, label in enumerate(CONLL_NER_LABELS)})  # fmt: skip
    transformers.set_seed(0)
    model = ManMoeForTokenClassification(config)
    model.set_word_vectors(table)
model.to(device).eval()
load_seconds = time.perf_counter() - started
tokens = sum(len(words) for words in dev["tokens"])
autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if options.bf16 else contextlib.nullcontext


def predict(items: list[dict]) -> list[list[int]]:
    """Tag ids per sentence, in the input order."""
    order = longest_first(EncodedDataset(items, target)) if options.sort_by_length else list(range(len(items)))
    predictions: list = [None] * len(items)
    with torch.inference_mode(), autocast():
        for start in range(0, len(order), options.batch_size):
            rows = order[start : start + options.batch_size]
            batch = {key: value.to(device) for key, value in collate_word_features([items[i] for i in rows]).items()}
            tags = model(**batch).logits.argmax(-1).tolist()  # one transfer (and synchronisation) per batch
            for row, i in enumerate(rows):
                predictions[i] = tags[row][: len(items[i]["input_ids"])]
    return predictions


timings = []
for repeat in range(options.repeats + 1):  # pass 0 warms up
    started = time.perf_counter()
    items = encode_sentences(dev, tokenizer, target, None)
    encoded = time.perf_counter()
    predictions = predict(items)
    finished = time.perf_counter()
    if repeat:
        timings.append({"seconds": finished - encoded, "with_tokenization_seconds": finished - started})
assert len(predictions) == len(dev) and all(len(p) == len(w) for p, w in zip(predictions, dev["tokens"], strict=True))

gold_names = dev.features["ner_tags"].feature.names
gold = [[gold_names[tag] for tag in tags] for tags in dev["ner_tags"]]
predicted = [[model.config.id2label[tag] for tag in tags] for tags in predictions]
scores = {name: round(value, 4) for name, value in entity_scores(gold, predicted).items()}
seconds = statistics.median(t["seconds"] for t in timings)
with_tokenization = statistics.median(t["with_tokenization_seconds"] for t in timings)
peak_mib = peak_rss_mib()
result = {"workload": options.workload, "files": files["description"], "split": options.split,
          "dev_file": str(files["dev"][target]),
          "sentences": len(dev), "tokens": tokens, "precision": "bf16" if options.bf16 else "float32",
          "threads": torch.get_num_threads(), "batch_size": options.batch_size,
          "sort_by_length": options.sort_by_length,
          "model": options.model_dir or "random weights", "trainable_parameters": model.num_trainable_parameters(),
          "word_vocabulary": "the model's" if options.model_dir else options.word_vocabulary,
          "word_table_rows": model.config.word_vocab_size,
          "load_seconds": round(load_seconds, 2), "repeats": [{k: round(v, 4) for k, v in t.items()} for t in timings],
          "seconds": round(seconds, 4), "sentences_per_second": round(len(dev) / seconds, 1),
          "tokens_per_second": round(tokens / seconds, 1), "with_tokenization_seconds": round(with_tokenization, 4),
          "with_tokenization_sentences_per_second": round(len(dev) / with_tokenization, 1),
          "entity_scores": scores, "peak_rss_mib": round(peak_mib, 1),
          "rss_after_imports_mib": round(imports_rss_mib, 1), "rss_file_mib_at_end": resident_file_mib(),
          "device": str(device)}  # fmt: skip
if device.type == "cuda":
    result["device_name"] = torch.cuda.get_device_name(device)
    result["peak_device_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    result["tf32"] = {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}
if options.count_flops:
    gflop, by_module = count_flops(lambda: predict(items), type(model).__name__)
    result["compute_floor"] = floor_report(gflop, by_module, seconds, len(dev))
print(json.dumps(result))
print(f"inference ({options.workload}, {result['precision']}, {device}, {result['threads']} threads, batch {options.batch_size}, "
      f"median of {options.repeats}): {len(dev)} sentences in {seconds:.3f} s = {result['sentences_per_second']:.0f} "
      f"sentences/s, {result['tokens_per_second']:.0f} tokens/s ({with_tokenization:.3f} s with tokenization), "
      f"peak RSS {peak_mib:.0f} MiB (imports alone {imports_rss_mib:.0f})" + (f", entity F1 {scores['f1']:.2f}" if options.model_dir else ""))  # fmt: skip
if options.count_flops:
    print(floor_summary(result["compute_floor"], "sentences"))
