#!/usr/bin/env bash
# The GPU benchmark as one command, on a GPU machine without TensorRT (and without network):
#   1. builds the CUDA kernel library for this GPU (plugins/test/gpu/run_gpu_checks.sh build), unless
#      $KERNELS_LIB names one already built;
#   2. unpacks spconv 2.3.8 (build/gpu_bench/site.tar.xz, from benchmarks/prepare_gpu_bench.sh) into a temporary
#      folder on PYTHONPATH; without the archive, an importable spconv is used, else its rows say why they are empty;
#   3. runs benchmarks/bench_gpu.py: our kernels on the full-width CenterPoint backbone (KernelSession, per-op CUDA
#      events, rulebooks separate) against spconv and dense torch convs, fp32 and fp16, nuScenes and Waymo frames.
# Writes bench_gpu.{md,json,png} (and the build logs) to $OUT if set, else build/gpu_bench/results.
#
#   benchmarks/run_gpu_bench.sh [bench_gpu.py options, e.g. --repeats 50]
# Environment: PYTHON (python3; needs torch with CUDA, numpy, onnx, onnxruntime, onnx-graphsurgeon), KERNELS_LIB,
# BUILD_DIR (build/gpu_checks).
set -u -o pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
out="${OUT:-$repo/build/gpu_bench/results}"
mkdir -p "$out"
build="${BUILD_DIR:-$repo/build/gpu_checks}"
lib="${KERNELS_LIB:-$build/libsparsetrt_kernels_cuda.so}"
if [ ! -f "$lib" ]; then
  BUILD_DIR="$build" LOG_DIR="$out/logs" bash "$repo/plugins/test/gpu/run_gpu_checks.sh" build || {
    echo "the kernel library did not build: see $out/logs"
    exit 1
  }
fi
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
if [ -f "$repo/build/gpu_bench/site.tar.xz" ]; then
  tar -C "$site" -xJf "$repo/build/gpu_bench/site.tar.xz"
  echo "spconv unpacked from build/gpu_bench/site.tar.xz"
fi
# sparsetrt from this tree: an editable install if it is not importable yet (no dependency is fetched).
if ! "$python" -c "import sparsetrt" 2>/dev/null; then
  "$python" -m pip install --quiet --no-deps --no-build-isolation -e "$repo" || true
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi | tee "$out/nvidia-smi.txt"
"$python" "$repo/benchmarks/bench_gpu.py" --library "$lib" --out "$out" "$@" 2>&1 | tee "$out/bench_gpu.log"
status=${PIPESTATUS[0]}
echo "results in $out (exit $status)"
exit "$status"
