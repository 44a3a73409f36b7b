#!/usr/bin/env bash
# Zero-shot CoNLL NER with MAN-MoE: the three other languages of {en, de, es, nl} labeled -> TARGET unlabeled,
# with the aligned static vectors of ../shared/embeddings/conll-use-m3 + CharCNN (the paper's architecture).
#
#   bash examples/zero_shot_conll.sh TARGET [OUTPUT_DIR] [extra run_ner.py arguments...]
#
# Schedule: this wrapper overrides the paper's (run_ner.py's defaults, `PaperScheduleArguments`: 15,000 steps at
# learning rate 1e-3, dev F1 after every epoch) with a short one: 1,500 steps at 3e-3, dev F1 every 300 steps, the
# best checkpoint kept. The published static-vector figures use `--max_steps 15000 --learning_rate 1e-3 --eval_steps
# 500` (docs/results/static-vectors-conll.md); arguments given after OUTPUT_DIR override these.
# MANMOE_DATA (the CoNLL files) and MANMOE_EMBEDDINGS (conll-use-m3/) locate the inputs, by default data/ and
# embeddings/ of the shared/ folder beside the repository (or of MANMOE_SHARED / SHARED when set; docs/data.md);
# results land in OUTPUT_DIR (default runs/ner-TARGET in the repository).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: zero_shot_conll.sh TARGET [OUTPUT_DIR] [extra run_ner.py arguments]}
output=$(realpath -m "${2:-$repo/runs/ner-$target}")
shift $(( $# >= 2 ? 2 : 1 ))
shared=${MANMOE_SHARED:-${SHARED:-$repo/../shared}}
data=$(realpath -m "${MANMOE_DATA:-$shared/data}")
embeddings=$(realpath -m "${MANMOE_EMBEDDINGS:-$shared/embeddings}")
sources=()
for lang in en de es nl; do [ "$lang" != "$target" ] && sources+=("$lang"); done
vectors=()
for lang in en de es nl; do vectors+=("$lang=$embeddings/conll-use-m3/$lang.vec.gz"); done
cd "$repo"
python examples/run_ner.py --source_languages "${sources[@]}" --target_language "$target" \
    --conll_dir "$data" --word_vectors "${vectors[@]}" --output_dir "$output" \
    --do_train --do_eval --do_predict --max_steps 1500 --learning_rate 3e-3 --eval_strategy steps --eval_steps 300 \
    --logging_steps 100 --disable_tqdm true "$@"
