#!/usr/bin/env bash
# Zero-shot CoNLL NER with MAN-MoE: the three other languages of {en, de, es, nl} labeled -> TARGET unlabeled,
# with the aligned static vectors of ../shared/embeddings/conll-use-m3 + CharCNN (the paper's architecture).
#
#   bash examples/zero_shot_conll.sh TARGET [OUTPUT_DIR] [extra run_ner.py arguments...]
#
# The schedule is the one our published figures used (1,500 steps at learning rate 3e-3, dev F1 of the target every
# 300 steps, the best checkpoint kept); the paper's is 15,000 steps at 1e-3: add
# `--max_steps 15000 --eval_steps 698 --learning_rate 1e-3` for it.
# SHARED (default: the shared/ folder beside the repository) locates the data; results land in OUTPUT_DIR
# (default runs/ner-TARGET in the repository).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: zero_shot_conll.sh TARGET [OUTPUT_DIR] [extra run_ner.py arguments]}
output=$(realpath -m "${2:-$repo/runs/ner-$target}")
shift $(( $# >= 2 ? 2 : 1 ))
shared=$(realpath -m "${SHARED:-$repo/../shared}")
sources=()
for lang in en de es nl; do [ "$lang" != "$target" ] && sources+=("$lang"); done
vectors=()
for lang in en de es nl; do vectors+=("$lang=$shared/embeddings/conll-use-m3/$lang.vec.gz"); done
cd "$repo"
python examples/run_ner.py --source_languages "${sources[@]}" --target_language "$target" \
    --conll_dir "$shared/data" --word_vectors "${vectors[@]}" --output_dir "$output" \
    --do_train --do_eval --do_predict --max_steps 1500 --learning_rate 3e-3 --eval_strategy steps --eval_steps 300 \
    --logging_steps 100 --disable_tqdm true "$@"
