#!/usr/bin/env bash
# Runs the accuracy benchmarks one after another (they share 2 CPU cores); logs in var/bench/.
# PhraseBank folds are appended to var/bench/phrasebank_*.jsonl as they finish: a rerun skips them.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets}
mkdir -p var/bench
BIN=.venv/bin

{ time $BIN/attnwatch --log-format console train --format banking77 \
    --data "$DATA/banking77/train.csv" --test-data "$DATA/banking77/test.csv" \
    --task intent --epochs 10 --max-length 64 --learning-rate 8e-5 --val-fraction 0.05 \
    --patience 0 --attention-entropy 0.3 --average-last 3 \
    --name banking77-minilm --output var/models/banking77 ; } \
    > var/bench/banking77.log 2>&1
$BIN/attnwatch --log-format console explain-eval var/models/banking77 \
    --data "$DATA/banking77/test.csv" --format banking77 --task intent --limit 300 \
    > var/bench/banking77_faith.log 2>&1

# Distillation: two plain teachers (one validation split), then B's recipe taught by both.
for s in 1 2; do
  { time $BIN/attnwatch --log-format console train --format banking77 \
      --data "$DATA/banking77/train.csv" --test-data "$DATA/banking77/test.csv" \
      --task intent --epochs 5 --max-length 64 --learning-rate 8e-5 --val-fraction 0.05 \
      --patience 0 --seed $s --split-seed 0 \
      --name banking77-teacher$s --output var/models/b77_teacher$s ; } \
      > var/bench/b77_teacher$s.log 2>&1
done
{ time $BIN/attnwatch --log-format console train --format banking77 \
    --data "$DATA/banking77/train.csv" --test-data "$DATA/banking77/test.csv" \
    --task intent --epochs 10 --max-length 64 --learning-rate 8e-5 --val-fraction 0.05 \
    --patience 0 --attention-entropy 0.3 --average-last 3 \
    --teacher var/models/b77_teacher1 --teacher var/models/b77_teacher2 \
    --name banking77-minilm-distilled --output var/models/banking77_distilled ; } \
    > var/bench/banking77_distilled.log 2>&1
for model in b77_teacher1 banking77_distilled; do
  $BIN/attnwatch --log-format console explain-eval var/models/$model \
      --data "$DATA/banking77/test.csv" --format banking77 --task intent --limit 300 \
      > var/bench/${model}_faith.log 2>&1
done

$BIN/python bench/sentiment_heads.py --seeds 0 1 > var/bench/heads.log 2>&1

for level in 50Agree AllAgree; do
  $BIN/python bench/sentiment_cv.py "$DATA/financial_phrasebank/Sentences_$level.txt" \
      --epochs 5 --average-last 3 --attention-entropy 0.3 --faithfulness 300 \
      --results "var/bench/phrasebank_${level,,}.jsonl" > "var/bench/phrasebank_$level.log" 2>&1
done

# Out-of-scope intents (issue 16): Banking77-OOS, 50 intents in scope, 27 held out.
$BIN/python bench/banking77_oos.py --data "$DATA/banking77" > var/bench/banking77_oos.log 2>&1
