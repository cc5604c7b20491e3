#!/usr/bin/env python3
"""Check that a build of plugins/ holds GPU code for every CUDA architecture it was configured for.

    python plugins/check_cuda_architectures.py BUILD_DIR [--cuobjdump PATH]

Reads the architecture list from BUILD_DIR/CMakeCache.txt (SPARSETRT_CUDA_ARCHITECTURES, CMake's syntax:
``87-real`` = machine code for sm_87, ``120-virtual`` = PTX for compute_120, ``90`` = both) and lists, with
``cuobjdump --list-elf`` and ``--list-ptx``, what the plugin library (and the kernel library) really hold. A GPU
whose architecture has neither machine code nor a PTX it can compile fails every launch with "no kernel image is
available", so a missing entry is an error (exit 1). ``native`` builds are reported, not compared (the list
depends on the GPUs of the machine that built it).

cuobjdump ships with the CUDA toolkit (next to nvcc) and on PyPI (nvidia-cuda-cuobjdump, a test dependency).
Standard library only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

LIBRARIES = ("libsparsetrt_plugins.so", "libsparsetrt_kernels.a")


def find_cuobjdump() -> str | None:
    """cuobjdump from PATH, next to nvcc, in CUDA_HOME, or from the nvidia-cuda-cuobjdump wheel."""
    found = shutil.which("cuobjdump")
    if found:
        return found
    candidates = []
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(Path(os.path.realpath(nvcc)).parent / "cuobjdump")
    for env in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(env):
            candidates.append(Path(os.environ[env]) / "bin" / "cuobjdump")
    candidates.append(Path("/usr/local/cuda/bin/cuobjdump"))
    spec = importlib.util.find_spec("nvidia")
    for root in spec.submodule_search_locations or [] if spec else []:
        candidates.extend(Path(root).glob("cu*/bin/cuobjdump"))
    return next((str(c) for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def configured(build_dir: Path) -> list[str]:
    cache = (build_dir / "CMakeCache.txt").read_text()
    match = re.search(r"^SPARSETRT_CUDA_ARCHITECTURES:\w+=(.*)$", cache, re.MULTILINE)
    if match is None:
        raise SystemExit(f"{build_dir}/CMakeCache.txt has no SPARSETRT_CUDA_ARCHITECTURES: is it a plugins/ build?")
    return [a for a in match.group(1).split(";") if a]


def local_gpus() -> set[int]:
    """Compute capabilities of this machine's GPUs as sm_ numbers (90 for 9.0), empty without nvidia-smi."""
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True, text=True
        )
    except OSError:
        return set()
    if result.returncode != 0:
        return set()
    return {int(c.replace(".", "")) for c in re.findall(r"\d+\.\d+", result.stdout)}


def expected(archs: list[str]) -> tuple[set[int], set[int]] | None:
    """(sm_ numbers needing machine code, compute_ numbers needing PTX), or None for a list we cannot know
    (all, all-major; native without nvidia-smi). native: machine code for this machine's GPUs."""
    if archs == ["native"]:
        gpus = local_gpus()
        return (gpus, set()) if gpus else None
    elf, ptx = set(), set()
    for arch in archs:
        match = re.fullmatch(r"(\d+)(?:-(real|virtual))?", arch)
        if match is None:
            return None
        number, kind = int(match.group(1)), match.group(2)
        if kind in (None, "real"):
            elf.add(number)
        if kind in (None, "virtual"):
            ptx.add(number)
    return elf, ptx


def held(cuobjdump: str, library: Path) -> tuple[set[int], set[int]]:
    """(sm_ of the ELF images, sm_ of the PTX images) in ``library``."""
    found = []
    for flag in ("--list-elf", "--list-ptx"):
        result = subprocess.run([cuobjdump, flag, str(library)], capture_output=True, text=True)
        if result.returncode != 0 and "file found" not in result.stderr:
            raise SystemExit(f"{cuobjdump} {flag} {library} failed: {result.stderr.strip()}")
        found.append({int(n) for n in re.findall(r"\.sm_(\d+)a?\.(?:cubin|ptx)", result.stdout)})
    return found[0], found[1]


def check(build_dir: Path, cuobjdump: str) -> list[str]:
    """Problems found (empty: every listed architecture is there), after printing what each library holds."""
    archs = configured(build_dir)
    want = expected(archs)
    problems = []
    libraries = [build_dir / name for name in LIBRARIES if (build_dir / name).is_file()]
    if not libraries:
        return [f"{build_dir} holds neither {' nor '.join(LIBRARIES)}: build it first"]
    for library in libraries:
        elf, ptx = held(cuobjdump, library)
        print(f"{library.name}: machine code for sm_{sorted(elf)}, PTX for compute_{sorted(ptx)}")
        if want is None:
            continue
        for kind, need, have in (("machine code (ELF) for sm_", want[0], elf), ("PTX for compute_", want[1], ptx)):
            missing = sorted(need - have)
            if missing:
                problems.append(f"{library.name} lacks {kind}{missing} (configured: {';'.join(archs)})")
    if want is None:
        print(f"configured {';'.join(archs)}: not a fixed list, nothing compared")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--cuobjdump", help="path to cuobjdump (default: found as the docstring says)")
    args = parser.parse_args(argv)
    cuobjdump = args.cuobjdump or find_cuobjdump()
    if cuobjdump is None:
        print("cuobjdump not found: install the CUDA toolkit's, or pip install nvidia-cuda-cuobjdump", file=sys.stderr)
        return 2
    problems = check(args.build_dir, cuobjdump)
    for p in problems:
        print(f"MISSING: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
