#!/usr/bin/env bash
# Zero-shot review sentiment on Webis-CLS-10 (the paper's Amazon experiment): the three other languages of
# en/de/fr/ja labeled -> TARGET unlabeled, one DOMAIN, the aligned vectors of ../shared/embeddings/webis-use-m3.
# Usage: bash examples/zero_shot_webis.sh TARGET DOMAIN [OUTPUT_DIR] [extra run_classification.py options]
# MANMOE_DATA (webis-cls-10/) and MANMOE_EMBEDDINGS (webis-use-m3/) locate the inputs, by default data/ and
# embeddings/ of the shared/ folder beside the repository (or of MANMOE_SHARED / SHARED when set; docs/data.md).
# Schedule: this wrapper overrides run_classification.py's defaults with 300 steps at learning rate 3e-3, the dev sets
# scored every 50 steps, texts cut to their first 64 words; extra options override these.
set -euo pipefail
TARGET=${1:?usage: zero_shot_webis.sh TARGET(de|fr|ja) DOMAIN(books|dvd|music) [OUTPUT_DIR] [options]}
DOMAIN=${2:?usage: zero_shot_webis.sh TARGET DOMAIN [OUTPUT_DIR] [options]}
OUT=${3:-runs/cls-$TARGET-$DOMAIN}
shift $(( $# < 3 ? $# : 3 ))
SHARED=${MANMOE_SHARED:-${SHARED:-$(dirname "$0")/../../shared}}
DATA=${MANMOE_DATA:-$SHARED/data}
VECTORS=${MANMOE_EMBEDDINGS:-$SHARED/embeddings}/webis-use-m3
SOURCES=()
for lang in en de fr ja; do [[ $lang != "$TARGET" ]] && SOURCES+=("$lang"); done
python "$(dirname "$0")/run_classification.py" \
  --source_languages "${SOURCES[@]}" --target_language "$TARGET" --domain "$DOMAIN" \
  --webis_dir "$DATA/webis-cls-10" \
  --word_vectors "en=$VECTORS/en.vec.gz" "de=$VECTORS/de.vec.gz" "fr=$VECTORS/fr.vec.gz" "ja=$VECTORS/ja.vec.gz" \
  --max_words 64 --max_steps 300 --eval_steps 50 --learning_rate 3e-3 --seed 42 \
  --output_dir "$OUT" --do_train --do_eval --do_predict --disable_tqdm true "$@"
