"""OpenPCDet and mmdetection3d modules, unedited, as modules of tensors that ``export`` takes.

OpenPCDet's modules read and write a ``batch_dict``; mmdetection3d's middle encoders take ``(voxel_features,
coors, batch_size)`` and may return a dict. ``torch.onnx.export`` takes neither dicts in nor sparse tensors out
("Only tuples, lists and Variables are supported as JIT inputs/outputs"). The adapters here put the tensors into
the dict, run the modules, and return the outputs flattened: a sparse tensor becomes ``<key>.features`` and
``<key>.indices``, a tensor stays itself.

- ``OpenPCDetModules(modules, batch_size, inputs, outputs)``: OpenPCDet modules registered under the attribute
  names their detector gives them (``backbone_3d``, ``map_to_bev_module``, ``backbone_2d``), so the adapter's
  ``state_dict`` keys are the detector checkpoint's (``backbone_3d.conv_input.0.weight``, ...);
- ``MMDet3DModule(module, batch_size, outputs)``: a middle encoder (``middle_encoder`` / ``pts_middle_encoder``);
- ``openpcdet_recipe(config, checkpoint)``: an OpenPCDet config file (``tools/cfgs/...yaml``) and checkpoint to an
  ``ExportRecipe``: the modules built as OpenPCDet builds them (the class named in the config, the grid from
  ``POINT_CLOUD_RANGE`` and ``VOXEL_SIZE``, the input channels from the VFE), their weights taken from the
  checkpoint, a synthetic lidar frame on that grid to trace. ``sparsetrt export cfg.yaml --checkpoint ckpt.pth``
  calls it;
- ``mmdet3d_recipe(config, checkpoint)``: the same for an mmdetection3d config (needs mmengine and mmdet3d).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .convert import convert
from .recipe import ExportRecipe
from .sparse_tensor import is_sparse_tensor

# OpenPCDet's config sections, the attribute its Detector3DTemplate stores each module under, and where the
# module classes live in pcdet.
OPENPCDET_SECTIONS = {
    "BACKBONE_3D": ("backbone_3d", "pcdet.models.backbones_3d"),
    "MAP_TO_BEV": ("map_to_bev_module", "pcdet.models.backbones_2d.map_to_bev"),
    "BACKBONE_2D": ("backbone_2d", "pcdet.models.backbones_2d"),
}
# VFEs whose output is one mean feature per voxel (their width is the point features'), and those whose output
# width is their last filter count; the 2D ones write pillar_features / pillar_coords (b, y, x).
_MEAN_VFES = {"MeanVFE", "DynamicMeanVFE", "DynamicVoxelVFE"}
_FILTER_VFES = {"PillarVFE", "DynamicPillarVFE", "DynamicPillarVFESimple2D"}
_PILLAR_2D_VFES = {"DynamicPillarVFESimple2D"}


def flatten_named(outputs: Mapping[str, Any]) -> tuple[list[str], list[torch.Tensor]]:
    """Names and tensors of ``outputs``: a sparse tensor gives ``<key>.features`` and ``<key>.indices``."""
    names, tensors = [], []
    for key, value in outputs.items():
        if is_sparse_tensor(value):
            names += [f"{key}.features", f"{key}.indices"]
            tensors += [value.features, value.indices]
        elif isinstance(value, torch.Tensor):
            names.append(key)
            tensors.append(value)
        else:
            raise TypeError(
                f"output {key!r} is a {type(value).__name__}; an exported file outputs tensors and sparse tensors "
                "only: choose other outputs"
            )
    return names, tensors


def _lookup(batch_dict: Mapping[str, Any], key: str) -> Any:
    """``batch_dict[key]``, where ``a.b`` reaches into a nested dict (``multi_scale_2d_features.x_conv4``)."""
    value: Any = batch_dict
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            known = sorted(value) if isinstance(value, Mapping) else []
            raise KeyError(f"output {key!r}: no {part!r} in the batch_dict (there: {known})")
        value = value[part]
    return value


def _is_count(value: Any) -> bool:
    """An int, or the 0-D integer tensor the tracer turns an int argument into."""
    if isinstance(value, torch.Tensor):
        return value.dim() == 0 and not value.dtype.is_floating_point
    return isinstance(value, int)


def _exportable(value: Any) -> bool:
    return isinstance(value, torch.Tensor) or is_sparse_tensor(value)


class OpenPCDetModules(nn.Module):
    """OpenPCDet modules run in turn on a ``batch_dict`` built from tensors: ``forward(*inputs)`` -> tensors.

    ``modules`` maps the detector's attribute names to the modules (``{"backbone_3d": VoxelResBackBone8x(...)}``);
    ``inputs`` are the batch_dict keys the tensors go to, in order (``voxel_features``, ``voxel_coords``);
    ``outputs`` the keys returned, ``a.b`` reaching into a nested dict (``None``: the tensors and sparse tensors
    the last module adds, else those inside the dicts it adds; see ``output_names``). ``batch_size`` is fixed, as in
    every exported file.
    """

    def __init__(
        self,
        modules: Mapping[str, nn.Module],
        batch_size: int,
        inputs: Sequence[str] = ("voxel_features", "voxel_coords"),
        outputs: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if not modules:
            raise ValueError("OpenPCDetModules needs at least one module")
        for name, module in modules.items():
            self.add_module(name, module)
        self.order = list(modules)
        self.batch_size = int(batch_size)
        self.inputs = list(inputs)
        self.outputs = None if outputs is None else list(outputs)

    def run(self, *tensors: Any) -> dict[str, Any]:
        """The batch_dict after every module, and the keys the last one added. A trailing int after the tensors
        is the batch size (for callers that pass it, like ``export(adapter, (features, coords, 2), ...)``)."""
        batch_size = self.batch_size
        if len(tensors) == len(self.inputs) + 1 and _is_count(tensors[-1]):
            *tensors, last = tensors
            batch_size = int(last)
        if len(tensors) != len(self.inputs):
            raise TypeError(f"expected {len(self.inputs)} tensors ({', '.join(self.inputs)}), got {len(tensors)}")
        batch_dict: dict[str, Any] = {"batch_size": batch_size, **dict(zip(self.inputs, tensors, strict=True))}
        for name in self.order:
            before = set(batch_dict)
            batch_dict = getattr(self, name)(batch_dict)
            if not isinstance(batch_dict, dict):
                raise TypeError(f"{name} ({type(getattr(self, name)).__name__}) must return its batch_dict")
            added = [k for k in batch_dict if k not in before]
        return {"batch_dict": batch_dict, "added": added}

    def _selected(self, *tensors: Any) -> dict[str, Any]:
        result = self.run(*tensors)
        batch_dict = result["batch_dict"]
        if self.outputs is None:
            # The tensors and sparse tensors the last module added; else those of the dicts it added
            # (PillarRes18BackBone8x writes only multi_scale_2d_features).
            added = {k: batch_dict[k] for k in result["added"]}
            chosen = {k: v for k, v in added.items() if _exportable(v)}
            if not chosen:
                chosen = {
                    f"{k}.{inner}": w
                    for k, v in added.items()
                    if isinstance(v, Mapping)
                    for inner, w in v.items()
                    if _exportable(w)
                }
            return chosen
        return {k: _lookup(batch_dict, k) for k in self.outputs}

    def output_names(self, *example: Any) -> list[str]:
        """The names ``forward``'s outputs get (runs the modules once on ``example``)."""
        with torch.no_grad():
            return flatten_named(self._selected(*example))[0]

    def forward(self, *tensors: Any) -> tuple[torch.Tensor, ...]:
        return tuple(flatten_named(self._selected(*tensors))[1])


class MMDet3DModule(nn.Module):
    """An mmdetection3d middle encoder (``forward(voxel_features, coors, batch_size)``) as ``forward(voxel_features,
    coors)`` -> tensors; a dict output is flattened in its key order (``outputs`` picks keys), a sparse tensor
    becomes features and indices. Its ``state_dict`` keys are the module's under ``prefix`` (mmdetection3d names it
    ``middle_encoder`` or ``pts_middle_encoder``), as in the detector's checkpoint."""

    def __init__(
        self,
        module: nn.Module,
        batch_size: int,
        outputs: Sequence[str] | None = None,
        prefix: str = "middle_encoder",
    ) -> None:
        super().__init__()
        self.add_module(prefix, module)
        self.prefix = prefix
        self.batch_size = int(batch_size)
        self.outputs = None if outputs is None else list(outputs)

    def _named(
        self, voxel_features: torch.Tensor, coors: torch.Tensor, batch_size: int | None = None
    ) -> dict[str, Any]:
        batch_size = self.batch_size if batch_size is None else int(batch_size)
        out = getattr(self, self.prefix)(voxel_features, coors, batch_size)
        if isinstance(out, Mapping):
            keys = self.outputs or [k for k, v in out.items() if _exportable(v)]
            return {k: out[k] for k in keys}
        if isinstance(out, tuple | list):
            return {f"output_{i}": v for i, v in enumerate(out)}
        return {"spatial_features" if isinstance(out, torch.Tensor) else "encoded": out}

    def output_names(
        self, voxel_features: torch.Tensor, coors: torch.Tensor, batch_size: int | None = None
    ) -> list[str]:
        with torch.no_grad():
            return flatten_named(self._named(voxel_features, coors, batch_size))[0]

    def forward(
        self, voxel_features: torch.Tensor, coors: torch.Tensor, batch_size: int | None = None
    ) -> tuple[torch.Tensor, ...]:
        """``batch_size`` (optional) overrides the one given at construction, as an int argument of export does."""
        return tuple(flatten_named(self._named(voxel_features, coors, batch_size))[1])


# ---------------------------------------------------------------------------------------------- OpenPCDet
class _AttrDict(dict):
    """OpenPCDet's configs are EasyDicts: keys are also attributes (``model_cfg.NAME``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


def _attr(value: Any) -> Any:
    if isinstance(value, dict):
        return _AttrDict({k: _attr(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_attr(v) for v in value]
    return value


def _merge(base: dict, new: dict) -> dict:
    out = dict(base)
    for key, value in new.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _load_yaml(path: Path) -> dict:
    try:
        import yaml
    except ImportError as e:
        raise ImportError("reading OpenPCDet configs needs PyYAML: pip install 'sparsetrt[openpcdet]'") from e
    with open(path) as f:
        return yaml.safe_load(f) or {}


def _base_path(base: str, config: Path) -> Path:
    """OpenPCDet resolves ``_BASE_CONFIG_`` (``cfgs/dataset_configs/...``) from its tools/ folder: try the
    folders above the config until the file is found."""
    for folder in (Path.cwd(), *config.resolve().parents):
        if (folder / base).is_file():
            return folder / base
    raise FileNotFoundError(
        f"{config}: _BASE_CONFIG_ {base} not found in the working folder or any folder above the config (OpenPCDet "
        "resolves it from tools/)"
    )


def read_openpcdet_config(path: str | os.PathLike) -> _AttrDict:
    """An OpenPCDet config with every ``_BASE_CONFIG_`` merged in, as OpenPCDet's ``cfg_from_yaml_file`` does."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OpenPCDet config {path} does not exist")

    def resolve(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        node = {k: resolve(v) for k, v in node.items()}
        if "_BASE_CONFIG_" in node:
            base = resolve(_load_yaml(_base_path(node["_BASE_CONFIG_"], path)))
            node = _merge(base, {k: v for k, v in node.items() if k != "_BASE_CONFIG_"})
        return node

    return _attr(resolve(_load_yaml(path)))


def openpcdet_geometry(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What OpenPCDet's detector hands its modules: ``grid_size`` (x, y, z; int64 array), ``voxel_size``,
    ``point_cloud_range`` (float32 array) and the input channels the VFE gives the 3D backbone, plus the batch_dict
    keys of the VFE's output (voxel or pillar features and coordinates)."""
    data = cfg["DATA_CONFIG"]
    pcr = np.array(data["POINT_CLOUD_RANGE"], dtype=np.float32)
    processors = data.get("DATA_PROCESSOR", [])
    voxel = next((p for p in processors if "VOXEL_SIZE" in p), None)
    if voxel is None:
        raise ValueError("the config's DATA_CONFIG.DATA_PROCESSOR has no VOXEL_SIZE (transform_points_to_voxels)")
    voxel_size = list(voxel["VOXEL_SIZE"])
    grid_size = np.round((pcr[3:6] - pcr[0:3]) / np.array(voxel_size)).astype(np.int64)
    vfe = cfg["MODEL"].get("VFE", {}).get("NAME", "MeanVFE")
    encoding = data.get("POINT_FEATURE_ENCODING", {})
    point_features = len(encoding.get("used_feature_list", ["x", "y", "z", "intensity"]))
    if vfe in _MEAN_VFES:
        channels = point_features
    elif vfe in _FILTER_VFES:
        channels = int(cfg["MODEL"]["VFE"]["NUM_FILTERS"][-1])
    else:
        raise ValueError(
            f"VFE {vfe}: sparsetrt does not know the width of its output; build the modules yourself and wrap them in "
            "OpenPCDetModules"
        )
    pillars = vfe in _PILLAR_2D_VFES
    inputs = ["pillar_features", "pillar_coords"] if pillars else ["voxel_features", "voxel_coords"]
    return {
        "grid_size": grid_size,
        "voxel_size": voxel_size,
        "point_cloud_range": pcr,
        "input_channels": channels,
        "point_features": point_features,
        "inputs": inputs,
        "pillars": pillars,
    }


def _openpcdet_class(section: str, name: str, classes: Mapping[str, type] | None) -> type:
    if classes and name in classes:
        return classes[name]
    package = OPENPCDET_SECTIONS[section][1]
    try:
        module = importlib.import_module(package)
    except ImportError as e:
        raise ImportError(
            f"{section}.NAME is {name}, a class of OpenPCDet's {package}, which cannot be imported ({e}): install "
            "OpenPCDet (python setup.py develop in its repository), or pass classes={name!r: YourClass}"
        ) from e
    registry = getattr(module, "__all__", {})
    cls = registry.get(name) if isinstance(registry, dict) else getattr(module, name, None)
    if cls is None:
        raise KeyError(f"{package} has no {name} (the config's {section}.NAME)")
    return cls


def example_frame(
    geometry: Mapping[str, Any], batch_size: int, num_voxels: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthetic 32-beam lidar frame per sample voxelized on the config's grid (``sparsetrt.data``): mean point
    features widened (zeros) or cut to the input channels, at most ``num_voxels`` voxels per sample. Pillar inputs
    get coordinates (b, y, x) and random features of the VFE's width."""
    from sparsetrt.data import generate_frame, voxelize

    pcr, voxel_size = geometry["point_cloud_range"], geometry["voxel_size"]
    channels, rng = int(geometry["input_channels"]), np.random.default_rng(seed)
    features, coords = [], []
    for b in range(batch_size):
        points = generate_frame(seed + b, beams=32, frame="sensor").points
        voxels = voxelize(points, pcr, voxel_size)
        keep = np.sort(rng.permutation(len(voxels))[:num_voxels])
        zyx = voxels.coords[keep]
        if geometry["pillars"]:
            zyx = np.unique(zyx[:, 1:], axis=0)
            f = rng.standard_normal((len(zyx), channels)).astype(np.float32)
        else:
            f = voxels.features[keep]
            f = np.concatenate([f, np.zeros((len(f), max(0, channels - f.shape[1])), np.float32)], axis=1)[:, :channels]
        coords.append(np.concatenate([np.full((len(zyx), 1), b, np.int32), zyx.astype(np.int32)], axis=1))
        features.append(f.astype(np.float32))
    return torch.from_numpy(np.concatenate(features)), torch.from_numpy(np.concatenate(coords))


def load_detector_weights(adapter: nn.Module, checkpoint: str | os.PathLike) -> None:
    """Load the adapter's modules from a whole-detector checkpoint (OpenPCDet's ``{"model_state": ...}``,
    mmdetection3d's ``{"state_dict": ...}`` or a bare state_dict): the keys under the adapter's module names,
    strictly (every weight of those modules present, none left over under their names)."""
    data = torch.load(os.fspath(checkpoint), map_location="cpu", weights_only=True)
    state = data
    if isinstance(data, dict):
        for key in ("model_state", "state_dict", "model"):
            if isinstance(data.get(key), dict):
                state = data[key]
                break
    prefixes = tuple(f"{name}." for name, _ in adapter.named_children())
    selected = {k: v for k, v in state.items() if k.startswith(prefixes)}
    if not selected:
        raise KeyError(
            f"checkpoint {checkpoint} has no weights under {', '.join(p[:-1] for p in prefixes)}; its keys start with "
            f"{sorted({k.split('.')[0] for k in state})[:10]}"
        )
    adapter.load_state_dict(selected, strict=True)


def openpcdet_recipe(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    sections: Sequence[str] = ("BACKBONE_3D",),
    batch_size: int = 1,
    num_voxels: int = 20000,
    classes: Mapping[str, type] | None = None,
    outputs: Sequence[str] | None = None,
) -> ExportRecipe:
    """An ``ExportRecipe`` for OpenPCDet modules built from ``config`` as OpenPCDet's detector builds them.

    ``sections`` are the config's MODEL sections exported, in order (``BACKBONE_3D``; add ``MAP_TO_BEV`` for the
    dense BEV). The classes come from pcdet (``pcdet.models.backbones_3d.__all__[NAME]``, ...) unless ``classes``
    maps a NAME to one. ``checkpoint`` (a detector checkpoint) gives the weights of those modules.
    """
    cfg = read_openpcdet_config(config)
    geometry = openpcdet_geometry(cfg)
    modules: dict[str, nn.Module] = {}
    channels = geometry["input_channels"]
    for section in sections:
        if section not in OPENPCDET_SECTIONS:
            raise ValueError(f"section {section!r}: sparsetrt exports {sorted(OPENPCDET_SECTIONS)}")
        model_cfg = cfg["MODEL"].get(section)
        if model_cfg is None:
            raise KeyError(f"{config} has no MODEL.{section}")
        cls = _openpcdet_class(section, model_cfg["NAME"], classes)
        attribute = OPENPCDET_SECTIONS[section][0]
        if section == "BACKBONE_3D":
            module = cls(
                model_cfg=model_cfg,
                input_channels=channels,
                grid_size=geometry["grid_size"],
                voxel_size=geometry["voxel_size"],
                point_cloud_range=geometry["point_cloud_range"],
            )
            channels = getattr(module, "num_point_features", channels)
        elif section == "MAP_TO_BEV":
            module = cls(model_cfg=model_cfg, grid_size=geometry["grid_size"])
            channels = getattr(module, "num_bev_features", channels)
        else:
            module = cls(model_cfg=model_cfg, input_channels=channels)
        modules[attribute] = module
    adapter = OpenPCDetModules(modules, batch_size, geometry["inputs"], outputs).eval()
    if checkpoint is not None:
        load_detector_weights(adapter, checkpoint)
    example = example_frame(geometry, batch_size, num_voxels)
    # Output names from a run of the converted copy (spconv's CPU path refuses conv biases in eval mode).
    names = convert(adapter).eval().output_names(*example)
    return ExportRecipe(adapter, example, list(geometry["inputs"]), names)


def mmdet3d_recipe(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    key: str | None = None,
    batch_size: int = 1,
    num_voxels: int = 20000,
    in_channels: int | None = None,
    outputs: Sequence[str] | None = None,
) -> ExportRecipe:
    """An ``ExportRecipe`` for an mmdetection3d middle encoder (``model.middle_encoder`` or
    ``model.pts_middle_encoder`` of ``config``), built with mmdetection3d's registry (mmengine and mmdet3d must be
    installed), weights from ``checkpoint``, traced on a synthetic frame on its ``sparse_shape`` grid."""
    try:
        from mmdet3d.registry import MODELS
        from mmdet3d.utils import register_all_modules
        from mmengine.config import Config
    except ImportError as e:
        raise ImportError(f"mmdet3d_recipe needs mmengine and mmdet3d ({e})") from e
    register_all_modules()
    cfg = Config.fromfile(os.fspath(config))
    key = key or ("pts_middle_encoder" if "pts_middle_encoder" in cfg.model else "middle_encoder")
    encoder_cfg = cfg.model[key]
    module = MODELS.build(encoder_cfg)
    adapter = MMDet3DModule(module, batch_size, outputs, prefix=key).eval()
    if checkpoint is not None:
        load_detector_weights(adapter, checkpoint)
    shape = [int(s) for s in encoder_cfg["sparse_shape"]]  # (z, y, x)
    channels = int(in_channels or encoder_cfg["in_channels"])
    rng = np.random.default_rng(0)
    features, coords = [], []
    for b in range(batch_size):
        linear = np.unique(rng.integers(0, int(np.prod(shape)), num_voxels))
        zyx = np.stack(np.unravel_index(linear, shape), axis=1)
        coords.append(np.concatenate([np.full((len(zyx), 1), b), zyx], axis=1).astype(np.int32))
        features.append(rng.standard_normal((len(zyx), channels)).astype(np.float32))
    example = (torch.from_numpy(np.concatenate(features)), torch.from_numpy(np.concatenate(coords)))
    names = convert(adapter).eval().output_names(*example)
    return ExportRecipe(adapter, example, ["voxel_features", "coors"], names)
