#!/usr/bin/env bash
# Every GPU check of this project in one run, for a machine with an NVIDIA GPU where
# onnxruntime lists CUDAExecutionProvider (also runs on a CPU-only machine: the GPU tests
# skip and say why, the benches print their CPU rows).
#
#   bench/gpu_check.sh [OUT_DIR] [R50.onnx]
#
# Writes OUT_DIR/gpu_tests.log, OUT_DIR/bench_demo.log, OUT_DIR/bench_r50.log (when an R50
# model is given) and OUT_DIR/bench_pipeline.log, and prints them as it goes. PYTHON picks the
# interpreter (default: .venv/bin/python when there is one, else python3). pytest runs with
# -c /dev/null: the project's pytest settings name pytest-qt, which a GPU machine may lack.
# About 4 minutes with the demo model alone on an H200; add 2-3 for an R50 model.
set -u
out=${1:-gpu-check}
r50=${2:-}
mkdir -p "$out"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1
step() { echo; echo "== $1"; }

step "GPU tests (tests/model/test_gpu.py, tests/model/test_fixed_shapes.py)"
timeout 300 "$PYTHON" -m pytest -c /dev/null --rootdir . -p no:cacheprovider -q -rs \
  tests/model/test_gpu.py tests/model/test_fixed_shapes.py 2>&1 | tee "$out/gpu_tests.log"

step "bench_gpu: demo model, 640 px"
timeout 420 "$PYTHON" bench/bench_gpu.py --model resources/demo_model.onnx --size 640 --runs 50 \
  --detect-images 300 --batches 1,8,32 2>&1 | tee "$out/bench_demo.log"

if [ -n "$r50" ] && [ -f "$r50" ]; then
  step "bench_gpu: $r50, 640 px"
  timeout 420 "$PYTHON" bench/bench_gpu.py --model "$r50" --size 640 --runs 30 \
    --detect-images 300 --batches 8,32 2>&1 | tee "$out/bench_r50.log"
fi

step "bench_pipeline: the host's ceiling for detect"
timeout 240 "$PYTHON" bench/bench_pipeline.py --batches 8,32 --rounds 2 2>&1 | tee "$out/bench_pipeline.log"
