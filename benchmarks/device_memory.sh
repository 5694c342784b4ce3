#!/usr/bin/env bash
# The GPU machine's check of the training rules' memory and time (issue #23), in one run of at most 9 minutes:
#
#   1. tests/test_cuda.py, the training-rule tests: every rule's updates on CUDA equal its CPU updates, the CUDA
#      allocator shows BPTT growing with T and SLTT flat, the train CLI on CUDA;
#   2. benchmarks/bench_gpu.py on CUDA: every rule on VGG-11 at batch 64, T = 4, 8, 16, activation and whole
#      training memory and time; the SLTT paper's settings (SLTT/BPTT, OTTT/SLTT, whole basis); RevSNN vs depth;
#   3. benchmarks/bench_gpu.py --device cpu --memory-only: the same VGG-11 memory table on the CPU allocator
#      (16 cores), every rule but STDL (its auxiliary copies make it the slowest by far) and the reversible node.
#
# Run from the repository root on the device:  OUT=/some/folder bash benchmarks/device_memory.sh
# hwsim is installed first (pip install --no-deps --no-build-isolation --ignore-requires-python -e .).
# Everything lands under $OUT: one log per stage, the benchmarks' JSON and Markdown, summary.txt.

set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device_memory_out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
: >"$OUT/summary.txt"
export PYTHONUNBUFFERED=1

stage() {  # stage NAME LIMIT COMMAND...
    local name=$1 limit=$2 began rc
    shift 2
    began=$(date +%s)
    echo "=== $name (limit ${limit} s): $*" | tee "$OUT/$name.log"
    timeout --kill-after=10 "$limit" "$@" >>"$OUT/$name.log" 2>&1
    rc=$?
    tail -n 40 "$OUT/$name.log"
    echo "$name rc=$rc seconds=$(($(date +%s) - began))" | tee -a "$OUT/summary.txt"
}

$PY -m pip install -q --no-deps --no-build-isolation --ignore-requires-python -e . >"$OUT/install.log" 2>&1 \
    || { echo "install failed"; tail -n 20 "$OUT/install.log"; }
$PY -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name())" \
    | tee "$OUT/environment.txt"
stage tests 120 "$PY" -m pytest -q -x -rfEs -p no:cacheprovider tests/test_cuda.py -k "not torch_engine"
stage gpu 180 "$PY" benchmarks/bench_gpu.py --json "$OUT/gpu.json" --markdown "$OUT/gpu.md"
stage cpu 210 "$PY" benchmarks/bench_gpu.py --device cpu --memory-only --repeats 1 \
    --rules bptt sltt sltt_k ottt_a ottt_o ttl_bptt --json "$OUT/cpu.json" --markdown "$OUT/cpu.md"
cat "$OUT/summary.txt"
