"""Find TensorRT's Python module: full TensorRT (``tensorrt``) or TensorRT-RTX (``tensorrt_rtx``).

Both expose the same builder API for what sparsetrt uses, so one code path serves them; this module is the
single place that picks one and works around a packaging quirk of TensorRT-RTX's wheel.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from sparsetrt.errors import SparsetrtError

_CANDIDATES = ("tensorrt", "tensorrt_rtx")


class TensorRTNotFoundError(SparsetrtError, ImportError):
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


def which_tensorrt(prefer: str | None = None) -> str | None:
    """The module ``load_tensorrt(prefer)`` would import, without importing it (None: neither is installed)."""
    names = (prefer,) if prefer else _CANDIDATES
    return next((name for name in names if importlib.util.find_spec(name) is not None), None)


def is_rtx(trt: ModuleType) -> bool:
    return trt.__name__ == "tensorrt_rtx"


def polygraphy_trt(trt: ModuleType) -> ModuleType:
    """``polygraphy.backend.trt`` working on ``trt``: polygraphy binds its loaders to ``tensorrt`` or
    ``tensorrt_rtx`` once, when that module is first imported, following ``polygraphy.config``."""
    from polygraphy import config
    from polygraphy.logger import G_LOGGER

    want_rtx = is_rtx(trt)
    if "polygraphy.backend.trt" in sys.modules and config.USE_TENSORRT_RTX != want_rtx:
        raise TensorRTNotFoundError(
            f"polygraphy was already set up for {'tensorrt_rtx' if config.USE_TENSORRT_RTX else 'tensorrt'} in this "
            f"process, not {trt.__name__}: use one TensorRT flavour per process (pass the same `prefer`)"
        )
    config.USE_TENSORRT_RTX = want_rtx
    G_LOGGER.colors = False  # else polygraphy prints a hint about the optional `colored` package
    import polygraphy.backend.trt as backend

    return backend


@contextlib.contextmanager
def polygraphy_output(verbose: bool = False) -> Iterator[None]:
    """Route polygraphy's log (it prints to stdout) to stderr, so that stdout keeps only our results;
    show its info messages only when ``verbose``."""
    from polygraphy.logger import G_LOGGER

    previous = G_LOGGER.module_severity
    G_LOGGER.module_severity = G_LOGGER.INFO if verbose else G_LOGGER.WARNING
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        G_LOGGER.module_severity = previous
