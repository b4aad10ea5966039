#!/usr/bin/env bash
# Download the wheels of benchmarks/device/wheels.txt into .whl/ (ignored by git) for the lent
# GPU machine: Python 3.12 on x86-64 Linux, no package index there.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
platforms=()
for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
grep -v '^#' benchmarks/device/wheels.txt | while read -r spec; do
  [ -n "$spec" ] || continue
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" --platform manylinux2014_x86_64 --platform any \
    -d .whl "$spec" 2>/dev/null ||
    # Published as a source archive only (all pure Python here): build its wheel.
    python3 -m pip wheel -q --no-deps -w .whl "$spec"
done
du -sh .whl
