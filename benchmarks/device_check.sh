#!/usr/bin/env bash
# The GPU machine's check of the torch engine and the 16-core figures, in one run of at most 8 minutes:
#
#   1. the torch engine's tests on CUDA: tests/test_torch_engine.py with HWSIM_TORCH_DEVICE=cuda and
#      tests/test_cuda.py (training rules and the torch engine on CUDA); without pytest/hypothesis there, the
#      torch engine's tests through their own runner (python -m tests.test_torch_engine);
#   2. benchmarks/bench_gpu_engine.py --device cuda --threads 16 (torch engine vs CPU engine vs a torch loop);
#   3. benchmarks/bench_core.py --skip-lava --threads 16;
#   4. benchmarks/bench_conv.py --quick --threads 16.
#
# Run from the repository root with hwsim installed (pip install --no-deps --ignore-requires-python -e .):
#     OUT=/some/folder bash benchmarks/device_check.sh
# Everything lands under $OUT: one log per stage (<stage>.log), the benchmarks' JSON, environment.txt, and
# summary.txt (stage, exit code, seconds; 124 = stopped by its time limit). Each stage may use the time left
# minus what the later stages are guaranteed (CAPS below), so the whole run ends within TOTAL seconds.
# Exit code: 0 when every stage exited 0, else 1.

set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device_check_out}
PY=${PYTHON:-python}
TOTAL=${DEVICE_CHECK_SECONDS:-465}  # under 8 minutes, with room for start-up and copying $OUT back
mkdir -p "$OUT"
START=$(date +%s)
: >"$OUT/summary.txt"
STAGES=(tests bench_gpu_engine bench_core bench_conv)
declare -A CAPS=([tests]=200 [bench_gpu_engine]=95 [bench_core]=95 [bench_conv]=75)
FAILED=0

# seconds this stage may run: the time left minus what every later stage is guaranteed
limit_for() {
    local stage=$1 later=0 seen=0 s
    for s in "${STAGES[@]}"; do
        if [ "$seen" = 1 ]; then later=$((later + CAPS[$s])); fi
        if [ "$s" = "$stage" ]; then seen=1; fi
    done
    local left=$((TOTAL - ($(date +%s) - START) - later))
    if [ "$left" -lt 10 ]; then left=10; fi
    echo "$left"
}

run_stage() {  # run_stage NAME COMMAND...: runs under its limit, output to $OUT/NAME.log (and the console)
    local name=$1 limit began rc
    shift
    limit=$(limit_for "$name")
    began=$(date +%s)
    echo "=== $name (limit ${limit} s): $*" | tee "$OUT/$name.log"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log"
    rc=${PIPESTATUS[0]}
    echo "$name rc=$rc seconds=$(($(date +%s) - began)) limit=$limit" | tee -a "$OUT/summary.txt"
    if [ "$rc" != 0 ]; then FAILED=1; fi
}

{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(hostname) cores: $(nproc) python: $($PY -V 2>&1)"
    git log -1 --format='commit: %H %s' 2>/dev/null || true
    git status --short 2>/dev/null | head -40
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
    $PY - <<'EOF' 2>&1
import importlib
for name in ("torch", "numba", "numpy", "triton", "pytest", "hypothesis", "hwsim"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as err:  # noqa: BLE001
        print(f"{name} missing ({type(err).__name__}: {err})")
import torch
print("cuda available:", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
EOF
} >"$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

export HWSIM_TORCH_DEVICE=cuda
if $PY -c "import pytest, hypothesis" 2>/dev/null; then
    run_stage tests "$PY" -m pytest -q -rfEs -p no:cacheprovider tests/test_torch_engine.py tests/test_cuda.py
else
    echo "pytest or hypothesis missing: the torch engine's tests through their own runner; tests/test_cuda.py not run" \
        | tee -a "$OUT/summary.txt"
    run_stage tests "$PY" -m tests.test_torch_engine
fi
unset HWSIM_TORCH_DEVICE

run_stage bench_gpu_engine "$PY" benchmarks/bench_gpu_engine.py --device cuda --threads 16 \
    --json "$OUT/bench_gpu_engine.json"
run_stage bench_core "$PY" benchmarks/bench_core.py --skip-lava --threads 16 --json "$OUT/bench_core.json"
run_stage bench_conv "$PY" benchmarks/bench_conv.py --quick --threads 16 --json "$OUT/bench_conv.json"

echo "total seconds=$(($(date +%s) - START)) (budget $TOTAL)" | tee -a "$OUT/summary.txt"
exit "$FAILED"
