#!/usr/bin/env bash
# Prepares, on a machine that reaches PyPI, what benchmarks/run_gpu_bench.sh needs on a GPU machine that reaches
# nothing: spconv 2.3.8 built for CUDA 12.6 (spconv-cu126 with cumm-cu126) and the pure-Python packages it imports
# (pccm, ccimport, lark, pybind11, fire, portalocker), for CPython 3.12 on x86-64 Linux, unpacked and repacked as
# one xz archive:
#
#   benchmarks/prepare_gpu_bench.sh            -> build/gpu_bench/site.tar.xz (about 45 MB)
#
# The wheels themselves are 67 MiB (spconv-cu126 2.3.8, cp312) + 26 MiB (cumm-cu126 0.8.2): more than a 64 MiB
# payload, even spconv alone. Their compiled libraries compress far better under xz (42 MiB for both). build/ is
# git-ignored: carry build/gpu_bench to the GPU machine. Environment: PY_VERSION (default 3.12), XZ_LEVEL (6).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$repo/build/gpu_bench"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out" "$tmp/wheels" "$tmp/site"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "${PY_VERSION:-3.12}" \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$tmp/wheels" spconv-cu126==2.3.8 cumm-cu126==0.8.2
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "${PY_VERSION:-3.12}" \
  -d "$tmp/wheels" pccm ccimport lark pybind11 fire portalocker
ls -l "$tmp/wheels"
for wheel in "$tmp"/wheels/*.whl; do python3 -m zipfile -e "$wheel" "$tmp/site"; done
tar -C "$tmp/site" -cf - . | xz -T0 "-${XZ_LEVEL:-6}" >"$out/site.tar.xz"
ls -l "$out/site.tar.xz"
echo "carry $out to the GPU machine and run benchmarks/run_gpu_bench.sh there"
