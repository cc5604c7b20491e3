"""OpenPCDet and mmdetection3d modules exported with no glue code (``sparsetrt.exporter.adapters``).

- An OpenPCDet config in OpenPCDet's layout (a model config under ``tools/cfgs/`` whose ``DATA_CONFIG`` names a
  ``_BASE_CONFIG_`` dataset config) is read as OpenPCDet reads it: the grid, voxel size, range and the VFE's
  output width become the backbone's constructor values.
- ``sparsetrt export cfg.yaml --checkpoint ckpt.pth`` builds the backbone class the config names from ``pcdet``
  (here a stand-in package on sys.path that maps the name to the zoo's re-creation), loads its weights from a
  whole-detector checkpoint (``{"model_state": ...}``, other modules' weights beside them) and exports; ``sparsetrt
  check`` with the same arguments finds the file equal to PyTorch (spconv) on three frames.
- Bad set-ups say what is wrong: pcdet missing, weights missing, an unknown VFE.
- mmdetection3d's dict outputs become named tensors; ``mmdet3d_recipe`` builds a config's encoder with the
  registry and loads its weights (against stand-ins of mmengine's Config and mmdetection3d's registry: the real
  packages are not installed here).
"""

from __future__ import annotations

import io
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from zoo.layers import randomize_norm_
from zoo.layouts import GRID_3D, voxels
from zoo.pcdet_voxelnext import VoxelNeXtBackbone
from zoo.run import spconv_forward
from zoo.unets import SparseUNet

from sparsetrt.cli import main
from sparsetrt.exporter import export
from sparsetrt.exporter.adapters import (
    MMDet3DModule,
    OpenPCDetModules,
    openpcdet_geometry,
    openpcdet_recipe,
    read_openpcdet_config,
)
from sparsetrt.runtime import ReferenceSession

DATASET = """\
    DATASET: 'ToyDataset'
    POINT_CLOUD_RANGE: [0, -8, -3, 14.4, 8, 1]
    POINT_FEATURE_ENCODING: {
        encoding_type: absolute_coordinates_encoding,
        used_feature_list: ['x', 'y', 'z', 'intensity', 'timestamp'],
        src_feature_list: ['x', 'y', 'z', 'intensity', 'timestamp'],
    }
    DATA_PROCESSOR:
        - NAME: mask_points_and_boxes_outside_range
          REMOVE_OUTSIDE_BOXES: True
        - NAME: transform_points_to_voxels
          VOXEL_SIZE: [0.1, 0.1, 0.1]
          MAX_POINTS_PER_VOXEL: 10
    """
MODEL = """\
    CLASS_NAMES: ['car']
    DATA_CONFIG:
        _BASE_CONFIG_: cfgs/dataset_configs/toy_dataset.yaml
        DATA_PROCESSOR:
            - NAME: transform_points_to_voxels
              VOXEL_SIZE: [0.1, 0.1, 0.1]
    MODEL:
        NAME: VoxelNeXt
        VFE:
            NAME: {vfe}
        BACKBONE_3D:
            NAME: VoxelResBackBone8xVoxelNeXt
            CHANNELS: [8, 16, 16, 24, 24]
            OUT_CHANNEL: 24
            BLOCKS: 1
        DENSE_HEAD:
            NAME: VoxelNeXtHead
    """
FAKE_PCDET = """\
    # Stands in for OpenPCDet's package: its registry maps config names to classes.
    from zoo.pcdet_voxelnext import VoxelNeXtBackbone as VoxelResBackBone8xVoxelNeXt

    __all__ = {"VoxelResBackBone8xVoxelNeXt": VoxelResBackBone8xVoxelNeXt}
    """


def _openpcdet_tree(root: Path, vfe: str = "MeanVFE") -> Path:
    """tools/cfgs/{dataset_configs,toy_models} as in OpenPCDet; returns the model config."""
    cfgs = root / "tools" / "cfgs"
    (cfgs / "dataset_configs").mkdir(parents=True)
    (cfgs / "toy_models").mkdir()
    (cfgs / "dataset_configs" / "toy_dataset.yaml").write_text(textwrap.dedent(DATASET))
    config = cfgs / "toy_models" / "voxelnext.yaml"
    config.write_text(textwrap.dedent(MODEL).replace("{vfe}", vfe))
    return config


def _detector_checkpoint(path: Path, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A whole-detector checkpoint as OpenPCDet saves it: the backbone's weights (random, BN randomised) under
    backbone_3d., other modules' beside them."""
    backbone = VoxelNeXtBackbone({"CHANNELS": [8, 16, 16, 24, 24], "OUT_CHANNEL": 24, "BLOCKS": 1}, 5, np.zeros(3))
    randomize_norm_(backbone, gen)
    state = {f"backbone_3d.{k}": v for k, v in backbone.state_dict().items()}
    state["dense_head.heatmap.weight"] = torch.randn(3, 24, generator=gen)
    torch.save({"model_state": state, "epoch": 20, "optimizer_state": {}}, path)
    return state


def test_config_is_read_as_openpcdet_reads_it(tmp_path):
    cfg = read_openpcdet_config(_openpcdet_tree(tmp_path))
    assert cfg.MODEL.BACKBONE_3D.NAME == "VoxelResBackBone8xVoxelNeXt"  # EasyDict-style access
    assert cfg.DATA_CONFIG.DATASET == "ToyDataset"  # merged from the _BASE_CONFIG_
    # The model config's DATA_PROCESSOR replaces the base's list, as OpenPCDet's merge does.
    assert [p["NAME"] for p in cfg.DATA_CONFIG.DATA_PROCESSOR] == ["transform_points_to_voxels"]
    geometry = openpcdet_geometry(cfg)
    assert geometry["grid_size"].tolist() == [144, 160, 40]
    # The backbones' sparse_shape: numpy's elementwise add (z gets one more layer).
    assert list(geometry["grid_size"][::-1] + [1, 0, 0]) == list(GRID_3D)  # noqa: RUF005
    assert geometry["input_channels"] == 5 and geometry["inputs"] == ["voxel_features", "voxel_coords"]
    with pytest.raises(ValueError, match="VFE ImageVFE: sparsetrt does not know the width"):
        openpcdet_geometry(read_openpcdet_config(_openpcdet_tree(tmp_path / "image", vfe="ImageVFE")))


def test_cli_exports_and_checks_an_openpcdet_config_and_checkpoint(gen, tmp_path, monkeypatch, capsys):
    config = _openpcdet_tree(tmp_path)
    checkpoint = tmp_path / "voxelnext_epoch_20.pth"
    state = _detector_checkpoint(checkpoint, gen)
    package = tmp_path / "site" / "pcdet" / "models" / "backbones_3d"
    package.mkdir(parents=True)
    for folder in (package.parent.parent, package.parent):
        (folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text(textwrap.dedent(FAKE_PCDET))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.chdir(tmp_path / "tools")  # where OpenPCDet users run from

    onnx_path = tmp_path / "voxelnext.onnx"
    assert main(["export", str(config), "--checkpoint", str(checkpoint), "-o", str(onnx_path)]) == 0, (
        capsys.readouterr()
    )
    out = capsys.readouterr().out
    assert "encoded_spconv_tensor.features" in out and "encoded_spconv_tensor.indices" in out, out
    proto = onnx.load(onnx_path)
    assert [i.name for i in proto.graph.input] == ["voxel_features", "voxel_coords"]
    assert {"UniqueSites", "SegmentReduce"} <= {n.op_type for n in proto.graph.node}
    assert main(["check", str(onnx_path), "--model", str(config), "--checkpoint", str(checkpoint)]) == 0
    assert "all 6 comparisons within 0.0001 of each output's scale" in capsys.readouterr().out

    # The recipe loaded the checkpoint's weights, not its own.
    recipe = openpcdet_recipe(config, checkpoint)
    loaded = recipe.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if k.startswith("backbone_3d."))


def test_bad_setups_say_what_is_wrong(gen, tmp_path, monkeypatch):
    config = _openpcdet_tree(tmp_path)
    for name in ("pcdet", "pcdet.models", "pcdet.models.backbones_3d"):  # OpenPCDet not installed
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(
        ImportError, match=r"VoxelResBackBone8xVoxelNeXt, a class of OpenPCDet's pcdet\.models\.backbones_3d"
    ):
        openpcdet_recipe(config)
    classes = {"VoxelResBackBone8xVoxelNeXt": VoxelNeXtBackbone}
    other = tmp_path / "other.pth"
    torch.save({"model_state": {"dense_head.heatmap.weight": torch.zeros(3, 24)}}, other)
    with pytest.raises(KeyError, match="no weights under backbone_3d"):
        openpcdet_recipe(config, other, classes=classes)
    partial = tmp_path / "partial.pth"
    state = _detector_checkpoint(partial, gen)
    state.pop(next(k for k in state if k.startswith("backbone_3d.")))
    torch.save({"model_state": state}, partial)
    with pytest.raises(RuntimeError, match="Missing key"):
        openpcdet_recipe(config, partial, classes=classes)


def test_adapters_return_named_tensors():
    backbone = VoxelNeXtBackbone(
        {"CHANNELS": [8, 16, 16, 24, 24], "OUT_CHANNEL": 24, "BLOCKS": 1}, 4, np.array([144, 160, 40])
    )
    adapter = OpenPCDetModules(
        {"backbone_3d": backbone}, 1, outputs=["encoded_spconv_tensor", "multi_scale_3d_features.x_conv1"]
    )
    features, coords, _ = voxels(0, 1, 300)
    names = adapter.output_names(features, coords)
    assert names == [
        "encoded_spconv_tensor.features",
        "encoded_spconv_tensor.indices",
        "multi_scale_3d_features.x_conv1.features",
        "multi_scale_3d_features.x_conv1.indices",
    ]
    with pytest.raises(KeyError, match="no 'x_conv9'"):
        OpenPCDetModules({"backbone_3d": backbone}, 1, outputs=["multi_scale_3d_features.x_conv9"]).output_names(
            features, coords
        )

    unet = SparseUNet(
        4,
        GRID_3D,
        base_channels=8,
        output_channels=16,
        encoder_channels=((8,), (8, 8, 8), (8, 8, 8), (8, 8, 8)),
        decoder_channels=((8, 8, 8), (8, 8, 8), (8, 8, 8), (8, 8, 8)),
    ).eval()
    adapter = MMDet3DModule(unet, 1)
    assert adapter.output_names(features, coords) == ["spatial_features", "seg_features"]
    assert next(iter(adapter.state_dict())).startswith("middle_encoder.")
    blob = io.BytesIO()
    export(
        adapter,
        (features, coords),
        blob,
        input_names=["voxel_features", "coors"],
        output_names=adapter.output_names(features, coords),
    )
    got = ReferenceSession(onnx.load_from_string(blob.getvalue())).run(
        None, {"voxel_features": features.numpy(), "coors": coords.numpy()}
    )
    want = spconv_forward(adapter, features, coords)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-4 * max(1.0, float(w.abs().max())))


FAKE_MMENGINE_CONFIG = """\
    # Stands in for mmengine.config: an mmdetection3d config is a Python file whose `model` dict names the encoder.
    import runpy


    class _Dict(dict):
        __getattr__ = dict.__getitem__


    class Config:
        @staticmethod
        def fromfile(path):
            return _Dict(model=_Dict(runpy.run_path(path)["model"]))
    """
FAKE_MMDET3D_REGISTRY = """\
    from zoo.unets import SparseUNet


    class _Registry:
        def build(self, cfg):
            cfg = dict(cfg)
            assert cfg.pop("type") == "SparseUNet"
            return SparseUNet(**cfg)


    MODELS = _Registry()
    """
MMDET3D_CONFIG = """\
    model = dict(
        type="PartA2",
        middle_encoder=dict(
            type="SparseUNet",
            in_channels=4,
            sparse_shape=[41, 160, 144],
            base_channels=8,
            output_channels=16,
            encoder_channels=((8,), (8, 8, 8), (8, 8, 8), (8, 8, 8)),
            decoder_channels=((8, 8, 8), (8, 8, 8), (8, 8, 8), (8, 8, 8)),
        ),
    )
    """


def test_mmdet3d_recipe_builds_the_configs_encoder_with_its_registry(gen, tmp_path, monkeypatch):
    """mmdet3d_recipe against stand-ins of mmengine's Config and mmdetection3d's registry (the real packages are
    not installed here): the config's middle_encoder is built, its checkpoint weights loaded, and the recipe
    exports and matches spconv."""
    site = tmp_path / "site"
    for package, text in {
        "mmengine/config.py": FAKE_MMENGINE_CONFIG,
        "mmdet3d/registry.py": FAKE_MMDET3D_REGISTRY,
        "mmdet3d/utils.py": "def register_all_modules():\n    pass\n",
    }.items():
        path = site / package
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").write_text("")
        path.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(site))
    for name in ("mmengine", "mmengine.config", "mmdet3d", "mmdet3d.registry", "mmdet3d.utils"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    config = tmp_path / "parta2_toy.py"
    config.write_text(textwrap.dedent(MMDET3D_CONFIG))
    from sparsetrt.exporter.adapters import mmdet3d_recipe

    untrained = mmdet3d_recipe(config, num_voxels=300)
    randomize_norm_(untrained.model, gen)
    checkpoint = tmp_path / "parta2.pth"
    torch.save({"state_dict": {**untrained.model.state_dict(), "rpn_head.conv.weight": torch.zeros(1)}}, checkpoint)
    recipe = mmdet3d_recipe(config, checkpoint, num_voxels=300)
    assert recipe.output_names == ["spatial_features", "seg_features"]
    assert all(torch.equal(recipe.model.state_dict()[k], v) for k, v in untrained.model.state_dict().items())
    blob = io.BytesIO()
    export(recipe.model, recipe.args, blob, input_names=recipe.input_names, output_names=recipe.output_names)
    features, coords = recipe.args
    want = spconv_forward(recipe.model, features, coords)
    got = ReferenceSession(onnx.load_from_string(blob.getvalue())).run(
        None, {"voxel_features": features.numpy(), "coors": coords.numpy()}
    )
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-4 * max(1.0, float(w.abs().max())))
