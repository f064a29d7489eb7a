#!/usr/bin/env bash
# TextAttack parity benchmark: the same fine-tuned minilm-l6 SST-2 model, the same first N SST-2 dev
# examples, recipes deepwordbug and pwws, TextAttack (own venv) and textarmor run back to back.
#   make bench-attacks        # or: MODEL=runs/sst2 N_DWB=50 N_PWWS=50 bash benchmarks/attacks/run.sh
# Writes benchmarks/results/attack_parity.json and prints the markdown table for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
TA_PY=${TA_PY:-.venv-textattack/bin/python}
MODEL=${MODEL:-runs/attack-bench-sst2}
N_DWB=${N_DWB:-50}
N_PWWS=${N_PWWS:-50}
DATA=src/textarmor/data/sst2_dev.jsonl
ROWS=$(mktemp)
# Per-example logs of TextAttack (one JSON line as each example finishes): a run stopped early still gives a
# row, `.venv-textattack/bin/python benchmarks/attacks/textattack_run.py --row-from-log LOG RECIPE TOOL`.
LOGS=${LOGS:-runs/attack-bench-logs}
mkdir -p "$LOGS"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH=src

if [ ! -f "$MODEL/textarmor.json" ]; then  # the model both tools attack, made by `textarmor train`
  $PY -c "from textarmor.cli import main; main()" train --data builtin:sst2 --model minilm-l6 --out "$MODEL" \
    --epochs 2 --lr 1e-4 --batch-size 32 --max-length 64 --seed 42
fi
# TextAttack reads WordNet through NLTK: point it at the folder textarmor builds from Debian's WordNet,
# and at the stop-word file the Makefile wrote.
WN_ROOT=$($PY -c "from textarmor.attacks.resources import wordnet_data_root; print(wordnet_data_root())")
export NLTK_DATA="$WN_ROOT:$PWD/.venv-textattack/nltk_data"

# TextAttack's model wrapper pads every input to the tokenizer's model_max_length (512 for MiniLM), which
# costs it most of its time; TA_PAD=128 (covers every SST-2 dev text) is the fair setting, and
# TA_DEFAULT_PAD=1 adds a row with TextAttack's default as well.
for spec in "deepwordbug $N_DWB" "pwws $N_PWWS"; do
  set -- $spec
  if [ "${TA_DEFAULT_PAD:-0}" = 1 ]; then
    $TA_PY benchmarks/attacks/textattack_run.py "$MODEL" "$DATA" "$1" "$2" --log "$LOGS/textattack_$1_pad512.jsonl" \
      2>/dev/null | tail -1 >> "$ROWS"
  fi
  $TA_PY benchmarks/attacks/textattack_run.py "$MODEL" "$DATA" "$1" "$2" --max-length "${TA_PAD:-128}" \
    --log "$LOGS/textattack_$1.jsonl" 2>/dev/null | tail -1 >> "$ROWS"
  $PY benchmarks/attacks/textarmor_run.py "$MODEL" "$DATA" "$1" "$2" --device cpu 2>/dev/null | tail -1 >> "$ROWS"
done
$PY benchmarks/attacks/summarize.py "$ROWS" benchmarks/results/attack_parity.json
