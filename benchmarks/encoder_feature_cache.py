"""Frozen-encoder feature cache on real CoNLL data: build rate, training from the cache vs the live encoder, size.

Usage: python benchmarks/encoder_feature_cache.py [--shared ../shared] [--encoder PATH_OR_HUB_NAME]
           [--random_bert_base] [--sentences 2000] [--steps 8] [--repeats 3]

`--random_bert_base` times an encoder of mBERT-base's shape (12 layers, hidden 768, FFN 3072) with random
weights and the shared encoder's tokenizer, for the paper's mBERT setting offline: speed does not depend on
the weights' values (its features are meaningless, so it is only for timing).

Data: the first `--sentences` training sentences of each of en, de, es, nl (CoNLL, ../shared). Measures, each
`--repeats` times (the median is reported), interleaved so that machine noise hits both sides alike:
  1. `bare_forward`: a plain `AutoModel` forward (last layer only, no pooling, no storage) over the same
     length-sorted batches the cache builder uses;
  2. `cache_build`: `EncoderFeatureCache` building the cache from scratch (tokenization, windows, pooling, float16
     storage and the atomic write included), into a fresh temporary folder;
  then the training step of MAN-MoE (paper sizes, en/de/es labeled -> nl unlabeled, no CharCNN) with
  3. features read from the cache, and 4. the live frozen encoder run at every step; warm-up steps excluded.
Prints JSON and a one-line summary; `epoch_*` figures scale the step time to one epoch of these languages.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch
import transformers
from step_timer import StepTimer
from transformers import AutoModel

from modeling_manmoe import ManMoeConfig, ManMoeForTokenClassification
from modeling_manmoe.data import CONLL_NER_LABELS, conll_file_path, read_conll
from modeling_manmoe.data.feature_cache import EncoderFeatureCache, length_sorted_batches
from modeling_manmoe.data.inputs import build_encoder_inputs
from modeling_manmoe.tokenization_manmoe import pad_subtokens
from modeling_manmoe.training import ManMoeTrainer, ManMoeTrainingArguments

LANGUAGES = ["en", "de", "es", "nl"]


def random_bert_base(tokenizer_source: str, folder: str) -> str:
    """Save a randomly initialised encoder of bert-base's shape, with `tokenizer_source`'s tokenizer, in `folder`."""
    import shutil

    from transformers import AutoTokenizer, BertConfig, BertModel

    vocab_size = len(AutoTokenizer.from_pretrained(tokenizer_source))
    config = BertConfig(vocab_size=vocab_size, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=512)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(tokenizer_source, name)):
            shutil.copy(os.path.join(tokenizer_source, name), folder)
    return folder


def bare_forward_seconds(encoder, tokenizer, sentences, budget: int) -> float:
    """A plain AutoModel forward over the cache builder's length-sorted batches (tokenization excluded)."""
    subtokens = [tokenizer.encoder_subtokens(words) for words in sentences]
    order = sorted(range(len(sentences)), key=lambda i: len(subtokens[i][0]), reverse=True)
    batches = length_sorted_batches(order, [len(subtokens[i][0]) for i in order], budget)
    padded = [pad_subtokens(*zip(*(subtokens[i] for i in batch), strict=True))[:2] for batch in batches]
    started = time.perf_counter()
    with torch.inference_mode():
        for ids, mask in padded:
            encoder(input_ids=ids, attention_mask=mask)
    return time.perf_counter() - started


def step_seconds(model, tokenizer, train, cache, steps: int) -> tuple[list[float], int]:
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as output_dir:
        args = ManMoeTrainingArguments(output_dir=output_dir, max_steps=steps + 2, save_strategy="no", report_to=[],
                                       disable_tqdm=True, logging_steps=10**6)  # fmt: skip
        trainer = ManMoeTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                                feature_cache=cache, callbacks=[timer])  # fmt: skip
        trainer.train()
        steps_per_epoch = len(trainer.train_dataset)
    return timer.times[2:], steps_per_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default="../shared")
    parser.add_argument("--encoder", default=None, help="default: SHARED/models/multilingual-e5-small-trimmed")
    parser.add_argument("--random_bert_base", action="store_true", help="time a random bert-base-sized encoder")
    parser.add_argument("--sentences", type=int, default=2000, help="training sentences per language")
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per repeat (after 2 warm-up)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=int, default=8192, help="sub-tokens per length-sorted batch")
    options = parser.parse_args()
    transformers.logging.set_verbosity_error()
    encoder_path = options.encoder or f"{options.shared}/models/multilingual-e5-small-trimmed"
    if options.random_bert_base:
        encoder_path = random_bert_base(encoder_path, tempfile.mkdtemp(prefix="random-bert-base-"))
    train = {
        lang: read_conll(conll_file_path(f"{options.shared}/data", lang, "train"), lang).select(
            range(options.sentences)
        )
        for lang in LANGUAGES
    }
    sentences = [words for lang in LANGUAGES for words in train[lang]["tokens"]]
    tokenizer, encoder_config = build_encoder_inputs(encoder_path, LANGUAGES)
    config = ManMoeConfig(encoder_config=encoder_config, encoder_name_or_path=encoder_path,
                          use_char_cnn=False, id2label=dict(enumerate(CONLL_NER_LABELS)),
                          label2id={label: i for i, label in enumerate(CONLL_NER_LABELS)})  # fmt: skip
    model = ManMoeForTokenClassification(config)
    model.load_pretrained_encoder(encoder_path)
    bare = AutoModel.from_pretrained(encoder_path).eval()

    bare_times, build_times, cached_steps, live_steps, sizes = [], [], [], [], []
    steps_per_epoch = None
    for _ in range(options.repeats):
        bare_times.append(bare_forward_seconds(bare, tokenizer, sentences, options.budget))
        with tempfile.TemporaryDirectory() as cache_dir:
            cache = EncoderFeatureCache.for_model(model, tokenizer, cache_dir=cache_dir, show_progress=False,
                                                  max_batch_subtokens=options.budget)  # fmt: skip
            started = time.perf_counter()
            for lang in LANGUAGES:
                cache.features(train[lang]["tokens"])
            build_times.append(time.perf_counter() - started)
            sizes.append(sum(os.path.getsize(os.path.join(cache_dir, name)) for name in os.listdir(cache_dir)))
            times, steps_per_epoch = step_seconds(model, tokenizer, train, cache, options.steps)
            cached_steps += times
        times, _ = step_seconds(model, tokenizer, train, None, max(2, options.steps // 4))
        live_steps += times

    bare_s, build_s = statistics.median(bare_times), statistics.median(build_times)
    cached_s, live_s = statistics.median(cached_steps), statistics.median(live_steps)
    result = {
        "encoder": "random bert-base shape (timing only)" if options.random_bert_base else encoder_path,
        "sentences": len(sentences),
        "torch_threads": torch.get_num_threads(),
        "bare_forward_sentences_per_s": round(len(sentences) / bare_s, 1),
        "cache_build_sentences_per_s": round(len(sentences) / build_s, 1),
        "cache_build_over_bare_forward": round(build_s / bare_s, 3),
        "cache_bytes": sizes[0],
        "cache_bytes_per_sentence": round(sizes[0] / len(sentences), 1),
        "cached_seconds_per_step": round(cached_s, 4),
        "live_seconds_per_step": round(live_s, 4),
        "cached_labeled_sentences_per_s": round(3 * 16 / cached_s, 1),
        "live_labeled_sentences_per_s": round(3 * 16 / live_s, 1),
        "live_over_cached_epoch_cost": round(live_s / cached_s, 2),
        "steps_per_epoch": steps_per_epoch,
        "epoch_seconds_cached": round(steps_per_epoch * cached_s, 1),
        "epoch_seconds_live": round(steps_per_epoch * live_s, 1),
        "repeats": options.repeats,
    }
    print(json.dumps(result))
    print(f"cache build {result['cache_build_sentences_per_s']} sent/s ({result['cache_build_over_bare_forward']}x "
          f"a bare forward), {sizes[0] / 2**20:.1f} MiB; training {result['cached_labeled_sentences_per_s']} vs "
          f"{result['live_labeled_sentences_per_s']} labeled sent/s from cache vs live encoder "
          f"({result['live_over_cached_epoch_cost']}x cheaper per epoch)")  # fmt: skip


if __name__ == "__main__":
    main()
