#!/usr/bin/env bash
# Write hub_cards/NAME/{gates.png,README.md} from a finished run folder: the gate picture is computed by running the
# run's model over the target's and sources' test data, and every number in the card is read from the run's
# all_results.json (nothing is typed by hand).
# Usage: bash hub_cards/make_card.sh RUN_DIR NAME
set -euo pipefail
RUN=${1:?usage: make_card.sh RUN_DIR NAME}
NAME=${2:?usage: make_card.sh RUN_DIR NAME}
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${MANMOE_SHARED:-$HERE/../../shared}
OUT=$HERE/$NAME
mkdir -p "$OUT"
TASK=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['task'])" "$RUN/all_results.json")
if [[ $TASK == token-classification ]]; then
  DATA=(--conll_dir "$SHARED/data")
else
  DOMAIN=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['domain'])" "$RUN/all_results.json")
  DATA=(--webis_dir "$SHARED/data/webis-cls-10" --domain "$DOMAIN")
fi
manmoe-gates "$RUN" "${DATA[@]}" --split test --max_sentences 500 --output "$OUT/gates.png"
manmoe-card "$RUN" --picture "$OUT/gates.png" --output "$OUT/README.md"
