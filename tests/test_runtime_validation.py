"""Input checks before any GPU work (``sparsetrt.runtime.validate_inputs``), and the model spec they read from
an exported file: which input holds coordinates on which grid, the batch size, which outputs are sparse.

Every failure is an ``InputError`` naming the input and what is wrong; the oracles are the facts each feed
was built to violate.
"""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from sparsetrt.exporter import SparseTensor, export
from sparsetrt.exporter import nn as snn
from sparsetrt.runtime import InputError, ModelSpec, TensorSpec, validate_inputs

GRID = (9, 20, 20)
BATCH = 2


def _spec(profile: dict | None = None) -> ModelSpec:
    return ModelSpec(
        inputs=[
            TensorSpec("voxel_features", "float32", ("num_voxels", 3), "features", sites="voxel_coords"),
            TensorSpec("voxel_coords", "int32", ("num_voxels", 4), "coords", GRID, sites="voxel_coords"),
        ],
        outputs=[TensorSpec("bev", "float32", (BATCH, 8, 20, 20), "dense")],
        batch_size=BATCH,
        profile=profile or {},
    )


def _sites(gen: torch.Generator, n: int) -> np.ndarray:
    """n distinct in-grid sites (b, z, y, x), drawn without replacement from the whole grid."""
    total = BATCH * int(np.prod(GRID))
    flat = torch.randperm(total, generator=gen)[:n].numpy()
    b, rest = np.divmod(flat, int(np.prod(GRID)))
    z, rest = np.divmod(rest, GRID[1] * GRID[2])
    y, x = np.divmod(rest, GRID[2])
    return np.stack([b, z, y, x], axis=1).astype(np.int32)


def _feed(gen: torch.Generator, n: int = 50) -> dict[str, np.ndarray]:
    return {"voxel_features": torch.randn(n, 3, generator=gen).numpy(), "voxel_coords": _sites(gen, n)}


def test_a_valid_feed_passes_as_numpy_and_as_torch(gen: torch.Generator) -> None:
    feed = _feed(gen)
    checked = validate_inputs(_spec(), feed)
    assert set(checked) == set(feed)
    as_torch = {k: torch.from_numpy(v) for k, v in feed.items()}
    assert all(isinstance(v, torch.Tensor) for v in validate_inputs(_spec(), as_torch).values())


SHAPE_CASES = {
    "missing input": r"inputs missing \['voxel_coords'\]",
    "unknown input": r"inputs unknown \['extra'\]",
    "float64 features": "'voxel_features' is float64, the model takes float32: convert it first",
    "int64 coords": "'voxel_coords' is int64, the model takes int32",
    "extra dim": r"\(2 dims, not 3\)",
    "channels": "5 channels; the model was exported for 3",
    "coords columns": r"3 in dim 1; the model takes 4 \(batch index",
    "row counts": "'voxel_coords' has 49 rows but 'voxel_features' has 50",
}


def _break(feed: dict[str, np.ndarray], case: str) -> dict[str, np.ndarray]:
    f, c = feed["voxel_features"], feed["voxel_coords"]
    changes = {
        "missing input": {"voxel_coords": None},
        "unknown input": {"extra": np.zeros(1)},
        "float64 features": {"voxel_features": f.astype(np.float64)},
        "int64 coords": {"voxel_coords": c.astype(np.int64)},
        "extra dim": {"voxel_features": f[None]},
        "channels": {"voxel_features": np.zeros((len(f), 5), np.float32)},
        "coords columns": {"voxel_coords": c[:, :3].copy()},
        "row counts": {"voxel_coords": c[:-1].copy()},
    }[case]
    feed.update(changes)
    return {k: v for k, v in feed.items() if v is not None}


@pytest.mark.parametrize("case", list(SHAPE_CASES))
def test_names_types_and_shapes(gen: torch.Generator, case: str) -> None:
    feed = _break(_feed(gen), case)
    with pytest.raises(InputError, match=SHAPE_CASES[case]):
        validate_inputs(_spec(), feed)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (2, GRID[1], r"lies outside batch_size 2 x spatial_shape \[9, 20, 20\]"),
        (3, -1, "lies outside"),
        (0, BATCH, "lies outside batch_size 2"),
        (1, GRID[0] + 5, "lies outside"),
    ],
)
def test_coordinates_outside_the_grid_or_batch(gen: torch.Generator, column: int, value: int, message: str) -> None:
    feed = _feed(gen)
    row = int(torch.randint(50, (1,), generator=gen))
    feed["voxel_coords"][row, column] = value
    with pytest.raises(InputError, match=rf"input 'voxel_coords': indices row {row} = .* {message}"):
        validate_inputs(_spec(), feed)


def test_duplicate_sites(gen: torch.Generator) -> None:
    feed = _feed(gen)
    first, second = sorted(int(i) for i in torch.randperm(50, generator=gen)[:2])
    feed["voxel_coords"][second] = feed["voxel_coords"][first]
    with pytest.raises(InputError, match=rf"input 'voxel_coords': indices rows {first} and {second} are the same site"):
        validate_inputs(_spec(), feed)


def test_voxel_count_outside_the_profile(gen: torch.Generator) -> None:
    profile = {name: ((10, c), (40, c), (60, c)) for name, c in (("voxel_features", 3), ("voxel_coords", 4))}
    validate_inputs(_spec(profile), _feed(gen, 60))  # the bounds are inclusive
    for n in (9, 61):
        with pytest.raises(InputError, match=rf"voxel count {n}, outside the engine's optimization profile \[10, 60\]"):
            validate_inputs(_spec(profile), _feed(gen, n))


def test_sites_may_be_skipped_but_not_types(gen: torch.Generator) -> None:
    feed = _feed(gen)
    feed["voxel_coords"][0] = feed["voxel_coords"][1]
    validate_inputs(_spec(), feed, check_sites=False)
    feed["voxel_coords"] = feed["voxel_coords"].astype(np.int64)
    with pytest.raises(InputError, match="int64"):
        validate_inputs(_spec(), feed, check_sites=False)


def test_spec_json_round_trip() -> None:
    spec = _spec({"voxel_coords": ((1, 4), (5, 4), (9, 4))})
    assert ModelSpec.from_json(spec.to_json()) == spec


# ---------------------------------------------------------------------------------------------- from ONNX
class _Backbone(nn.Module):
    """Sparse outputs (features + coordinates after a strided conv) and a dense one (Densify)."""

    def __init__(self) -> None:
        super().__init__()
        self.subm = snn.SubMConv3d(3, 8, 3, indice_key="s1")
        self.down = snn.SparseConv3d(8, 16, 3, stride=2, padding=1)
        self.head = snn.SubMConv3d(16, 4, 1)

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int):
        x = self.subm(SparseTensor(features, coords, list(GRID), batch_size))
        x = x.replace_feature(torch.relu(x.features))
        y = self.down(x)
        z = self.head(y)
        return z.features, z.indices, x.dense(), y.features * 2.0


@pytest.fixture(scope="module")
def exported() -> onnx.ModelProto:
    gen = torch.Generator().manual_seed(0)
    model = _Backbone().eval()
    buf = io.BytesIO()
    args = (torch.randn(60, 3, generator=gen), torch.from_numpy(_sites(gen, 60)), BATCH)
    export(model, args, buf, input_names=["vf", "vc"], output_names=["feats", "coords", "dense", "scaled"])
    return onnx.load_from_string(buf.getvalue())


def test_spec_from_an_exported_file(exported: onnx.ModelProto) -> None:
    spec = ModelSpec.from_onnx(exported)
    vf, vc = spec.inputs
    assert (vf.role, vf.sites, vf.dtype) == ("features", "vc", "float32")
    assert (vc.role, vc.spatial_shape, vc.dtype) == ("coords", GRID, "int32")
    assert vf.shape[0] == vc.shape[0] and isinstance(vf.shape[0], str)  # one voxel axis
    assert spec.batch_size == BATCH
    roles = {t.name: (t.role, t.sites) for t in spec.outputs}
    # The head's features and the strided conv's coordinates describe the same sites; so does the scaled
    # output of the strided conv (a standard Mul on its rows). The dense map has none.
    assert roles["feats"][0] == "features" and roles["coords"][0] == "coords" and roles["scaled"][0] == "features"
    assert roles["feats"][1] == roles["coords"][1] == roles["scaled"][1] is not None
    assert roles["dense"] == ("dense", None)
    assert [t.shape for t in spec.outputs if t.name == "dense"] == [(BATCH, 8, *GRID)]
