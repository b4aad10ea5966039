#!/usr/bin/env bash
# The GPU checks of sizing (issue 4) and evaluation (issue 5) as one run on a lent GPU machine,
# within about nine minutes. Here first: benchmarks/device/fetch_wheels.sh (the packages that
# machine lacks, into .whl/); then run `bash benchmarks/device/gpu_check.sh` there, carrying
# `.whl`. Logs and the shipped measurements come back under $OUT; commit
# measurements.jsonl into src/llmselect/sizing/data/ and the numbers into the README.
set -uo pipefail
OUT=${OUT:-/tmp/llmselect-gpu}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  date -u
} 2>&1 | tee "$OUT/machine.txt"

echo "== 1. GPU tests (static cache, peak memory, QLoRA)"
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu \
  tests/evaluation/test_local_generation.py tests/evaluation/test_eval_latency.py \
  tests/finetune/test_train.py 2>&1 | tee "$OUT/gpu_tests.log"

echo "== 2. sizing sweep: Llama-3.1-8B shape, eager and compiled, batch 1 and 8 (shipped)"
timeout 210 python3 benchmarks/sizing_accuracy.py --device cuda --ship 2>&1 \
  | tee "$OUT/sizing_sweep.log"
cp src/llmselect/sizing/data/measurements.jsonl "$OUT/measurements.jsonl"

echo "== 3. generation throughput against lm-evaluation-harness, Llama-2-7B shape"
timeout 180 python3 benchmarks/eval_throughput.py --shape 7b --device cuda --items 64 \
  --max-tokens 128 --batch-size 8 --prompt-tokens 64-256 --repeats 1 --workdir /tmp/bench 2>&1 \
  | tee "$OUT/eval_throughput.log"
