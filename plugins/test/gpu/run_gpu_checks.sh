#!/usr/bin/env bash
# Every GPU check of the sparsetrt plugins in one script, for a machine with an NVIDIA GPU:
#   1. configure + build plugins/ for this machine's GPU architecture (Release);
#   2. CTest: host unit tests + the GPU kernel tests (and any GPU test the plugin layer registers);
#   3. the kernel tests again under compute-sanitizer memcheck (leak check on), and the conv kernels
#      (a small case per variant) under racecheck;
#   4. plugin-level GPU tests: every test_plugin_* executable the build produced (see the hook below),
#      plainly and under memcheck; the plugin library itself is built when TensorRT headers are found
#      (set TENSORRT_ROOT);
#   5. the benchmark (a markdown table);
#   6. whole exported networks through the kernels (KernelSession with libsparsetrt_kernels_cuda.so) against
#      the reference runtime, with times: files made by `benchmarks/bench_kernel_session.py export DIR`
#      (MODELS_DIR), which needs spconv; this step needs only Python with torch, onnx and onnxruntime;
#   and a summary. Exits non-zero if any step failed.
#
#   plugins/test/gpu/run_gpu_checks.sh [step ...]    steps: build test plugins models bench memcheck racecheck
#                                                    (default: all, in that order; later steps need build)
# Environment:
#   BUILD_DIR      build folder (default: <repo>/build/gpu_checks; build/ is git-ignored)
#   CUDA_ARCH      CUDA architectures to build for (default: this GPU's, from nvidia-smi, else "native")
#   TENSORRT_ROOT  a TensorRT install (or headers) root: also builds libsparsetrt_plugins.so
#   BENCH_RUNS     timed runs per benchmark row (default 50)
#   JOBS           parallel build jobs (default: all cores)
#   MODELS_DIR     exported networks for the models step (skipped when unset)
#   PYTHON         the Python for the models step (default python3; sparsetrt must be importable)
#   MODELS_REPEATS timed runs per file and frame in the models step (default 5)
#   SANITIZER_TIMEOUT  seconds each compute-sanitizer run may take (default 600)
#   LOG_DIR        where each step's full log goes (default: $BUILD_DIR/logs; also copied to $OUT if that
#                  names a folder, as a remote runner may collect it)
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plugins="$(cd "$here/../.." && pwd)"
repo="$(cd "$plugins/.." && pwd)"
build="${BUILD_DIR:-$repo/build/gpu_checks}"
logs="${LOG_DIR:-$build/logs}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 4)}"

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build test plugins models bench memcheck racecheck)
for s in "${steps[@]}"; do
  case "$s" in build | test | memcheck | racecheck | plugins | models | bench) ;; *)
    echo "unknown step '$s' (steps: build test plugins models bench memcheck racecheck)"
    exit 2
    ;;
  esac
done

declare -a summary=()
failed=0
record() {  # record <step> <status> <detail>
  summary+=("$(printf '%-10s %-5s %s' "$1" "$2" "$3")")
  [ "$2" = FAIL ] && failed=1
}

# run_logged <log name> <command...>: runs it, showing and keeping its output; returns its exit status.
run_logged() {
  local log="$logs/$1.log"
  shift
  echo "+ $*" | tee "$log"
  "$@" 2>&1 | tee -a "$log"
  return "${PIPESTATUS[0]}"
}

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "no NVIDIA GPU visible (nvidia-smi): this script is for a GPU machine"
  exit 1
fi
mkdir -p "$build" "$logs"
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv | tee "$logs/gpu.txt"

nvcc="${CUDACXX:-$(command -v nvcc || true)}"
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
sanitizer="$(command -v compute-sanitizer || true)"
[ -z "$sanitizer" ] && [ -n "$nvcc" ] && [ -x "$(dirname "$nvcc")/compute-sanitizer" ] &&
  sanitizer="$(dirname "$nvcc")/compute-sanitizer"
[ -z "$sanitizer" ] && [ -n "$nvcc" ] && [ -x "$(dirname "$nvcc")/../compute-sanitizer/compute-sanitizer" ] &&
  sanitizer="$(dirname "$nvcc")/../compute-sanitizer/compute-sanitizer"

# This GPU's architecture, e.g. compute_cap 9.0 -> 90 (CMake then builds sm_90 SASS for it).
arch="${CUDA_ARCH:-}"
if [ -z "$arch" ]; then
  cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .')"
  if [[ "$cap" =~ ^[0-9]+$ ]]; then arch="$cap"; else arch=native; fi
fi

want() { local s; for s in "${steps[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

# ------------------------------------------------------------------------------------------- build
if want build; then
  cfg=(cmake -S "$plugins" -B "$build" -DCMAKE_BUILD_TYPE=Release "-DSPARSETRT_CUDA_ARCHITECTURES=$arch")
  [ -n "$nvcc" ] && cfg+=("-DCMAKE_CUDA_COMPILER=$nvcc")
  command -v ninja >/dev/null 2>&1 && [ ! -f "$build/CMakeCache.txt" ] && cfg+=(-G Ninja)
  [ -n "${TENSORRT_ROOT:-}" ] && cfg+=("-DTENSORRT_ROOT=$TENSORRT_ROOT")
  if run_logged configure "${cfg[@]}" && run_logged build cmake --build "$build" --parallel "$jobs"; then
    record build ok "sm arch $arch, $build"
  else
    record build FAIL "see $logs/configure.log and $logs/build.log"
  fi
fi

test_kernels="$build/test/gpu/test_kernels"
bench_kernels="$build/test/gpu/bench_kernels"

sanitize() {  # sanitize <log> <tool args...> -- <command...>
  local log="$1"
  shift
  if [ -z "$sanitizer" ]; then
    echo "compute-sanitizer not found (looked in PATH and next to nvcc)" | tee "$logs/$log.log"
    return 1
  fi
  run_logged "$log" timeout "${SANITIZER_TIMEOUT:-600}" "$sanitizer" --error-exitcode 99 "$@"
}

# -------------------------------------------------------------------------------------------- test
if want test; then
  if run_logged ctest ctest --test-dir "$build" --output-on-failure; then
    if grep -q "kernels_gpu .*Skipped" "$logs/ctest.log"; then
      record test FAIL "kernels_gpu was skipped: the test saw no CUDA device"
    else
      record test ok "CTest: $(grep -E 'tests passed' "$logs/ctest.log" | tail -n1)"
    fi
  else
    record test FAIL "see $logs/ctest.log"
  fi
fi

# ----------------------------------------------------------------------------------------- plugins
# HOOK for the plugin layer: every executable named test_plugin_* anywhere in the build folder is a
# plugin-level GPU test (through the plugins' enqueue paths). Each runs plainly and under memcheck; exit
# code 77 means skipped (e.g. no TensorRT runtime to load), anything else non-zero fails. Nothing to do
# here when the plugin layer adds one: build it into $BUILD_DIR with that name.
if want plugins; then
  if [ -f "$build/libsparsetrt_plugins.so" ]; then
    record plugins ok "libsparsetrt_plugins.so built"
  elif [ -n "${TENSORRT_ROOT:-}" ]; then
    record plugins FAIL "TENSORRT_ROOT is set but libsparsetrt_plugins.so was not built (see $logs/configure.log)"
  else
    record plugins skip "TENSORRT_ROOT not set: plugin library not built"
  fi
  mapfile -t plugin_tests < <(find "$build" -type f -perm -u+x -name 'test_plugin_*' ! -name '*.o' 2>/dev/null | sort)
  [ ${#plugin_tests[@]} -eq 0 ] && record plugins skip "no test_plugin_* executable in $build"
  for t in "${plugin_tests[@]}"; do
    name="$(basename "$t")"
    run_logged "$name" "$t"
    rc=$?
    if [ $rc -eq 77 ]; then
      record "$name" skip "exit 77 (see $logs/$name.log)"
      continue
    elif [ $rc -ne 0 ]; then
      record "$name" FAIL "exit $rc (see $logs/$name.log)"
      continue
    fi
    if sanitize "$name.memcheck" --tool memcheck "$t"; then
      record "$name" ok "and memcheck clean"
    else
      record "$name" FAIL "memcheck (see $logs/$name.memcheck.log)"
    fi
  done
fi

# ------------------------------------------------------------------------------------------ models
if want models; then
  lib="$build/libsparsetrt_kernels_cuda.so"
  if [ -z "${MODELS_DIR:-}" ]; then
    record models skip "MODELS_DIR not set (benchmarks/bench_kernel_session.py export makes it)"
  elif [ ! -f "$lib" ]; then
    record models FAIL "$lib not built"
  elif run_logged models "${PYTHON:-python3}" "$repo/benchmarks/bench_kernel_session.py" run "$MODELS_DIR" \
    --library "$lib" --repeats "${MODELS_REPEATS:-5}"; then
    record models ok "$(tail -n1 "$logs/models.log")"
  else
    record models FAIL "see $logs/models.log"
  fi
fi

# ------------------------------------------------------------------------------------------- bench
if want bench; then
  if [ ! -x "$bench_kernels" ]; then
    record bench FAIL "$bench_kernels not built"
  elif run_logged bench "$bench_kernels" "${BENCH_RUNS:-50}"; then
    record bench ok "table in $logs/bench.log"
  else
    record bench FAIL "see $logs/bench.log"
  fi
fi

# ------------------------------------------------------------------------------- compute-sanitizer
if want memcheck; then
  if [ ! -x "$test_kernels" ]; then
    record memcheck FAIL "$test_kernels not built"
  elif sanitize memcheck --tool memcheck --leak-check full "$test_kernels"; then
    record memcheck ok "$(grep -E 'ERROR SUMMARY' "$logs/memcheck.log" | tail -n1)"
  else
    record memcheck FAIL "see $logs/memcheck.log"
  fi
fi

if want racecheck; then
  # Shared-memory hazards of the conv kernels (the only ones that share memory between threads, besides
  # CUB's): one small case per kernel variant keeps racecheck's slow instrumentation to a few minutes.
  if [ ! -x "$test_kernels" ]; then
    record racecheck FAIL "$test_kernels not built"
  elif sanitize racecheck --tool racecheck --racecheck-report hazard "$test_kernels" conv_quick; then
    record racecheck ok "$(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$logs/racecheck.log" | tail -n1)"
  else
    record racecheck FAIL "see $logs/racecheck.log"
  fi
fi

# ----------------------------------------------------------------------------------------- summary
if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ] && [ "$(cd "$OUT" && pwd)" != "$(cd "$logs" && pwd)" ]; then
  cp "$logs"/*.log "$logs"/*.txt "$OUT"/ 2>/dev/null || true
fi
echo
echo "================ sparsetrt GPU checks: summary ================"
printf '%s\n' "${summary[@]}"
[ -f "$logs/bench.log" ] && want bench && { echo; grep -E '^(\||###)' "$logs/bench.log"; }
echo "logs: $logs"
if [ $failed -ne 0 ]; then
  echo "RESULT: FAIL"
  exit 1
fi
echo "RESULT: ok"
