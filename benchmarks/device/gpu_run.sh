#!/usr/bin/env bash
# Issue 19 on a lent GPU machine as ONE device call that fits a time budget:
#   here:  benchmarks/device/fetch_wheels.sh                       (-> .whl/, ignored by git)
#   there: bash benchmarks/device/gpu_run.sh [BUDGET_S]            (carry: .whl; default 468)
# Stages in order of value, each under `timeout` for at most its cap and never past the budget;
# a stage that would get less than its minimum is skipped, so what ran comes back even when a
# stage is cut:
#   1. sizing      sizing_accuracy.py --device cuda --ship: the Llama-3.1-8B shape, eager and
#                  compiled, batch 1 and 8, shipped run by run into measurements.jsonl
#   2. throughput  eval_throughput.py at the Llama-2-7B shape, batch 1 and 8, against lm-eval's
#                  HF backend and the copy-bandwidth roofline, with a profile of one batch-1 item
#   3. tests       the evaluation GPU tests (the fine-tuning ones passed there on 2026-12-04)
#   4. sizing2     a second real shape (Qwen2.5-7B), eager only, shipped
# $OUT gets at most 8 files: driver.log (machine, stage times), sizing.log, sizing_runs.jsonl,
# measurements.jsonl, throughput.log, throughput.jsonl, gpu_tests.log.
# A dry run here on the CPU: PY=.venv/bin/python WHEELS=0 SHIP= OUT=/tmp/x SIZING_ARGS=...
# THROUGHPUT_ARGS=... SIZING2_ARGS=... bash benchmarks/device/gpu_run.sh 300
set -uo pipefail
cd "$(dirname "$0")/../.."
BUDGET=${1:-468}
START=$SECONDS
OUT=${OUT:-/tmp/llmselect-gpu}
PY=${PY:-python3}
SHIP=${SHIP---ship}
SIZING_ARGS=${SIZING_ARGS:---device cuda --new 64}
SIZING2_ARGS=${SIZING2_ARGS:---device cuda --new 64 --model Qwen/Qwen2.5-7B --engines transformers-eager}
THROUGHPUT_ARGS=${THROUGHPUT_ARGS:---shape 7b --device cuda --batch-size 1,8 --items 4,16 --max-tokens 64 --prompt-tokens 64-160 --repeats 1 --warmup batch --roofline --profile --workdir /tmp/bench}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 COLUMNS=160 TOKENIZERS_PARALLELISM=false

log() { echo "[$((SECONDS - START))s] $*" | tee -a "$OUT/driver.log"; }
left() { echo $((BUDGET - (SECONDS - START))); }

# stage NAME CAP MIN LOGFILE COMMAND...: COMMAND under timeout min(CAP, time left), logged.
stage() {
  local name=$1 cap=$2 min=$3 file=$4
  shift 4
  local limit
  limit=$(left)
  ((limit > cap)) && limit=$cap
  if ((limit < min)); then
    log "skip $name: ${limit}s left, it needs ${min}s"
    return
  fi
  log "start $name (timeout ${limit}s): $*"
  local began=$SECONDS
  timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$OUT/$file"
  log "end $name: exit ${PIPESTATUS[0]} after $((SECONDS - began))s"
}

if [[ ${WHEELS:-1} == 1 ]]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="$PWD/src:/tmp/site"
else
  export PYTHONPATH="$PWD/src"
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem \
    --format=csv 2>&1 || true
  "$PY" -c "import torch, transformers, lm_eval, sys; print('python', sys.version.split()[0], \
'torch', torch.__version__, 'transformers', transformers.__version__, 'lm_eval', \
lm_eval.__version__)"
  echo "kernel $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  date -u
} 2>&1 | tee -a "$OUT/driver.log"
log "setup done"

copy_measurements() { cp src/llmselect/sizing/data/measurements.jsonl "$OUT/measurements.jsonl"; }

# shellcheck disable=SC2086  # the *_ARGS are word lists
stage sizing 185 60 sizing.log "$PY" benchmarks/sizing_accuracy.py $SIZING_ARGS $SHIP \
  --runs-jsonl "$OUT/sizing_runs.jsonl"
copy_measurements
# shellcheck disable=SC2086
TORCH_LOGS=recompiles,graph_breaks stage throughput 235 90 throughput.log \
  "$PY" benchmarks/eval_throughput.py $THROUGHPUT_ARGS --json "$OUT/throughput.jsonl"
stage tests 100 40 gpu_tests.log "$PY" -m pytest -q -p no:cacheprovider -m gpu \
  tests/evaluation/test_local_generation.py tests/evaluation/test_eval_latency.py
# shellcheck disable=SC2086
stage sizing2 70 45 sizing.log "$PY" benchmarks/sizing_accuracy.py $SIZING2_ARGS $SHIP \
  --runs-jsonl "$OUT/sizing_runs.jsonl"
copy_measurements
log "done"
