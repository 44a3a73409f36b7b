#!/usr/bin/env bash
# Few-shot CoNLL with the frozen multilingual encoder: zero_shot / joint / metaxl with N labeled target sentences.
#
#   bash examples/few_shot_conll.sh [OUTPUT_DIR] [extra run_ner.py arguments for every run...]
#
# For each target of TARGETS (default "de es nl"; the other languages of LANGUAGES, default "en de es nl", are its
# sources) and each subset seed of SEEDS (default "1 2 3"), the methods of METHODS (default "metaxl joint zero_shot"):
#   zero_shot  MAN-MoE on the sources, the target's training text unlabeled (no subset: one run per target)
#   joint      the N target sentences (--target_train_size N, default 100) as one more labeled language
#   metaxl     joint, plus the representation transformation learned by MetaXL's look-ahead meta-gradient
#              (on the input features, bottleneck 192, --meta_learning_rate 1e-3, finite-difference meta-gradient)
# Runs go to OUTPUT_DIR/METHOD-TARGET[-nN-sSEED]; a folder that already holds all_results.json is kept. JOBS
# (default 1) runs that many at once (on CPU, give each OMP_NUM_THREADS cores). `python examples/summarize_runs.py
# OUTPUT_DIR/*` tabulates them.
# Schedule: this wrapper overrides the paper's (run_ner.py's defaults) with STEPS (default 500) steps at learning
# rate 3e-3, target dev F1 every STEPS/2 steps, the best kept; the encoder input is that of
# zero_shot_conll_encoder.sh (layers 6, 8, 10 mixed, mean of sub-tokens, no CharCNN). Data and encoder locations:
# MANMOE_DATA and MANMOE_MODELS, defaulting to the shared/ folder beside the repository (docs/data.md).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
output=$(realpath -m "${1:-$repo/runs/few-shot}")
shift $(( $# >= 1 ? 1 : 0 ))
shared=$(realpath -m "${MANMOE_SHARED:-${SHARED:-$repo/../shared}}")
data=${MANMOE_DATA:-$shared/data}
encoder=${ENCODER:-${MANMOE_MODELS:-$shared/models}/multilingual-e5-small-trimmed}
steps=${STEPS:-500}
size=${N:-100}
jobs=()
for method in ${METHODS:-metaxl joint zero_shot}; do
    for target in ${TARGETS:-de es nl}; do
        for seed in ${SEEDS:-1 2 3}; do
            sources=()
            for lang in ${LANGUAGES:-en de es nl}; do [ "$lang" != "$target" ] && sources+=("$lang"); done
            if [ "$method" = zero_shot ]; then
                folder=$output/zero_shot-$target
                few=()
            else
                folder=$output/$method-$target-n$size-s$seed
                few=(--target_train_size "$size" --target_subset_seed "$seed")
                [ "$method" = metaxl ] && few+=(--meta_learning_rate 1e-3 --meta_gradient finite_difference)
            fi
            [ -f "$folder/all_results.json" ] && continue
            jobs+=("python examples/run_ner.py --source_languages ${sources[*]} --target_language $target \
--conll_dir $data --encoder_name_or_path $encoder --use_char_cnn false --encoder_pooling mean \
--encoder_layers 6 8 10 --do_train --do_eval --do_predict --max_steps $steps --learning_rate 3e-3 \
--eval_strategy steps --eval_steps $(( steps / 2 )) --logging_steps 50 --disable_tqdm true \
--transfer_method $method ${few[*]} --output_dir $folder $* > $folder.log 2>&1")
            [ "$method" = zero_shot ] && break
        done
    done
done
cd "$repo"
mkdir -p "$output"
printf '%s\n' "${jobs[@]}" | xargs -d '\n' -P "${JOBS:-1}" -I{} bash -c {}
