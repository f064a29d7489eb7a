#!/usr/bin/env bash
# The main job on the embedded default: fine-tune all-MiniLM-L6-v2 on the bundled SST-2 sample,
# evaluate on the 872 SST-2 dev sentences, then classify a few sentences with a confidence threshold.
set -euo pipefail
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-runs/demo-sst2}
start=$(date +%s)

echo "== textarmor models"
textarmor models

echo "== textarmor train (8,000 SST-2 train rows, 2 epochs, evaluated on SST-2 dev each epoch)"
textarmor train --data builtin:sst2 --model minilm-l6 --out "$OUT" --epochs 2 --lr 1e-4 --batch-size 32 \
  --max-length 64 --seed 42 --overwrite

echo "== textarmor evaluate on SST-2 dev (872 sentences), threshold 0.8"
textarmor evaluate "$OUT" --data builtin:sst2-dev --threshold 0.8 --out "$OUT/dev_metrics.json"

echo "== textarmor predict with --threshold 0.8 (uncertain predictions get label null)"
printf '%s\n' \
  "a gripping, beautifully acted film that stays with you" \
  "the plot is a tedious mess and the jokes fall flat" \
  "it is a movie about a man and his dog" \
  "not bad at all , if you can forgive the ending" \
  | textarmor predict "$OUT" - --threshold 0.8

elapsed=$(( $(date +%s) - start ))
acc=$(python -c "import json;print(f\"{json.load(open('$OUT/dev_metrics.json'))['accuracy']:.4f}\")")
echo "== done in ${elapsed}s: dev accuracy ${acc}; model at ${OUT} (Hugging Face layout + textarmor.json)"
