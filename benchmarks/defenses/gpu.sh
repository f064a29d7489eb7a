#!/usr/bin/env bash
# The defences benchmark on one GPU: tune, report (--attack-n 300, settings as parallel processes) and
# certify for a standard and a robust model, writing OUT_JSON (not the committed results file), then the table.
#
#   benchmarks/defenses/gpu.sh STANDARD_DIR ROBUST_DIR OUT_JSON "DEVICE_NAME"   (ROBUST_DIR "" for none)
#   e.g. benchmarks/defenses/gpu.sh runs/sst2-minilm runs/sst2-minilm-pgd /tmp/defenses-h100.json "1x H100 80GB, 16 CPU cores"
#
# Environment: PYTHON (default .venv/bin/python), JOBS (report processes, default 6), ATTACK_N (default 300),
# CERTIFY_N (default 300), FAMILIES (tune only these candidate families, space-separated; default all:
# CANDIDATES in run.py).
set -euo pipefail
if [ "$#" -ne 4 ]; then
  sed -n 2,10p "$0" >&2
  exit 2
fi
STANDARD=$(realpath -m "$1") OUT=$(realpath -m "$3") DEVICE=$4  # before the cd below
ROBUST_ARGS=()  # an empty ROBUST_DIR leaves out the robust-model and mix rows
[ -n "$2" ] && ROBUST_ARGS=(--robust-model "$(realpath -m "$2")")
PYTHON=${PYTHON:-.venv/bin/python}
JOBS=${JOBS:-6}
ATTACK_N=${ATTACK_N:-300}
CERTIFY_N=${CERTIFY_N:-300}
cd "$(dirname "$0")/../.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} TOKENIZERS_PARALLELISM=false
RUN=("$PYTHON" benchmarks/defenses/run.py --model "$STANDARD" "${ROBUST_ARGS[@]}" --out "$OUT"
     --tuning "$OUT" --device-name "$DEVICE")
started=$SECONDS
"${RUN[@]}" tune ${FAMILIES:+--families $FAMILIES}
echo "tune: $((SECONDS - started)) s"
"${RUN[@]}" report --attack-n "$ATTACK_N" --jobs "$JOBS" &
report=$!
"${RUN[@]}" certify --certify-n "$CERTIFY_N" --certify-samples 100 --out "${OUT%.json}.certify.json" &
certify=$!
wait "$report"
wait "$certify"
"$PYTHON" benchmarks/defenses/table.py --results "$OUT" --merge "${OUT%.json}.certify.json"
echo "total: $((SECONDS - started)) s"
