#!/usr/bin/env bash
# Runs the accuracy benchmarks one after another (they share 2 CPU cores); logs in var/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets}
mkdir -p var/bench
BIN=.venv/bin

{ time $BIN/attnwatch --log-format console train --format banking77 \
    --data "$DATA/banking77/train.csv" --test-data "$DATA/banking77/test.csv" \
    --task intent --epochs 5 --max-length 64 --learning-rate 8e-5 --val-fraction 0.05 \
    --patience 0 --name banking77-minilm --output var/models/banking77 ; } \
    > var/bench/banking77.log 2>&1

{ time $BIN/python bench/sentiment_cv.py "$DATA/financial_phrasebank/Sentences_AllAgree.txt" ; } \
    > var/bench/phrasebank_allagree.log 2>&1

{ time $BIN/python bench/sentiment_cv.py "$DATA/financial_phrasebank/Sentences_50Agree.txt" ; } \
    > var/bench/phrasebank_50agree.log 2>&1
