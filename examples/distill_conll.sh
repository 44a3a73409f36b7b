#!/usr/bin/env bash
# Distillation into MAN-MoE on CoNLL with the frozen multilingual encoder: teachers, then the student.
#
#   [TEACHERS=monolingual|finetuned|finetuned_multisource|manmoe|"finetuned_multisource manmoe"] \
#       [TEACHER_SEEDS="42 43 44"] \
#       bash examples/distill_conll.sh TARGET [OUTPUT_DIR] [extra run_ner.py arguments...]
#
# 1. The teachers, trained on the other languages of LANGUAGES (default "en de es nl") (a teacher folder that already holds
#    all_results.json is reused):
#    - TEACHERS=monolingual (default; Chi et al., MBLM): one teacher per source language, trained on its own language
#      only: a frozen-encoder tagger without the adversary, selected on its own dev F1 (OUTPUT_DIR/teacher-LANG).
#    - TEACHERS=finetuned (Chi et al.'s strong monolingual teacher): one teacher per source language, the encoder
#      itself fine-tuned on that language only by examples/finetune_teacher.py (TEACHER_EPOCHS, default 3, epochs at
#      learning rate TEACHER_LEARNING_RATE (default 5e-5), batches of 16 sentences of similar length;
#      OUTPUT_DIR/finetuned-teacher-LANG).
#    - TEACHERS=finetuned_multisource: one teacher for all languages, the encoder fine-tuned on the three sources
#      together (same settings; OUTPUT_DIR/finetuned-teacher-all, scored on the sources and, zero-shot, the target).
#    - TEACHERS=manmoe (Wu et al.'s teacher-student on the target): one teacher for all languages, MAN-MoE itself
#      trained on the three sources at this schedule (OUTPUT_DIR/teacher-all; its results are MAN-MoE alone's). With
#      TEACHER_SEEDS="42 43 44", one such run per seed (OUTPUT_DIR/teacher-all-seedN), and the student learns the
#      mixture of this ensemble (--teacher_models all=RUN_42,RUN_43,RUN_44).
#    - TEACHERS="finetuned_multisource manmoe": both one-for-all kinds, as one ensemble (the fine-tuned teacher and
#      the MAN-MoE run, or runs with TEACHER_SEEDS: --teacher_models all=FINETUNED,RUN_42,RUN_43,RUN_44).
# 2. The MAN-MoE student on the three sources -> TARGET, distilling from the teachers on each source batch
#    (--distillation_alpha, default 0.5) and, as their mixture, on the target's unlabeled batches
#    (--target_distillation_weight, default 1.0), at temperature --distillation_temperature (default 2)
#    (OUTPUT_DIR/student). Extra arguments go to the student's run_ner.py: --model_name_or_path
#    OUTPUT_DIR/teacher-all-seed42 (a MAN-MoE teacher of TEACHERS=manmoe) starts the student from that teacher's
#    weights instead of a new model (the reference recipe of docs/results/distillation.md).
# Schedule: this wrapper overrides the paper's (run_ner.py's defaults) with STEPS (default 1,000) steps at learning
# rate 3e-3, dev F1 every STEPS/4 steps, for teachers and student alike; the encoder input is that of
# zero_shot_conll_encoder.sh (layers 6, 8, 10 mixed, mean of sub-tokens, no CharCNN). Data and encoder locations:
# MANMOE_DATA and MANMOE_MODELS, defaulting to the shared/ folder beside the repository (docs/data.md). Another corpus
# in the CoNLL layout: MANMOE_DATA its folder (files eng.train ... or LANG.train, LANG.testa, LANG.testb) and
# LANGUAGES its languages, e.g. LANGUAGES="en de fi" bash examples/distill_conll.sh fi; its entity types and tag scheme
# (IOB1, IOB2, IOBES) are read from the files (docs/data.md); NER_LABELS="O B-PER I-PER ..." gives every run one tag
# set (needed when a run reads files without some type: a monolingual teacher of a language without DATE, say).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: distill_conll.sh TARGET [OUTPUT_DIR] [extra run_ner.py arguments]}
output=$(realpath -m "${2:-$repo/runs/distill-$target}")
shift $(( $# >= 2 ? 2 : 1 ))
shared=$(realpath -m "${MANMOE_SHARED:-${SHARED:-$repo/../shared}}")
data=${MANMOE_DATA:-$shared/data}
encoder=${ENCODER:-${MANMOE_MODELS:-$shared/models}/multilingual-e5-small-trimmed}
steps=${STEPS:-1000}
read -r -a kinds <<< "${TEACHERS:-monolingual}"
read -r -a languages <<< "${LANGUAGES:-en de es nl}"
if [[ " ${languages[*]} " != *" $target "* ]] || (( ${#languages[@]} < 2 )); then
    echo "distill_conll.sh: TARGET '$target' must be one of LANGUAGES (${languages[*]}), which needs a source besides it" >&2
    exit 2
fi
sources=()
for lang in "${languages[@]}"; do [ "$lang" != "$target" ] && sources+=("$lang"); done
common=(--target_language "$target" --conll_dir "$data" --encoder_name_or_path "$encoder" --use_char_cnn false
        --encoder_pooling mean --encoder_layers 6 8 10 --do_train --do_eval --do_predict --max_steps "$steps"
        --learning_rate 3e-3 --eval_strategy steps --eval_steps $(( steps / 4 )) --logging_steps 100
        --disable_tqdm true)
finetune=(--num_train_epochs "${TEACHER_EPOCHS:-3}" --learning_rate "${TEACHER_LEARNING_RATE:-5e-5}" --warmup_steps 0.1
          --per_device_train_batch_size 16 --train_sampling_strategy group_by_length --eval_strategy no
          --save_strategy no --logging_steps 100 --report_to none --disable_tqdm true)
if [ -n "${NER_LABELS:-}" ]; then  # one tag set for every run, whichever files each reads
    read -r -a ner_labels <<< "$NER_LABELS"
    common+=(--ner_labels "${ner_labels[@]}")
    finetune+=(--ner_labels "${ner_labels[@]}")
fi
cd "$repo"
for kind in "${kinds[@]}"; do
    case "$kind" in
        monolingual|finetuned|finetuned_multisource|manmoe) ;;
        *) echo "distill_conll.sh: TEACHERS must be 'monolingual', 'finetuned', 'finetuned_multisource' or 'manmoe'" \
                "(or several of the last two), not '$kind'" >&2
           exit 2 ;;
    esac
done
if (( ${#kinds[@]} > 1 )) && [[ "${kinds[*]}" != "finetuned_multisource manmoe" &&
                                "${kinds[*]}" != "manmoe finetuned_multisource" ]]; then
    echo "distill_conll.sh: TEACHERS='${TEACHERS}': only 'finetuned_multisource' and 'manmoe', each once, combine" \
         "into one ensemble" >&2
    exit 2
fi
teachers=()  # LANG=PATH arguments of the per-language kinds
ensemble=()  # the one-for-all teachers, given as one ensemble: all=PATH_A,PATH_B,...
for kind in "${kinds[@]}"; do
    case "$kind" in
        monolingual)
            for lang in "${sources[@]}"; do
                if [ ! -f "$output/teacher-$lang/all_results.json" ]; then
                    python examples/run_ner.py --source_languages "$lang" --no_adversary true \
                        --model_selection source_mean --output_dir "$output/teacher-$lang" "${common[@]}"
                fi
                teachers+=("$lang=$output/teacher-$lang")
            done ;;
        finetuned)
            for lang in "${sources[@]}"; do
                if [ ! -f "$output/finetuned-teacher-$lang/all_results.json" ]; then
                    python examples/finetune_teacher.py --languages "$lang" --conll_dir "$data" \
                        --model_name_or_path "$encoder" --output_dir "$output/finetuned-teacher-$lang" \
                        "${finetune[@]}"
                fi
                teachers+=("$lang=$output/finetuned-teacher-$lang")
            done ;;
        finetuned_multisource)
            if [ ! -f "$output/finetuned-teacher-all/all_results.json" ]; then
                python examples/finetune_teacher.py --languages "${sources[@]}" \
                    --eval_languages "${sources[@]}" "$target" --conll_dir "$data" --model_name_or_path "$encoder" \
                    --output_dir "$output/finetuned-teacher-all" "${finetune[@]}"
            fi
            ensemble+=("$output/finetuned-teacher-all") ;;
        manmoe)
            if [ -z "${TEACHER_SEEDS:-}" ]; then
                if [ ! -f "$output/teacher-all/all_results.json" ]; then
                    python examples/run_ner.py --source_languages "${sources[@]}" --output_dir "$output/teacher-all" \
                        "${common[@]}"
                fi
                ensemble+=("$output/teacher-all")
            else
                for seed in $TEACHER_SEEDS; do
                    if [ ! -f "$output/teacher-all-seed$seed/all_results.json" ]; then
                        python examples/run_ner.py --source_languages "${sources[@]}" \
                            --output_dir "$output/teacher-all-seed$seed" "${common[@]}" --seed "$seed"
                    fi
                    ensemble+=("$output/teacher-all-seed$seed")
                done
            fi ;;
    esac
done
if (( ${#ensemble[@]} > 0 )); then
    teachers+=("all=$(IFS=,; echo "${ensemble[*]}")")
fi
python examples/run_ner.py --source_languages "${sources[@]}" --output_dir "$output/student" "${common[@]}" \
    --teacher_models "${teachers[@]}" --distillation_alpha 0.5 --target_distillation_weight 1.0 \
    --distillation_temperature 2 "$@"
