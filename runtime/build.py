"""Build a TensorRT (or TensorRT-RTX) engine from an exported ONNX file, with polygraphy's loaders.

One code path serves both: the network is always strongly typed (TensorRT-RTX knows no other kind, and
our plugins follow their input's type), so precision lives in the file; ``fp16=True`` converts a float32
file to float16 with the exporter's own pass (range-checked) before parsing. The plugin library goes
into TensorRT's plugin registry before the parser meets our ops. The voxel count, dim 0 of every input
exported with a dynamic first axis, gets one optimization profile (min, opt, max).

TensorRT-RTX builds ahead of time on a machine without a GPU; full TensorRT needs one to build.

Next to ``model.engine`` goes ``model.engine.json``: the model's I/O spec (which input holds coordinates
on which grid, the batch size, sparse output pairs), the profile and how the engine was built. An engine
cannot carry these, and the runtime checks inputs against them before any GPU work.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from sparsetrt.errors import ModelError, SparsetrtError, UsageError
from sparsetrt.exporter.schema import DOMAIN
from sparsetrt.exporter.schema.onnx_registration import add_lookup_attributes

from .plugins import load_plugin_libraries
from .progress import make_progress_monitor
from .spec import ModelSpec, save_spec
from .tensorrt_module import is_rtx, load_tensorrt, polygraphy_output, polygraphy_trt

# min, opt, max voxel counts of the optimization profile, for nuScenes (0.075 m, 10 sweeps) and Waymo (0.1 m)
# frames: OPT near a 10-sweep nuScenes frame (93k in our synthetic ones, 85k-106k in NVIDIA's logged frames);
# MAX above every frame we know of (the largest published nuScenes frame: 128k voxels; OpenPCDet's caps: 160k
# nuScenes, 150k Waymo), up to the 300k a frame may reach. TensorRT sizes its tensors for MAX: measure your own
# frames with `sparsetrt bounds` and build with what it recommends (runtime/bounds.py says why).
DEFAULT_VOXELS = (1, 100_000, 300_000)
MAX_VOXELS = 2**31 - 1  # row indices (neighbour maps, sizes) are int32


class EngineBuildError(SparsetrtError, RuntimeError):
    pass


@dataclass
class BuildResult:
    engine_path: Path
    metadata_path: Path
    seconds: float
    size_bytes: int
    trt_module: str
    trt_version: str
    precision: str
    profile: dict[str, tuple[tuple[int, ...], ...]]
    phases: list[str] = field(default_factory=list)  # TensorRT's build phases, as its progress monitor saw them


def metadata_path(engine_path: str | os.PathLike) -> Path:
    """Where an engine's spec and build facts live: ``<engine>.json``."""
    path = Path(engine_path)
    return path.with_name(path.name + ".json")


def parse_voxels(text: str) -> tuple[int, int, int]:
    """``"MIN:OPT:MAX"`` -> (min, opt, max), checked."""
    parts = text.split(":")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise UsageError(f"--voxels takes MIN:OPT:MAX (three integers, e.g. 1:100000:300000), got {text!r}")
    return check_voxels(values)  # type: ignore[arg-type]


def check_voxels(voxels: Sequence[int]) -> tuple[int, int, int]:
    low, opt, high = (int(v) for v in voxels)
    if not 1 <= low <= opt <= high:
        raise UsageError(
            f"voxel profile {low}:{opt}:{high} must satisfy 1 <= MIN <= OPT <= MAX (OPT is the count TensorRT tunes "
            "for, MAX the most voxels a frame may have)"
        )
    if high > MAX_VOXELS:
        raise UsageError(
            f"voxel profile {low}:{opt}:{high}: MAX must be at most {MAX_VOXELS} (2^31 - 1: TensorRT's shapes and "
            "the plugins' row indices are int32)"
        )
    return low, opt, high


def _profile_shapes(spec: ModelSpec, voxels: tuple[int, int, int]) -> dict[str, tuple[tuple[int, ...], ...]]:
    shapes: dict[str, tuple[tuple[int, ...], ...]] = {}
    for t in spec.inputs:
        dynamic = [d for d, s in enumerate(t.shape) if isinstance(s, str)]
        if any(d != 0 for d in dynamic):
            raise EngineBuildError(
                f"input {t.name!r} has shape {list(t.shape)}: only dim 0 (the voxel count) may be dynamic for "
                "`sparsetrt build`; export with the other dims static (dynamic_axes only on dim 0)"
            )
        static = [int(s) for s in t.shape[1:]] if dynamic else [int(s) for s in t.shape]
        if dynamic:
            shapes[t.name] = tuple((v, *static) for v in voxels)
        else:
            shapes[t.name] = (tuple(static),) * 3
    return shapes


def _precision(proto: onnx.ModelProto) -> str:
    floats = {
        v.type.tensor_type.elem_type
        for v in (*proto.graph.input, *proto.graph.output)
        if v.type.tensor_type.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    }
    return "fp16" if onnx.TensorProto.FLOAT16 in floats else "fp32"


def load_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"ONNX file {path} does not exist (export one with `sparsetrt export`)")
    try:
        return onnx.load(os.fspath(path))
    except Exception as e:  # protobuf's DecodeError and friends: the file is not ONNX
        raise ModelError(f"{path} is not a readable ONNX file: {e}") from e


def build_engine(
    onnx_path: str | os.PathLike,
    engine_path: str | os.PathLike,
    *,
    plugins: Sequence[str | os.PathLike] = (),
    voxels: Sequence[int] = DEFAULT_VOXELS,
    fp16: bool = False,
    workspace_mib: int | None = None,
    timing_cache: str | os.PathLike | None = None,
    compute_capabilities: Sequence[str] | None = None,
    progress: bool = True,
    prefer: str | None = None,
    verbose: bool = False,
    check: bool = True,
) -> BuildResult:
    """Build ``onnx_path`` into a serialized engine at ``engine_path`` (and its ``.json`` metadata).

    ``plugins``: plugin libraries (``libsparsetrt_plugins.so``), required when the file has sparsetrt ops.
    ``voxels``: (min, opt, max) of the voxel count. ``fp16``: build a float32 file in float16.
    ``workspace_mib``: TensorRT's workspace pool limit. ``timing_cache``: a file read before and updated
    after the build. ``compute_capabilities``: TensorRT-RTX only, e.g. ``["8.6", "8.9"]`` (default: its own).
    ``progress``: show TensorRT's build phases on stderr. ``prefer``: ``"tensorrt"`` or ``"tensorrt_rtx"``.
    ``check``: refuse a file whose sparsetrt nodes break the op schema's rules before TensorRT sees it
    (``reference.check_model``: the plugins' own checks, with their messages; TensorRT may abort the process
    on a failed multi-plugin build instead of returning). The tests turn it off to prove the plugins agree.
    """
    voxels = check_voxels(voxels)
    engine_path = Path(engine_path)
    if not engine_path.parent.is_dir():
        raise UsageError(f"cannot write {engine_path}: folder {engine_path.parent} does not exist")
    if workspace_mib is not None and workspace_mib <= 0:
        raise UsageError(f"workspace must be a positive number of MiB, got {workspace_mib}")
    proto = load_onnx(onnx_path)
    if check:
        from .reference import check_model

        check_model(proto)
    source_digest = hashlib.sha256(Path(onnx_path).read_bytes()).hexdigest()
    if fp16 and _precision(proto) == "fp32":
        from sparsetrt.exporter.graph_passes import optimize

        # The exporter's fp16 pass (range-checked): the same file `sparsetrt export --fp16` would write.
        proto = optimize(proto, fold_batchnorm=False, fuse_activations=False, fp16=True)
    # Files exported before nodes carried plugin_namespace / plugin_version: TensorRT 10.3-10.9 find our plugins
    # only through them (docs/deployment.md), so add them to what the parser sees (the file is left alone).
    add_lookup_attributes(proto)
    spec = ModelSpec.from_onnx(proto)
    custom = sorted({n.op_type for n in proto.graph.node if n.domain == DOMAIN})
    if custom and not plugins:
        raise EngineBuildError(
            f"{onnx_path} has sparsetrt ops ({', '.join(custom)}), which TensorRT runs through our plugins: pass the "
            "plugin library, e.g. --plugins build/plugins/libsparsetrt_plugins.so (build it from plugins/)"
        )
    shapes = _profile_shapes(spec, voxels)

    trt = _choose_tensorrt(prefer)
    backend = polygraphy_trt(trt)
    if compute_capabilities and not is_rtx(trt):
        raise EngineBuildError(
            "compute capabilities are a TensorRT-RTX option (full TensorRT builds for the GPU it runs on); "
            "drop --compute-capability or build with TensorRT-RTX (--trt tensorrt_rtx)"
        )
    load_plugin_libraries(trt, plugins)

    profile = backend.Profile()
    for name, (low, opt, high) in shapes.items():
        profile.add(name, low, opt, high)
    monitor = make_progress_monitor(trt) if progress else None
    config_kwargs: dict[str, Any] = {"profiles": [profile]}
    if workspace_mib is not None:
        config_kwargs["memory_pool_limits"] = {trt.MemoryPoolType.WORKSPACE: int(workspace_mib) << 20}
    if timing_cache is not None and Path(timing_cache).is_file():
        config_kwargs["load_timing_cache"] = os.fspath(timing_cache)
    if monitor is not None:
        config_kwargs["progress_monitor"] = monitor
    if is_rtx(trt):
        from polygraphy.backend.tensorrt_rtx import CreateConfigRTX

        capabilities = [_parse_capability(c) for c in compute_capabilities or ()]
        config = CreateConfigRTX(compute_capabilities=capabilities or None, **config_kwargs)
    else:
        config = backend.CreateConfig(**config_kwargs)

    from polygraphy.exception import PolygraphyException

    network = backend.NetworkFromOnnxBytes(proto.SerializeToString(), strongly_typed=True)
    started = time.perf_counter()
    try:
        with polygraphy_output(verbose):
            serialized = backend.EngineBytesFromNetwork(
                network, config, save_timing_cache=os.fspath(timing_cache) if timing_cache else None
            )()
    except PolygraphyException as e:
        nodes = _unparsed_nodes(trt, proto)
        raise EngineBuildError(
            f"TensorRT ({trt.__name__} {trt.__version__}) could not build {onnx_path}: {e}. "
            + (nodes or "TensorRT's own messages are above")
        ) from e
    seconds = time.perf_counter() - started
    data = bytes(serialized)
    engine_path.write_bytes(data)
    meta = metadata_path(engine_path)
    spec.profile = dict(shapes)  # type: ignore[arg-type]
    save_spec(
        meta,
        spec,
        engine=engine_path.name,
        built_with={"module": trt.__name__, "version": trt.__version__},
        precision=_precision(proto),
        voxels=list(voxels),
        plugins=[Path(p).name for p in plugins],
        compute_capabilities=list(compute_capabilities or []),
        source_onnx={"file": Path(onnx_path).name, "sha256": source_digest},
    )
    if timing_cache is not None:
        Path(os.fspath(timing_cache) + ".lock").unlink(missing_ok=True)  # polygraphy's lock file, released
    return BuildResult(
        engine_path=engine_path,
        metadata_path=meta,
        seconds=seconds,
        size_bytes=len(data),
        trt_module=trt.__name__,
        trt_version=trt.__version__,
        precision=_precision(proto),
        profile=shapes,
        phases=list(monitor.seen) if monitor is not None else [],
    )


def _choose_tensorrt(prefer: str | None) -> Any:
    """``prefer``, else: full TensorRT where a GPU is (it builds for that GPU), TensorRT-RTX first where none is
    (only it builds without one)."""
    if prefer is None:
        import torch

        if not torch.cuda.is_available():
            try:
                return load_tensorrt("tensorrt_rtx")
            except ImportError:
                pass
    return load_tensorrt(prefer)


def _unparsed_nodes(trt: Any, proto: onnx.ModelProto) -> str:
    """What TensorRT's ONNX parser refuses, node by node, and what to do about each: a standard op TensorRT has no
    implementation of is the model's (re-export or remove it), a sparsetrt op one is the plugin library's. Empty
    when the file parses (the build failed later)."""
    try:
        logger = trt.Logger(trt.Logger.ERROR)
        network = trt.Builder(logger).create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, logger)
        if parser.parse(proto.SerializeToString()):
            return ""
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
    except Exception:  # an older parser API: TensorRT's own messages above still say it
        return ""
    lines = []
    for error in errors:
        name, op = error.node_name(), error.node_operator()
        node = next((n for n in proto.graph.node if n.name == name), None)
        ours = node is not None and node.domain == DOMAIN
        advice = (
            "a sparsetrt op: check that the plugin library matches this sparsetrt version"
            if ours
            else f"a standard ONNX op this TensorRT cannot run{_detail(error.desc())}: the model must be exported "
            "without it (sparsetrt's exporter turns torch.unique of sites + index_add_ into UniqueSites + "
            "SegmentReduce; see README, 'Export an OpenPCDet or mmdetection3d model')"
        )
        lines.append(f"node '{name}' ({op}): {advice}")
    return "TensorRT's parser refused " + "; ".join(lines) if lines else ""


def _detail(desc: str) -> str:
    return f" ({desc})" if len(desc) > 8 else ""  # the parser often says just "false"


def _parse_capability(text: str) -> tuple[int, int]:
    try:
        major, minor = (int(p) for p in str(text).split("."))
    except ValueError:
        raise UsageError(f"a compute capability is MAJOR.MINOR, e.g. 8.6 or 12.0; got {text!r}") from None
    return major, minor
