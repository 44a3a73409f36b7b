"""Training throughput of the paper configuration: labeled sentences/s and iterations/s, steady state; peak RSS.

Usage: python benchmarks/train_throughput.py [--workload synthetic|conll] [--shared ../shared] [--steps 30]
           [--warmup 5] [--repeats 3] [--threads N] [--bf16] [--count_flops] [--word_vocabulary corpus|file]
           [--train_sentences 2000 --vocab_size 20000 ...]

Paper configuration: word vectors + CharCNN, hidden 200, en/de/es labeled + nl unlabeled, 16 sentences per
language, alternating adversarial updates with n_critic 1; the word table holds, as the original implementation's
vocabulary, the vector files' words that the workload's train and dev files use (`--word_vocabulary file`: every
word of the files, as `examples/run_ner.py` by default). One iteration = one labeled batch per source language,
one unlabeled batch per language for the discriminator's step and one per language for the adversarial term.
Each repeat trains a fresh model with a fresh `ManMoeTrainer` (same seed) for `--steps` steps; the steady state is
the wall time from the end of step `--warmup` - 1 to the end of the last step, data loading included (what a user
sees), and `compute_median_step_seconds` the median `StepTimer` step of the same steps (data loading excluded).
`--count_flops`: two more steps under `FlopCounterMode` count the operations of one iteration (forward and backward
passes of all its batches; `compute_floor.py`) against a large matmul's rate on these cores: the compute floor of an
iteration and the labeled sentences/s it caps.
Prints JSON (each repeat with the peak RSS so far, the medians, peak RSS, trainable parameters, setup times) and a
one-line summary. `rss_after_imports_mib` is the peak before any data is read: the share of the imported libraries
(torch, transformers, datasets, accelerate); `rss_file_mib_at_end` is the file-backed part of the resident set at
the end (the libraries' pages, which the page cache's state moved by ~70 MiB on one machine: benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time

import torch
import transformers
from compute_floor import count_flops, floor_report, floor_summary
from memory import peak_rss_mib, resident_file_mib
from step_timer import StepTimer
from synthetic_workload import LANGUAGES, add_workload_arguments, vocabulary_corpus, workload_files

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification
from modeling_manmoe.data import CONLL_NER_LABELS, read_conll
from modeling_manmoe.data.inputs import build_word_vector_inputs
from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments

# The peak so far, before any data: what importing torch, transformers, datasets, accelerate and the package costs
# in this environment (part of the peak RSS below, and not under the package's control).
imports_rss_mib = peak_rss_mib()

PAPER_TRAINABLE_PARAMETERS = 3_092_765


class WallTimer(StepTimer):
    """`StepTimer` that also records the wall clock at the end of every step (`ends`)."""

    def __init__(self):
        super().__init__()
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        super().on_step_end(args, state, control, **kwargs)
        self.ends.append(time.perf_counter())


parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
add_workload_arguments(parser)
parser.add_argument("--steps", type=int, default=30, help="training steps per repeat, warm-up included")
parser.add_argument("--warmup", type=int, default=5, help="first steps excluded from the steady state (>= 1)")
parser.add_argument("--repeats", type=int, default=3, help="fresh model and trainer each time; the median is quoted")
parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
parser.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision: the Trainer's bf16=True")
parser.add_argument("--count_flops", action="store_true", help="count one iteration's operations; time a large matmul")
parser.add_argument(
    "--kernels",
    choices=["fast", "torch"],
    default="fast",
    help="ManMoeConfig.kernels: the hand-written CPU kernels or plain torch modules (the same model)",
)
options = parser.parse_args()
if not 1 <= options.warmup < options.steps:
    parser.error("need 1 <= --warmup < --steps")
if options.threads:
    torch.set_num_threads(options.threads)
transformers.logging.set_verbosity_error()

started = time.perf_counter()
files = workload_files(options)
workload_seconds = time.perf_counter() - started
train = {lang: read_conll(files["train"][lang], lang) for lang in LANGUAGES}
train["nl"] = train["nl"].remove_columns("ner_tags")  # the target is unlabeled, as in examples/run_ner.py
vocabulary = vocabulary_corpus(options, files, read={"train": train})
started = time.perf_counter()
corpus_words = (word for dataset in train.values() for words in dataset["tokens"] for word in words)
tokenizer, table = build_word_vector_inputs(files["vectors"], LANGUAGES, extra_characters=corpus_words,
                                            vocabulary_corpus=vocabulary)  # fmt: skip
vector_seconds = time.perf_counter() - started  # all rows of every file read: the loader's max_words is not used
config = ManMoeConfig(word_vocab_size=table.shape[0], word_embedding_dim=table.shape[1],
                      char_vocab_size=tokenizer.char_vocab_size, kernels=options.kernels,
                      id2label=dict(enumerate(CONLL_NER_LABELS)),
                      label2id={label: i for i, label in enumerate(CONLL_NER_LABELS)})  # fmt: skip
# bf16: transformers 5 / accelerate 1.x support bf16 mixed precision on CPU (`bf16=True` needs `use_cpu=True` on a
# machine without a bf16 GPU): accelerate wraps `model.forward` in torch.autocast(bfloat16). The discriminator's own
# step and its adversarial term (ManMoeTrainer calls `model.manmoe.shared_features` / `.discriminator` directly)
# are outside `model.forward`, so they stay float32.
precision = {"bf16": True, "use_cpu": not torch.cuda.is_available()} if options.bf16 else {}
labeled_per_step = len(config.source_languages) * 16


def paper_trainer(model, steps: int, output_dir: str, callbacks: list) -> ManMoeTrainer:
    """The paper configuration's trainer: 16 sentences per language, alternating updates, n_critic 1, no saving."""
    args = ManMoeTrainingArguments(
        output_dir=output_dir, max_steps=steps, per_device_train_batch_size=16, n_critic=1,
        adversarial_mode="alternating", save_strategy="no", eval_strategy="no", report_to=[], disable_tqdm=True,
        logging_steps=10**6, seed=0, **precision,
    )  # fmt: skip
    trainer = ManMoeTrainer(
        model=model, args=args, train_dataset=train, processing_class=tokenizer, callbacks=callbacks
    )
    trainer.remove_callback(transformers.PrinterCallback)  # it prints the final train metrics to stdout
    return trainer


def fresh_model() -> ManMoeForTokenClassification:
    transformers.set_seed(0)
    model = ManMoeForTokenClassification(config)
    model.set_word_vectors(table)
    return model


repeats = []
for _ in range(options.repeats):
    model = fresh_model()
    parameters = model.num_trainable_parameters()
    timer = WallTimer()
    with tempfile.TemporaryDirectory() as output_dir:
        started = time.perf_counter()
        trainer = paper_trainer(model, options.steps, output_dir, [timer])
        setup_seconds = time.perf_counter() - started
        trainer.train()
        mixed_precision = trainer.accelerator.mixed_precision  # "bf16" when the Trainer's autocast is on
    per_iteration = (timer.ends[-1] - timer.ends[options.warmup - 1]) / (options.steps - options.warmup)
    compute = statistics.median(timer.times[options.warmup :])
    repeats.append({"seconds_per_iteration": round(per_iteration, 4), "compute_median_step_seconds": round(compute, 4),
                    "iterations_per_second": round(1 / per_iteration, 3),
                    "labeled_sentences_per_second": round(labeled_per_step / per_iteration, 1),
                    "trainer_setup_seconds": round(setup_seconds, 2),
                    "peak_rss_mib_so_far": round(peak_rss_mib(), 1)})  # fmt: skip
    del trainer, model
    gc.collect()  # the Trainer holds reference cycles: free this repeat's model and optimizer before the next

median = {key: round(statistics.median(r[key] for r in repeats), 4) for key in repeats[0] if "rss" not in key}
peak_mib = peak_rss_mib()
result = {"workload": options.workload, "files": files["description"],
          "precision": "bf16" if options.bf16 else "float32", "accelerate_mixed_precision": mixed_precision,
          "threads": torch.get_num_threads(), "steps": options.steps, "warmup": options.warmup,
          "steps_timed": options.steps - options.warmup, "labeled_sentences_per_iteration": labeled_per_step,
          "trainable_parameters": parameters, "paper_parameter_count": parameters == PAPER_TRAINABLE_PARAMETERS,
          "word_vocabulary": options.word_vocabulary, "word_table_rows": table.shape[0],
          "workload_seconds": round(workload_seconds, 2), "vector_load_seconds": round(vector_seconds, 2),
          "repeats": repeats, "median": median, "peak_rss_mib": round(peak_mib, 1),
          "rss_after_imports_mib": round(imports_rss_mib, 1), "rss_file_mib_at_end": resident_file_mib()}  # fmt: skip
if options.count_flops:
    with tempfile.TemporaryDirectory() as output_dir:
        counted = paper_trainer(fresh_model(), 2, output_dir, [])
        gflop, by_module = count_flops(counted.train, "ManMoeForTokenClassification")
    result["compute_floor"] = floor_report(gflop / 2, {k: v / 2 for k, v in by_module.items()},
                                           median["compute_median_step_seconds"], labeled_per_step)  # fmt: skip
print(json.dumps(result))
print(f"train ({options.workload}, {result['precision']}, {result['threads']} threads, median of {options.repeats}): "
      f"{median['labeled_sentences_per_second']:.1f} labeled sentences/s, {median['iterations_per_second']:.3f} it/s "
      f"({median['seconds_per_iteration']:.3f} s/it, compute {median['compute_median_step_seconds']:.3f} s), "
      f"peak RSS {peak_mib:.0f} MiB (after the first repeat {repeats[0]['peak_rss_mib_so_far']:.0f}, imports alone "
      f"{imports_rss_mib:.0f}), "
      f"{parameters:,} trainable parameters")  # fmt: skip
if options.count_flops:
    print(floor_summary(result["compute_floor"], "labeled sentences").replace("per pass", "per iteration"))
if parameters != PAPER_TRAINABLE_PARAMETERS:  # the figures above are printed first; the exit status says it
    raise SystemExit(
        f"{parameters:,} trainable parameters: not the paper configuration ({PAPER_TRAINABLE_PARAMETERS:,})"
    )
