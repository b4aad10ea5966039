#!/usr/bin/env bash
# The GPU checks of sizing (issue 4) and evaluation (issue 5) on a lent GPU machine. For one
# call under a time budget, with stages cut or skipped to fit, use gpu_run.sh (issue 19).
#   here:  benchmarks/device/fetch_wheels.sh        (the packages that machine lacks -> .whl/)
#   there: bash benchmarks/device/gpu_check.sh [tests] [sizing] [throughput]   (carry: .whl)
# With no stage named, all three (about 9.5 minutes at most, the timeouts below); a device call
# is capped at 10 minutes, so `tests sizing` then `throughput` in two calls is the safer plan.
# Logs and the shipped measurements come back under $OUT: commit measurements.jsonl into
# src/llmselect/sizing/data/ and the numbers into the README.
# Checked here on 2026-12-03 with the machine's package set (transformers 5.17) on the CPU.
set -uo pipefail
OUT=${OUT:-/tmp/llmselect-gpu}
mkdir -p "$OUT"
stages=${*:-tests sizing throughput}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  date -u
} 2>&1 | tee -a "$OUT/machine.txt"

if [[ " $stages " == *" tests "* ]]; then
  echo "== GPU tests (static cache and compiled step, peak memory, QLoRA)"
  timeout 100 python3 -m pytest -q -p no:cacheprovider -m gpu \
    tests/evaluation/test_local_generation.py tests/evaluation/test_eval_latency.py \
    tests/finetune/test_train.py 2>&1 | tee "$OUT/gpu_tests.log"
fi

if [[ " $stages " == *" sizing "* ]]; then
  echo "== sizing sweep: Llama-3.1-8B shape, eager and compiled, batch 1 and 8 (shipped)"
  timeout 280 python3 benchmarks/sizing_accuracy.py --device cuda --new 64 --ship 2>&1 \
    | tee "$OUT/sizing_sweep.log"
  cp src/llmselect/sizing/data/measurements.jsonl "$OUT/measurements.jsonl"
fi

if [[ " $stages " == *" throughput "* ]]; then
  echo "== generation throughput against lm-evaluation-harness, Llama-2-7B shape"
  timeout 200 python3 benchmarks/eval_throughput.py --shape 7b --device cuda --items 32 \
    --max-tokens 64 --batch-size 8 --prompt-tokens 64-256 --repeats 1 --workdir /tmp/bench \
    2>&1 | tee "$OUT/eval_throughput.log"
fi
