"""`sparsetrt bounds`: voxel profile and max_sites from frames, checked against a brute-force site count and against
the reference runtime (a file exported with the recommended max_sites runs every frame; one site less fails)."""

from __future__ import annotations

import io
import math
import statistics
from pathlib import Path

import numpy as np
import onnx
import pytest
from zoo import ZOO

from sparsetrt.cli import main
from sparsetrt.exporter import export
from sparsetrt.runtime import ReferenceSession, save_tensors
from sparsetrt.runtime.bounds import BoundsError, frame_files, load_frames, measure_bounds
from sparsetrt.runtime.build import DEFAULT_VOXELS

INPUTS = ["voxel_features", "voxel_coords"]


def _brute_force_outputs(coords: np.ndarray, attrs: dict) -> int:
    """Distinct output sites of a regular sparse conv: o = (c + p - t d) / s where divisible and inside the grid."""
    out_shape = [
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, k, st, p, d in zip(
            attrs["spatial_shape"],
            attrs["kernel_size"],
            attrs["stride"],
            attrs["padding"],
            attrs["dilation"],
            strict=True,
        )
    ]
    sites = set()
    for row in coords:
        for taps in np.ndindex(*attrs["kernel_size"]):
            o = []
            for c, t, st, p, d, size in zip(
                row[1:], taps, attrs["stride"], attrs["padding"], attrs["dilation"], out_shape, strict=True
            ):
                v = int(c) + p - t * d
                if v < 0 or v % st or v // st >= size:
                    break
                o.append(v // st)
            else:
                sites.add((int(row[0]), *o))
    return len(sites)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[int]]:
    entry = ZOO["second"]
    folder = tmp_path_factory.mktemp("bounds")
    buf = io.BytesIO()
    export(entry.build(), entry.make_inputs(0, 1, 400), buf, input_names=INPUTS)
    (folder / "model.onnx").write_bytes(buf.getvalue())
    frames = folder / "frames"
    frames.mkdir()
    counts = []
    for i, n in enumerate((250, 900, 600, 1400)):
        features, coords, _ = entry.make_inputs(10 + i, 1, n)
        save_tensors(frames / f"{i:03d}.bin", {INPUTS[0]: features.numpy(), INPUTS[1]: coords.numpy()})
        counts.append(int(coords.shape[0]))
    return folder / "model.onnx", frames, counts


def test_bounds_are_the_largest_counts_times_the_margin(exported) -> None:
    model, frames, counts = exported
    report = measure_bounds(model, load_frames(frame_files([frames])), margin=1.25)
    assert report.voxels == counts
    assert report.profile() == (1, int(statistics.median(counts)), math.ceil(max(counts) * 1.25 / 1000) * 1000)
    proto = onnx.load(model)
    first = next(n for n in proto.graph.node if n.op_type == "SparseRulebook" and n.input[0] == INPUTS[1])
    attrs = {a.name: list(onnx.helper.get_attribute_value(a)) for a in first.attribute if a.type == a.INTS}
    layer = next(layer for layer in report.layers if layer.node == first.name)
    files = frame_files([frames])
    expected = max(_brute_force_outputs(load_frames([f]).__next__()[INPUTS[1]], attrs) for f in files)
    assert layer.max_in == max(counts) and layer.max_out == expected
    assert report.max_sites() == math.ceil(max(lb.max_out for lb in report.layers) * 1.25 / 1000) * 1000
    text = report.format()
    assert f"--voxels 1:{int(statistics.median(counts))}:" in text and f"--max-sites {report.max_sites()}" in text


def test_the_recommended_max_sites_holds_every_frame_and_one_less_does_not(exported) -> None:
    model, frames, _ = exported
    report = measure_bounds(model, load_frames(frame_files([frames])), margin=1.0)
    most = max(layer.max_out for layer in report.layers)
    entry = ZOO["second"]
    feeds = list(load_frames(frame_files([frames])))
    for bound, ok in ((most, True), (most - 1, False)):
        buf = io.BytesIO()
        export(entry.build(), entry.make_inputs(0, 1, 400), buf, input_names=INPUTS, max_sites=bound)
        session = ReferenceSession(onnx.load_from_string(buf.getvalue()))
        failures = 0
        for feed in feeds:
            try:
                session.run(None, feed)
            except RuntimeError as e:
                assert f"more than its bound max_out={bound}" in str(e)
                failures += 1
        assert (failures == 0) == ok, (bound, failures)


def test_bounds_cli_and_errors(exported, tmp_path: Path, capsys) -> None:
    model, frames, counts = exported
    assert main(["bounds", str(model), str(frames), "--margin", "1.5"]) == 0
    out = capsys.readouterr().out
    assert f"{len(counts)} frame(s): voxels min {min(counts)}" in out and "--max-sites" in out
    (tmp_path / "empty").mkdir()
    assert main(["bounds", str(model), str(tmp_path / "empty")]) == 2
    assert "holds no .bin tensor files" in capsys.readouterr().err
    save_tensors(tmp_path / "wrong.bin", {"something": np.zeros((3, 4), np.int32)})
    with pytest.raises(BoundsError, match="has no 'voxel_coords'"):
        measure_bounds(model, load_frames([tmp_path / "wrong.bin"]))
    with pytest.raises(BoundsError, match="margin must be >= 1"):
        measure_bounds(model, [], margin=0.5)


def test_the_default_profile_fits_nuscenes_and_waymo_frames() -> None:
    """nuScenes (0.075 m, 10 sweeps): OpenPCDet caps test frames at 160k voxels, the largest published frame we
    found has 128k, and the issue reports frames up to ~300k; Waymo (0.1 m): cap 150k. The old default stopped at
    60k, so every such frame was refused."""
    low, opt, high = DEFAULT_VOXELS
    assert low == 1 and high >= 300_000 and 80_000 <= opt <= 160_000
