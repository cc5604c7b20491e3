"""What a model takes and returns, read once from its ONNX file, and the input checks every runtime shares.

``ModelSpec.from_onnx`` finds the roles of the graph's tensors: which int input holds voxel coordinates
(it feeds a rulebook or a Densify) and on which grid, the batch size baked into the file, and which
outputs are sparse (features and the coordinates of the same sites, which pair up by site set). An
engine carries none of this, so ``sparsetrt build`` saves the spec beside it (``<engine>.json``) with the
engine's optimization profile.

``validate_inputs`` checks a feed against a spec before any GPU work: names, dtypes, ranks, channel
counts, equal voxel counts across inputs, the profile's voxel range, coordinates inside the grid and no
site twice. Every failure is an ``InputError`` naming the input and what to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx
import torch
from onnx import helper

from sparsetrt.errors import InputError, ModelError
from sparsetrt.exporter.backend.coords import check_indices
from sparsetrt.exporter.schema import DOMAIN

_RULEBOOKS_ON_SITES = ("SubmRulebook", "SparseRulebook")  # input 0 is a set of sites
_PASSTHROUGH = ("Cast", "Identity")
# Ops whose output size TensorRT learns only by running them (a size tensor it reads back mid-run): our
# SparseRulebook (the sites a strided or transposed conv creates) and ONNX's data-dependent-shape ops.
DATA_DEPENDENT_OPS = {DOMAIN: ("SparseRulebook",), "": ("NonZero", "NonMaxSuppression", "Unique", "Compress")}


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output.

    ``shape`` holds ints for static dims and names for dynamic ones (the ONNX dim_param, ``"?"`` when
    unnamed); inputs sharing a dim name must agree on its size. ``role`` is ``"coords"`` (voxel
    coordinates), ``"features"`` (per-site features) or ``"dense"``/``"other"``. ``sites`` names the site
    set of a sparse output (or input): features and coords with the same ``sites`` describe the same rows.
    """

    name: str
    dtype: str
    shape: tuple[int | str, ...]
    role: str = "other"
    spatial_shape: tuple[int, ...] | None = None
    sites: str | None = None

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)


@dataclass
class ModelSpec:
    """Inputs and outputs of a model; ``profile`` maps input names to (min, opt, max) shapes of an engine.
    ``data_dependent`` names the nodes whose output size depends on the data (TensorRT synchronizes inside the
    engine to read it, so full TensorRT cannot replay the engine as a CUDA graph); None when unknown."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    batch_size: int | None = None
    profile: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    data_dependent: list[str] | None = None

    def input(self, name: str) -> TensorSpec:
        for t in self.inputs:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    # ------------------------------------------------------------------------------------ from ONNX
    @classmethod
    def from_onnx(cls, model: str | os.PathLike | onnx.ModelProto) -> ModelSpec:
        if isinstance(model, onnx.ModelProto):
            proto = model
        else:
            from .build import load_onnx  # (build imports this module)

            proto = load_onnx(model)
        return _OnnxReader(proto.graph).spec()

    # ------------------------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": [asdict(t) for t in self.inputs],
            "outputs": [asdict(t) for t in self.outputs],
            "batch_size": self.batch_size,
            "profile": {k: [list(s) for s in v] for k, v in self.profile.items()},
            "data_dependent": self.data_dependent,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelSpec:
        def tensor(d: Mapping[str, Any]) -> TensorSpec:
            spatial = d.get("spatial_shape")
            return TensorSpec(
                name=d["name"],
                dtype=d["dtype"],
                shape=tuple(d["shape"]),
                role=d.get("role", "other"),
                spatial_shape=tuple(spatial) if spatial is not None else None,
                sites=d.get("sites"),
            )

        profile = {k: tuple(tuple(int(x) for x in s) for s in v) for k, v in data.get("profile", {}).items()}
        return cls(
            inputs=[tensor(t) for t in data["inputs"]],
            outputs=[tensor(t) for t in data["outputs"]],
            batch_size=data.get("batch_size"),
            profile=profile,  # type: ignore[arg-type]
            data_dependent=data.get("data_dependent"),  # absent in metadata written before it existed: unknown
        )


class _OnnxReader:
    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.initializers = {t.name for t in graph.initializer}
        self.producer = {o: n for n in graph.node for o in n.output if o}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.graph_inputs = {i.name for i in graph.input if i.name not in self.initializers}
        self.input_sites: dict[str, str] = {}  # graph input -> the coords input naming its rows (set in spec())

    @staticmethod
    def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def _site_users(self, name: str) -> list[tuple[onnx.NodeProto, int]]:
        """(node, input slot) of the sparsetrt nodes reading ``name`` as a set of sites, through Casts."""
        found, todo, seen = [], [name], set()
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            for node in self.consumers.get(t, []):
                if node.domain == DOMAIN:
                    for slot, i in enumerate(node.input):
                        if i == t and (
                            (node.op_type in _RULEBOOKS_ON_SITES and slot == 0)
                            or (node.op_type == "Densify" and slot == 1)
                            or (node.op_type == "InverseRulebook" and slot == 1)
                        ):
                            found.append((node, slot))
                elif node.op_type in _PASSTHROUGH:
                    todo.extend(o for o in node.output if o)
        return found

    def site_source(self, name: str) -> str | None:
        """The tensor whose rows are the sites of ``name``'s rows (a graph input or a SparseRulebook's
        ``out_indices``), or None when ``name`` is not per-site (a dense map, a scalar...)."""
        seen: set[str] = set()
        t: str | None = name
        while t is not None and t not in seen:
            seen.add(t)
            if t in self.graph_inputs:
                return self.input_sites.get(t)  # per-site only if it is coordinates or their features
            node = self.producer.get(t)
            if node is None:
                return None
            if node.domain == DOMAIN:
                if node.op_type in ("SparseConv", "SparseMaxPool"):
                    t = self._rulebook_sites(node.input[1])  # then resolved like any site tensor
                    continue
                if node.op_type == "SparseRulebook" and t == node.output[0]:
                    return t
                return None
            # A standard op on per-site rows (activation, residual add, channel concat, cast) keeps the rows
            # of its first non-constant input.
            t = next((i for i in node.input if i and i not in self.initializers), None)
        return None

    def _rulebook_sites(self, neighbors: str) -> str | None:
        """The site tensor that the outputs of a conv reading rulebook ``neighbors`` live on."""
        node = self.producer.get(neighbors)
        if node is None or node.domain != DOMAIN:
            return None
        if node.op_type == "ConvPlan":  # the plan's columns are the map's, reordered: the same sites
            return self._rulebook_sites(node.input[0])
        if node.op_type == "SubmRulebook":
            return node.input[0]
        if node.op_type == "SparseRulebook":
            return node.output[0]
        if node.op_type == "InverseRulebook":
            return node.input[1]
        return None

    @staticmethod
    def _tensor(value: onnx.ValueInfoProto) -> tuple[str, tuple[int | str, ...]]:
        tt = value.type.tensor_type
        try:
            dtype = str(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        except (KeyError, ValueError, TypeError):
            raise ModelError(
                f"graph input/output {value.name!r} has no tensor type numpy knows (elem_type {tt.elem_type}); "
                "sparsetrt runs models whose inputs and outputs are typed tensors"
            ) from None
        dims: list[int | str] = []
        for d in tt.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
        return dtype, tuple(dims)

    def spec(self) -> ModelSpec:
        # Densify and (schema >= batch_size on rulebooks) SparseRulebook record the batch size baked in at export.
        batch_sizes = {
            attrs["batch_size"]
            for n in self.graph.node
            if n.domain == DOMAIN and isinstance((attrs := self._attrs(n)).get("batch_size"), int)
        }
        inputs = []
        for value in self.graph.input:
            if value.name in self.initializers:
                continue
            dtype, shape = self._tensor(value)
            users = self._site_users(value.name)
            # (Malformed attributes are the schema check's to report, not this reader's: skip them.)
            grids = [self._attrs(n).get("spatial_shape") for n, _ in users if n.op_type != "InverseRulebook"]
            shapes = [tuple(g) for g in grids if isinstance(g, list) and all(isinstance(v, int) for v in g)]
            if users and np.dtype(dtype).kind in "iu":
                inputs.append(
                    TensorSpec(value.name, dtype, shape, "coords", shapes[0] if shapes else None, sites=value.name)
                )
            else:
                inputs.append(TensorSpec(value.name, dtype, shape))
        coords = [t for t in inputs if t.role == "coords"]
        # A float input with the voxel axis of a coords input holds that input's per-site features.
        for k, t in enumerate(inputs):
            if t.role == "other" and np.dtype(t.dtype).kind == "f" and t.shape and isinstance(t.shape[0], str):
                owner = next((c for c in coords if c.shape and c.shape[0] == t.shape[0]), None)
                if owner is not None:
                    inputs[k] = TensorSpec(t.name, t.dtype, t.shape, "features", sites=owner.name)
        self.input_sites = {t.name: t.sites for t in inputs if t.sites is not None}
        outputs = []
        for value in self.graph.output:
            dtype, shape = self._tensor(value)
            sites = self.site_source(value.name) if len(shape) == 2 else None
            if sites is None:
                outputs.append(TensorSpec(value.name, dtype, shape, "dense" if len(shape) > 2 else "other"))
            else:
                role = "coords" if np.dtype(dtype).kind in "iu" else "features"
                outputs.append(TensorSpec(value.name, dtype, shape, role, sites=sites))
        data_dependent = [
            n.name or n.op_type
            for n in self.graph.node
            if n.op_type in DATA_DEPENDENT_OPS.get("" if n.domain in ("", "ai.onnx") else n.domain, ())
        ]
        return ModelSpec(inputs, outputs, batch_sizes.pop() if len(batch_sizes) == 1 else None, {}, data_dependent)


# ---------------------------------------------------------------------------------------------- checks
def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a torch tensor ({value.dtype}, {list(value.shape)}, on {value.device})"
    if isinstance(value, np.ndarray):
        return f"a numpy array ({value.dtype}, {list(value.shape)})"
    return f"a {type(value).__name__}"


def _dtype_of(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return str(value.dtype).removeprefix("torch.")  # "float32", "int32", "bfloat16", ...
    return str(np.asarray(value).dtype)


def _fmt_shape(shape: tuple[int | str, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def validate_inputs(spec: ModelSpec, feed: Mapping[str, Any], *, check_sites: bool = True) -> dict[str, Any]:
    """Check ``feed`` (name -> numpy array or torch tensor) against ``spec``; return it with numpy-like
    values made arrays. Raises ``InputError`` on the first problem found, naming the input."""
    names = set(spec.input_names)
    unknown, missing = sorted(set(feed) - names), sorted(names - set(feed))
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if unknown:
            parts.append(f"unknown {unknown}")
        raise InputError(f"inputs {' and '.join(parts)}: the model takes exactly {spec.input_names}")
    checked: dict[str, Any] = {}
    sizes: dict[str, tuple[int, str]] = {}  # dynamic dim name -> (size, the input that set it)
    for t in spec.inputs:
        value = feed[t.name]
        if not isinstance(value, torch.Tensor):
            try:
                value = np.asarray(value)
            except Exception as e:  # any conversion failure is a problem with the caller's input
                raise InputError(f"input {t.name!r} is {_describe(value)}, not an array: {e}") from e
        dtype = _dtype_of(value)
        if dtype != t.dtype:
            raise InputError(
                f"input {t.name!r} is {dtype}, the model takes {t.dtype}: convert it first "
                f"(numpy: .astype(np.{t.dtype}); torch: .to(torch.{t.dtype}))"
            )
        shape = tuple(int(s) for s in value.shape)
        if len(shape) != len(t.shape):
            raise InputError(
                f"input {t.name!r} has shape {list(shape)}, the model takes {_fmt_shape(t.shape)} "
                f"({len(t.shape)} dims, not {len(shape)})"
            )
        for d, (got, want) in enumerate(zip(shape, t.shape, strict=True)):
            if isinstance(want, int) and got != want:
                what = (
                    f"{got} channels; the model was exported for {want}"
                    if t.role == "features" and d == 1
                    else f"{got} in dim {d}; the model takes {want}"
                    + (" (batch index + one coordinate per spatial dim)" if t.role == "coords" and d == 1 else "")
                )
                raise InputError(f"input {t.name!r} has shape {list(shape)}: {what}")
            if isinstance(want, str) and want != "?":
                if want in sizes and sizes[want][0] != got:
                    other, other_name = sizes[want]
                    raise InputError(
                        f"input {t.name!r} has {got} rows but {other_name!r} has {other}; both are indexed by "
                        f"{want!r} (row i of the features belongs to row i of the coordinates)"
                    )
                sizes.setdefault(want, (got, t.name))
        if t.name in spec.profile:
            low, _, high = spec.profile[t.name]
            for d, (got, lo, hi) in enumerate(zip(shape, low, high, strict=False)):
                if not lo <= got <= hi:
                    what = "voxel count" if d == 0 else f"dim {d}"
                    raise InputError(
                        f"input {t.name!r} has {what} {got}, outside the engine's optimization profile "
                        f"[{lo}, {hi}]: rebuild the engine with `sparsetrt build --voxels MIN:OPT:MAX` covering "
                        f"{got}, or split the input"
                    )
        if check_sites and t.role == "coords" and t.spatial_shape is not None:
            _check_coords(t, value, spec.batch_size)
        checked[t.name] = value
    # Features belong to their coordinates row by row, even where the file does not name the voxel axis.
    for t in spec.inputs:
        if t.role == "features" and t.sites in checked and t.sites != t.name:
            rows, site_rows = int(checked[t.name].shape[0]), int(checked[t.sites].shape[0])
            if rows != site_rows:
                raise InputError(
                    f"input {t.name!r} has {rows} rows but {t.sites!r} has {site_rows}; row i of the features "
                    "belongs to row i of the coordinates: pass one feature row per voxel"
                )
    return checked


def _check_coords(t: TensorSpec, value: Any, batch_size: int | None) -> None:
    coords = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
    spatial = list(t.spatial_shape or ())
    if batch_size is None:
        # The file does not record its batch size (no Densify): any batch index >= 0 is accepted.
        batch_size = int(coords[:, 0].max()) + 1 if coords.shape[0] else 1
        batch_size = max(batch_size, 1)
    try:
        check_indices(coords, spatial, batch_size)
    except ValueError as e:
        raise InputError(f"input {t.name!r}: {e}") from e


def save_spec(path: str | os.PathLike, spec: ModelSpec, **extra: Any) -> None:
    """Write the spec (plus ``extra`` facts, e.g. how an engine was built) as JSON."""
    with open(path, "w") as f:
        json.dump({"sparsetrt_engine_metadata": 1, **extra, "spec": spec.to_json()}, f, indent=2)
        f.write("\n")


def load_spec(path: str | os.PathLike) -> tuple[ModelSpec, dict[str, Any]]:
    """Read what ``save_spec`` wrote; a ``ModelError`` saying what is wrong with the file otherwise."""
    rebuild = "rebuild the engine with `sparsetrt build`, which writes this file beside it"
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ModelError(f"engine metadata {path} does not exist: {rebuild}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"engine metadata {path} is not readable JSON ({e}): {rebuild}") from None
    if not isinstance(data, dict) or not isinstance(data.get("spec"), dict):
        raise ModelError(f"{path} is not sparsetrt engine metadata (no 'spec' object): {rebuild}")
    try:
        spec = ModelSpec.from_json(data["spec"])
        for t in (*spec.inputs, *spec.outputs):
            np.dtype(t.dtype)
            if not isinstance(t.name, str) or not all(isinstance(d, int | str) for d in t.shape):
                raise TypeError(f"tensor {t.name!r} is malformed")
    except (KeyError, TypeError, ValueError) as e:
        what = f"missing key {e}" if isinstance(e, KeyError) else str(e)
        raise ModelError(f"engine metadata {path} is malformed ({what}): {rebuild}") from None
    return spec, {k: v for k, v in data.items() if k != "spec"}
