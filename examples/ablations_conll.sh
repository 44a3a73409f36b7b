#!/usr/bin/env bash
# Zero-shot CoNLL NER, the full model and its three ablations on one target, the same schedule and seed for all:
#
#   bash examples/ablations_conll.sh TARGET [STEPS] [VARIANT ...]
#
# VARIANTs: full no_adversary no_private_moe no_predictor_moe (default: all four, one after the other; give one per
# invocation to run them in parallel). Each run lands in runs/ner-TARGET-VARIANT-STEPS, with the schedule of
# zero_shot_conll.sh (learning rate 3e-3, dev F1 of the target every STEPS/5 steps, the best checkpoint kept); then
#   python examples/summarize_runs.py runs/ner-TARGET-*-STEPS
# prints the table. STEPS defaults to 1500 (the published runs' schedule: `full` is then the command of the
# conll-use-m3-TARGET card).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: ablations_conll.sh TARGET [STEPS] [VARIANT ...]}
steps=${2:-1500}
shift $(( $# >= 2 ? 2 : 1 ))
variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(full no_adversary no_private_moe no_predictor_moe)
for variant in "${variants[@]}"; do
    case $variant in
        full) flags=() ;;
        no_adversary|no_private_moe|no_predictor_moe) flags=("--$variant" true) ;;
        *) echo "unknown variant $variant (expected full, no_adversary, no_private_moe or no_predictor_moe)" >&2; exit 2 ;;
    esac
    bash "$repo/examples/zero_shot_conll.sh" "$target" "$repo/runs/ner-$target-$variant-$steps" \
        --max_steps "$steps" --eval_steps $(( steps / 5 )) "${flags[@]}"
done
