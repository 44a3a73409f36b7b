#!/usr/bin/env bash
# Zero-shot CoNLL NER with MAN-MoE on a frozen multilingual encoder (the paper's mBERT setting): the other languages
# of LANGUAGES (default "en de es nl") labeled -> TARGET unlabeled, word features from a learned mix of layers 6, 8
# and 10 of ../shared/models/multilingual-e5-small-trimmed (mean of each word's sub-tokens: the layers and pooling that
# examples/probe_encoder_layers.py ranks best), read from the on-disk feature cache.
# Schedule: this wrapper overrides the paper's (run_ner.py's defaults, `PaperScheduleArguments`) with 3,000 steps at
# learning rate 3e-3, target dev F1 every 300 steps, the best checkpoint kept (about 90 minutes per target with one
# thread, three runs sharing two cores); extra arguments override it.
#
#   bash examples/zero_shot_conll_encoder.sh TARGET [OUTPUT_DIR] [extra run_ner.py arguments...]
#
# The first run encodes every CoNLL file once (about 20 minutes on a 2-core CPU; 2.8 GB of float16 features for
# three layers) into the feature cache ($MANMOE_FEATURE_CACHE, default $HF_HOME/modeling_manmoe/features); later
# runs, any target, reuse it. `--encoder_layers -1 --encoder_pooling first` gives the last layer's first sub-token.
# ENCODER overrides the encoder (a Hub name such as bert-base-multilingual-cased, or a folder); MANMOE_DATA (the CoNLL
# files) and MANMOE_MODELS (multilingual-e5-small-trimmed/) locate the inputs, by default data/ and models/ of the
# shared/ folder beside the repository (or of MANMOE_SHARED / SHARED when set; docs/data.md); another corpus in the
# CoNLL layout (eng.train ... or LANG.train, LANG.testa, LANG.testb) runs with MANMOE_DATA its folder and LANGUAGES its
# languages. Results land in OUTPUT_DIR (default runs/ner-encoder-TARGET in the repository).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: zero_shot_conll_encoder.sh TARGET [OUTPUT_DIR] [extra run_ner.py arguments]}
output=$(realpath -m "${2:-$repo/runs/ner-encoder-$target}")
shift $(( $# >= 2 ? 2 : 1 ))
shared=${MANMOE_SHARED:-${SHARED:-$repo/../shared}}
data=$(realpath -m "${MANMOE_DATA:-$shared/data}")
models=$(realpath -m "${MANMOE_MODELS:-$shared/models}")
encoder=${ENCODER:-$models/multilingual-e5-small-trimmed}
read -r -a languages <<< "${LANGUAGES:-en de es nl}"
if [[ " ${languages[*]} " != *" $target "* ]] || (( ${#languages[@]} < 2 )); then
    echo "zero_shot_conll_encoder.sh: TARGET '$target' must be one of LANGUAGES (${languages[*]}), which needs a source besides it" >&2
    exit 2
fi
sources=()
for lang in "${languages[@]}"; do [ "$lang" != "$target" ] && sources+=("$lang"); done
cd "$repo"
python examples/run_ner.py --source_languages "${sources[@]}" --target_language "$target" \
    --conll_dir "$data" --encoder_name_or_path "$encoder" --use_char_cnn false --output_dir "$output" \
    --do_train --do_eval --do_predict --max_steps 3000 --learning_rate 3e-3 --eval_strategy steps --eval_steps 300 \
    --logging_steps 100 --disable_tqdm true --encoder_pooling mean --encoder_layers 6 8 10 "$@"
