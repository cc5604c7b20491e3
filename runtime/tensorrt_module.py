"""Find TensorRT's Python module: full TensorRT (``tensorrt``) or TensorRT-RTX (``tensorrt_rtx``).

Both expose the same builder API for what sparsetrt uses, so one code path serves them; this module is the
single place that picks one and works around a packaging quirk of TensorRT-RTX's wheel.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

_CANDIDATES = ("tensorrt", "tensorrt_rtx")


class TensorRTNotFoundError(ImportError):
    pass


def _fix_rtx_parser_link(libs_dir: Path) -> None:
    """TensorRT-RTX's ONNX parser dlopens ``libtensorrt_rtx.so`` while the wheel ships only
    ``libtensorrt_rtx.so.1``; without the unversioned name, parsing a custom op aborts the process."""
    link, target = libs_dir / "libtensorrt_rtx.so", libs_dir / "libtensorrt_rtx.so.1"
    if link.exists() or not target.exists():
        return
    try:
        os.symlink(target.name, link)
    except FileExistsError:  # another process made it meanwhile
        pass
    except OSError as e:
        raise TensorRTNotFoundError(
            f"TensorRT-RTX's ONNX parser needs {link} (a link to {target.name}) and it could not be made "
            f"({e}); create it once with: ln -s {target.name} {link}"
        ) from e


def load_tensorrt(prefer: str | None = None) -> ModuleType:
    """Import ``tensorrt`` or else ``tensorrt_rtx`` (or only ``prefer``), ready to parse sparsetrt files."""
    names = (prefer,) if prefer else _CANDIDATES
    errors = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            errors.append(f"{name}: {e}")
            continue
        if name == "tensorrt_rtx":
            libs = importlib.import_module("tensorrt_rtx_libs")
            _fix_rtx_parser_link(Path(libs.__file__).parent)
        return module
    raise TensorRTNotFoundError(
        "Neither TensorRT nor TensorRT-RTX is installed (" + "; ".join(errors) + "). Install TensorRT from "
        "NVIDIA, or TensorRT-RTX with: pip install tensorrt-rtx-cu13==1.7.1.116"
    )


def is_rtx(trt: ModuleType) -> bool:
    return trt.__name__ == "tensorrt_rtx"
