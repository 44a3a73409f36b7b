"""Seconds per training step of the paper's CoNLL configuration on real data (en, de, es labeled -> nl unlabeled).

Usage: python benchmarks/paper_step_time.py [--shared ../shared] [--steps 20]
Prints JSON: steps, warm-up excluded median seconds per step, labeled sentences per second.
"""

import argparse
import json
import statistics

import transformers
from step_timer import StepTimer

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification
from modeling_manmoe.data import CONLL_NER_LABELS, conll_file_path, read_conll
from modeling_manmoe.data.inputs import build_word_vector_inputs
from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments

parser = argparse.ArgumentParser()
parser.add_argument("--shared", default="../shared")
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--kernels", choices=["fast", "torch"], default="fast")
options = parser.parse_args()
transformers.logging.set_verbosity_error()
languages = ["en", "de", "es", "nl"]
tokenizer, table = build_word_vector_inputs(
    {lang: f"{options.shared}/embeddings/conll-use-m3/{lang}.vec.gz" for lang in languages}, languages
)
config = ManMoeConfig(word_vocab_size=table.shape[0], char_vocab_size=tokenizer.char_vocab_size,
                      kernels=options.kernels,
                      id2label=dict(enumerate(CONLL_NER_LABELS)),
                      label2id={label: i for i, label in enumerate(CONLL_NER_LABELS)})  # fmt: skip
model = ManMoeForTokenClassification(config)
model.set_word_vectors(table)
train = {lang: read_conll(conll_file_path(f"{options.shared}/data", lang, "train"), lang) for lang in languages}
timer = StepTimer()
args = ManMoeTrainingArguments(output_dir="/tmp/manmoe_step_time", max_steps=options.steps, save_strategy="no",
                               report_to=[], disable_tqdm=True, logging_steps=10**6)  # fmt: skip
trainer = ManMoeTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer, callbacks=[timer])
trainer.train()
steady = timer.times[3:]
median = statistics.median(steady)
result = {"steps_timed": len(steady), "seconds_per_step": round(median, 3),
          "labeled_sentences_per_second": round(3 * 16 / median, 1), "trainable_parameters": model.num_trainable_parameters()}  # fmt: skip
print(json.dumps(result))
print(f"paper configuration: {median:.3f} s/step, {3 * 16 / median:.1f} labeled sentences/s")
