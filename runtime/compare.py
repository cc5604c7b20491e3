"""``check``: run one set of frames through PyTorch, the reference runtime and an engine, and tabulate how far
each output of each runtime is from the first one's.

The runners are polygraphy ``BaseRunner``s and the comparison is polygraphy's ``Comparator`` (its
``SimpleCompareFunc`` with the max statistic); we add what sparse models need:

- Sparse outputs (features with the coordinates of their sites) have an unspecified row order after a
  strided conv, so before comparing, every runtime's sparse outputs are put in one canonical order: rows
  sorted by site (batch, z, y, x). The site sets themselves are compared exactly (the coords output).
- Tolerances are relative to each output's scale: an output passes when
  ``max |out - ref| <= tolerance * max(1, max |ref|)``.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from polygraphy.backend.base import BaseRunner
from polygraphy.comparator import Comparator, SimpleCompareFunc
from polygraphy.comparator.struct import IterationResult, RunResults
from polygraphy.logger import G_LOGGER

from sparsetrt.errors import CheckError
from sparsetrt.exporter.recipe import ExportRecipe

from .reference import ReferenceSession
from .spec import ModelSpec

DEFAULT_TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}


# ---------------------------------------------------------------------------------------------- runners
def _cast_floats(spec: ModelSpec, feed: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The feed in the spec's float types (frames are kept in float32; an fp16 file takes float16)."""
    out = {}
    for t in spec.inputs:
        value = np.asarray(feed[t.name])
        out[t.name] = value.astype(t.dtype) if value.dtype.kind == "f" and t.np_dtype.kind == "f" else value
    return out


class _Runner(BaseRunner):
    def __init__(self, name: str) -> None:
        super().__init__(name=name, prefix=name)

    def activate_impl(self) -> None:
        pass

    def deactivate_impl(self) -> None:
        pass

    def get_input_metadata_impl(self) -> Any:
        from polygraphy.common import TensorMetadata

        meta = TensorMetadata()
        for t in self.spec.inputs:  # type: ignore[attr-defined]
            meta.add(t.name, t.np_dtype, tuple(d if isinstance(d, int) else -1 for d in t.shape))
        return meta

    def _timed(self, fn: Callable[[], dict[str, np.ndarray]]) -> OrderedDict:
        import time

        start = time.perf_counter()
        outputs = fn()
        self.inference_time = time.perf_counter() - start
        return OrderedDict(outputs)


def torch_forward(model: torch.nn.Module, args: Sequence[Any]) -> Any:
    """``model(*args)`` for inference on the CPU: eval mode, no autograd.

    spconv 2.x models get two workarounds for spconv's CPU path: one intra-op thread (its CPU scatter-add
    races with more), and its sparse convs flagged as training for the call (in eval mode the CPU path
    refuses a conv bias; the flag only moves where the bias is added, BatchNorm stays in eval)."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    spconv_convs = []
    if "spconv.pytorch" in sys.modules:
        from spconv.pytorch.conv import SparseConvolution

        spconv_convs = [m for m in model.modules() if isinstance(m, SparseConvolution)]
    threads = torch.get_num_threads()
    try:
        for m in spconv_convs:
            m.training = True
        if spconv_convs:
            torch.set_num_threads(1)
        with torch.no_grad():
            return model(*args)
    finally:
        torch.set_num_threads(threads)
        for m, flag in flags:
            m.training = flag


class TorchRunner(_Runner):
    """The recipe's PyTorch model on the CPU; the feed replaces the recipe's tensor arguments in order."""

    def __init__(self, recipe: ExportRecipe, spec: ModelSpec) -> None:
        super().__init__("pytorch")
        self.recipe, self.spec = recipe, spec

    def infer_impl(self, feed_dict: Mapping[str, np.ndarray]) -> OrderedDict:
        names = iter(self.recipe.input_names)
        args = []
        for arg in self.recipe.args:
            if isinstance(arg, torch.Tensor):
                value = torch.from_numpy(np.ascontiguousarray(feed_dict[next(names)]))
                args.append(value.to(arg.dtype))
            else:
                args.append(arg)

        def run() -> dict[str, np.ndarray]:
            out = torch_forward(self.recipe.model, args)
            outs = list(out) if isinstance(out, tuple | list) else [out]
            if len(outs) != len(self.recipe.output_names):
                raise ValueError(
                    f"the model returned {len(outs)} outputs, the recipe names {len(self.recipe.output_names)} "
                    f"({self.recipe.output_names})"
                )
            return {n: o.detach().cpu().numpy() for n, o in zip(self.recipe.output_names, outs, strict=True)}

        return self._timed(run)


class ReferenceRunner(_Runner):
    def __init__(self, session: ReferenceSession, spec: ModelSpec) -> None:
        super().__init__("reference")
        self.session, self.spec = session, spec

    def infer_impl(self, feed_dict: Mapping[str, np.ndarray]) -> OrderedDict:
        feed = _cast_floats(self.spec, feed_dict)
        names = self.spec.output_names
        return self._timed(lambda: dict(zip(names, self.session.run(names, feed), strict=True)))


class EngineRunner(_Runner):
    def __init__(self, session: Any) -> None:  # an EngineSession
        super().__init__("engine")
        self.session, self.spec = session, session.spec

    def infer_impl(self, feed_dict: Mapping[str, np.ndarray]) -> OrderedDict:
        feed = _cast_floats(self.spec, feed_dict)
        return self._timed(lambda: {k: v.cpu().numpy() for k, v in self.session.run(feed).items()})


# ---------------------------------------------------------------------------------------------- frames
def derived_frames(feed: Mapping[str, np.ndarray], spec: ModelSpec, count: int, seed: int = 0) -> list[dict]:
    """``count`` more frames from one: a random 60-95 % of its voxels (same rows of every input indexed by
    the voxel count) with features scaled by a random factor per channel. Sites stay unique and inside the
    grid, and the voxel count changes, so a check also exercises the dynamic axis."""
    rng = np.random.default_rng(seed)
    voxel_inputs = [t for t in spec.inputs if t.shape and isinstance(t.shape[0], str)]
    if not voxel_inputs:
        return []
    n = int(np.asarray(feed[voxel_inputs[0].name]).shape[0])
    frames = []
    for _ in range(count):
        keep = np.sort(rng.choice(n, size=max(1, int(n * rng.uniform(0.6, 0.95))), replace=False))
        frame = {}
        for t in spec.inputs:
            value = np.asarray(feed[t.name])
            if t in voxel_inputs:
                value = value[keep]
                if value.dtype.kind == "f":
                    value = (value * rng.uniform(0.5, 1.5, size=value.shape[1:])).astype(value.dtype)
            frame[t.name] = value
        frames.append(frame)
    return frames


# ---------------------------------------------------------------------------------------------- canonical
def canonical_order(spec: ModelSpec) -> Callable[[IterationResult], IterationResult]:
    """A polygraphy postprocess function sorting the rows of each sparse output pair by site."""
    coords_of = {t.sites: t.name for t in spec.outputs if t.role == "coords"}
    members: dict[str, list[str]] = {}
    for t in spec.outputs:
        if t.role in ("coords", "features") and t.sites in coords_of:
            members.setdefault(coords_of[t.sites], []).append(t.name)

    def sort_sites(result: IterationResult) -> IterationResult:
        for coords_name, names in members.items():
            if coords_name not in result:
                continue
            coords = np.asarray(result[coords_name])
            if coords.ndim != 2:
                continue
            order = np.lexsort(coords.T[::-1])  # by batch, then each coordinate in turn
            for name in names:
                value = np.asarray(result[name])
                if value.ndim >= 1 and value.shape[0] == coords.shape[0]:
                    result[name] = value[order]
        return result

    return sort_sites


# ---------------------------------------------------------------------------------------------- check
@dataclass
class CheckRow:
    runtime: str
    reference: str
    output: str
    frame: int
    shape: str
    max_abs: float
    scale: float
    tolerance: float
    passed: bool
    note: str = ""

    @property
    def relative(self) -> float:
        return self.max_abs / max(self.scale, 1.0)


def check(
    runners: Sequence[BaseRunner],
    frames: Iterable[Mapping[str, np.ndarray]],
    spec: ModelSpec,
    tolerance: float | Mapping[str, float],
) -> list[CheckRow]:
    """Run ``frames`` through every runner; compare each runner after the first with the first."""
    from polygraphy.exception import PolygraphyException

    frames = [OrderedDict(f) for f in frames]
    try:
        with G_LOGGER.verbosity(G_LOGGER.CRITICAL):
            results = Comparator.run(list(runners), data_loader=frames)
            results = Comparator.postprocess(results, canonical_order(spec))
    except PolygraphyException as e:  # polygraphy's own failures carry its message; make them ours
        raise CheckError(f"running the comparison failed: {e}") from e
    first_name, first = results[0]
    rows: list[CheckRow] = []
    for name, iterations in list(results)[1:]:
        for frame, (ref, got) in enumerate(zip(first, iterations, strict=True)):
            rows.extend(_compare(first_name, name, frame, ref, got, spec, tolerance))
    return rows


def _tolerance(tolerance: float | Mapping[str, float], output: str) -> float:
    return float(tolerance) if not isinstance(tolerance, Mapping) else float(tolerance.get(output, tolerance[""]))


def _compare(
    ref_name: str,
    name: str,
    frame: int,
    ref: IterationResult,
    got: IterationResult,
    spec: ModelSpec,
    tolerance: float | Mapping[str, float],
) -> list[CheckRow]:
    pair = RunResults()
    pair.append((ref_name, [ref]))
    pair.append((name, [got]))
    scales, atol = {}, {}
    for out in spec.output_names:
        if out not in ref:
            continue
        value = np.asarray(ref[out])
        scales[out] = float(np.abs(value.astype(np.float64)).max()) if value.size else 0.0
        # Coordinates must match exactly; features within tolerance of their scale.
        atol[out] = 0.0 if value.dtype.kind in "iu" else _tolerance(tolerance, out) * max(scales[out], 1.0)
    atol[""] = 0.0
    # Relative differences divide by zeros of the reference; we judge by absolute error against the scale.
    with G_LOGGER.verbosity(G_LOGGER.CRITICAL), np.errstate(divide="ignore", invalid="ignore"):
        accuracy = Comparator.compare_accuracy(
            pair, compare_func=SimpleCompareFunc(rtol=0.0, atol=atol, check_error_stat="max", check_shapes=True)
        )
    compared = accuracy[0][(ref_name, name)][0]
    rows = []
    for out in spec.output_names:
        if out not in ref or out not in got:
            rows.append(CheckRow(name, ref_name, out, frame, "-", float("nan"), 0.0, 0.0, False, "missing output"))
            continue
        a, b = np.asarray(ref[out]), np.asarray(got[out])
        result = compared.get(out)
        tol = _tolerance(tolerance, out) if a.dtype.kind not in "iu" else 0.0
        if a.shape != b.shape or not hasattr(result, "max_absdiff"):
            note = f"shape {list(b.shape)} != {list(a.shape)}"
            shape = str(list(a.shape))
            rows.append(CheckRow(name, ref_name, out, frame, shape, float("nan"), scales[out], tol, False, note))
            continue
        max_abs = float(result.max_absdiff) if a.size else 0.0
        passed = bool(np.isfinite(max_abs)) and max_abs <= atol[out]
        rows.append(CheckRow(name, ref_name, out, frame, str(list(a.shape)), max_abs, scales[out], tol, passed))
    return rows


def format_table(rows: Sequence[CheckRow]) -> str:
    header = ("runtime", "vs", "output", "frame", "shape", "max |err|", "max |ref|", "err/scale", "tol", "ok")
    body = [
        (
            r.runtime,
            r.reference,
            r.output,
            str(r.frame),
            r.shape,
            f"{r.max_abs:.3e}",
            f"{r.scale:.4g}",
            f"{r.relative:.2e}",
            f"{r.tolerance:.0e}" if r.tolerance else "exact",
            ("yes" if r.passed else "NO") + (f" ({r.note})" if r.note else ""),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)
