"""The project's habits, enforced: ruff (lint and format) over the Python, clang-format over the C++ and CUDA of
plugins/ and examples/ with the one style in .clang-format. Both tools are pinned in the ``test`` extra, so every
machine judges the same way; a failure lists the files and the command that fixes them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPP_SUFFIXES = {".h", ".hpp", ".cpp", ".cu", ".cuh"}


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _tracked(*folders: str) -> list[str]:
    listed = _run("git", "ls-files", "--", *folders)
    if listed.returncode != 0:  # not a git checkout (an sdist): every file under the folders
        return [str(p.relative_to(ROOT)) for f in folders for p in (ROOT / f).rglob("*") if p.is_file()]
    return listed.stdout.split()


def test_ruff_lint() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, f"ruff check (fix: ruff check --fix .):\n{result.stdout}{result.stderr}"


def test_ruff_format() -> None:
    result = _run(sys.executable, "-m", "ruff", "format", "--check", ".")
    assert result.returncode == 0, f"ruff format --check (fix: ruff format .):\n{result.stdout}{result.stderr}"


def test_clang_format() -> None:
    tool = shutil.which("clang-format")
    if tool is None:
        pytest.skip("clang-format is not installed (pip install -e '.[test]' installs the pinned one)")
    files = [f for f in _tracked("plugins", "examples") if Path(f).suffix in CPP_SUFFIXES]
    assert files, "no C++ sources found under plugins/ and examples/"
    result = _run(tool, "--dry-run", "--Werror", *files)
    bad = sorted({line.split(":")[0] for line in result.stderr.splitlines() if "error:" in line})
    assert result.returncode == 0, f"not in the .clang-format style (fix: clang-format -i {' '.join(bad)})"
