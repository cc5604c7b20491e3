"""The trained-detector demo (sparsetrt.demo): frames, targets, decoding, AP, training, export, pictures.

Everything trains and exports the TINY config (a 25.6 m grid of 0.4 m voxels) so the module stays fast;
the shipped checkpoint is only loaded and run on one frame.
"""

from __future__ import annotations

import copy
import io
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsetrt.demo.decode import Detections, decode
from sparsetrt.demo.evaluate import average_precision, bev_iou, box_corners, predict, random_init_model
from sparsetrt.demo.model import (
    BOX_CODE,
    SHIPPED_CHECKPOINT,
    TINY,
    CenterPointDetector,
    DetectorConfig,
    export_recipe,
    load_checkpoint,
    save_checkpoint,
    tiny_export_recipe,
)
from sparsetrt.demo.pictures import (
    dilation_experiment,
    export_detector,
    figure1,
    run_file,
    run_torch,
    same_detections,
)
from sparsetrt.demo.scenes import EVAL_SEED, MIN_POINTS, DemoFrame, collate, make_frame, make_frames
from sparsetrt.demo.targets import batch_targets, detection_loss, frame_targets
from sparsetrt.demo.train import TrainResult, augment, generate_pool, initial_model, train
from sparsetrt.exporter import ExportRecipe
from sparsetrt.runtime import ReferenceSession


@pytest.fixture
def seed(gen: torch.Generator) -> int:
    return int(gen.initial_seed() % 2**31)


@pytest.fixture(autouse=True)
def _one_thread():
    # Many small ops: one thread is as fast, and immune to a busy machine's oversubscription.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_run() -> tuple[list[DemoFrame], TrainResult]:
    """A few training steps of the TINY detector on a small pool (seeded: the same every run)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pool = generate_pool(TINY, 4, seed=12, show=False)
        return pool, train(TINY, pool, steps=6, batch_size=2, seed=0, show=False)
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def trained_tiny(tiny_run: tuple[list[DemoFrame], TrainResult]) -> CenterPointDetector:
    return tiny_run[1].model


# --- frames -------------------------------------------------------------------------------------------


def test_frames_are_deterministic_and_hold_cars_of_the_grid(seed: int) -> None:
    a, b = make_frame(TINY, [seed, 1]), make_frame(TINY, [seed, 1])
    for name in ("coords", "features", "points", "boxes", "labels", "num_points"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    r = TINY.point_cloud_range[3]
    assert np.all(np.abs(a.boxes[:, :2]) < r) and np.all(a.labels == 0)
    assert a.coords.dtype == np.int32 and np.all(a.coords >= 0)
    assert np.all(a.coords < np.array(TINY.spatial_shape))
    feats, coords = collate([a, b])
    assert coords.shape == (2 * len(a.coords), 4) and set(coords[:, 0].tolist()) == {0, 1}
    assert feats.shape == (2 * len(a.coords), 4)


def test_unknown_class_and_empty_batch_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown class names"):
        make_frame(DetectorConfig(class_names=("truck",)), 0)
    with pytest.raises(ValueError, match="at least one frame"):
        collate([])


@pytest.mark.parametrize("flips", list(itertools.product([False, True], repeat=3)))
def test_augmentation_maps_voxels_points_and_boxes_alike(flips: tuple[bool, bool, bool], seed: int) -> None:
    frame = make_frame(TINY, [seed, 2])
    aug = augment(TINY, frame, *flips)
    # Each voxel's mean point still lies in its (moved) voxel.
    lo = np.asarray(TINY.point_cloud_range[:3]) + np.asarray(TINY.voxel_size) * aug.coords[:, ::-1]
    eps = 1e-4
    assert np.all(aug.features[:, :3] >= lo - eps) and np.all(aug.features[:, :3] <= lo + TINY.voxel_size + eps)
    assert len(np.unique(aug.coords, axis=0)) == len(aug.coords)
    # A box's corners move as points do (the same rectangle, whichever corner comes first).
    moved = augment(TINY, _points_frame(frame, box_corners(frame.boxes).reshape(-1, 2)), *flips).points
    for i, corners in enumerate(box_corners(aug.boxes)):
        expected = moved[4 * i : 4 * i + 4, :2]
        assert np.abs(corners[:, None, :] - expected[None, :, :]).sum(-1).min(1).max() < 1e-4


def _points_frame(frame: DemoFrame, xy: np.ndarray) -> DemoFrame:
    points = np.zeros((len(xy), 4), dtype=np.float32)
    points[:, :2] = xy
    return DemoFrame(frame.coords, frame.features, points, frame.boxes, frame.labels, frame.num_points)


# --- targets, decoding and AP -------------------------------------------------------------------------


def _perfect_outputs(cfg: DetectorConfig, frames: list[DemoFrame]) -> tuple[torch.Tensor, torch.Tensor]:
    heatmap, box, _ = batch_targets(cfg, frames)
    return torch.logit(heatmap.clamp(1e-6, 1 - 1e-6)), box


def test_targets_decode_back_to_the_ground_truth(seed: int) -> None:
    frames = make_frames(TINY, [seed], 3)
    heatmap, box, mask = frame_targets(TINY, frames[0])
    assert heatmap.shape == (1, *TINY.bev_shape) and box.shape == (len(BOX_CODE), *TINY.bev_shape)
    assert heatmap.max() <= 1.0 and np.sum(heatmap == 1.0) == mask.sum()
    assert mask.sum() == np.sum(frames[0].num_points >= 1)  # one peak per visible car
    detections = decode(TINY, *_perfect_outputs(TINY, frames), score_threshold=0.99)
    for det, frame in zip(detections, frames, strict=True):
        visible = frame.boxes[frame.num_points >= 1]
        assert len(det) == len(visible)
        iou = bev_iou(det.boxes, visible)
        assert np.all(iou.max(axis=1) > 0.999)
        np.testing.assert_allclose(np.sort(det.boxes[:, 2]), np.sort(visible[:, 2]), atol=1e-5)
    assert average_precision(detections, frames).ap == pytest.approx(1.0)
    assert average_precision(detections, frames, criterion="distance").ap == pytest.approx(1.0)


def test_decode_refuses_outputs_of_another_shape() -> None:
    h, w = TINY.bev_shape
    with pytest.raises(ValueError, match="do not fit the config"):
        decode(TINY, np.zeros((1, 1, h + 1, w)), np.zeros((1, 8, h + 1, w)))


def test_bev_iou_of_known_rectangles() -> None:
    a = np.array([[0, 0, 0, 4, 2, 1, 0]], dtype=np.float32)
    shifted = np.array([[2, 0, 0, 4, 2, 1, 0]], dtype=np.float32)  # overlaps half: 4 / (8 + 8 - 4)
    square = np.array([[0, 0, 0, 2, 2, 1, 0]], dtype=np.float32)
    turned = square.copy()
    turned[0, 6] = np.pi / 4  # the square rotated 45°: overlap is a regular octagon, 8 (sqrt 2 - 1)
    assert bev_iou(a, a)[0, 0] == pytest.approx(1.0)
    assert bev_iou(a, shifted)[0, 0] == pytest.approx(1 / 3)
    octagon = 8 * (np.sqrt(2) - 1)
    assert bev_iou(square, turned)[0, 0] == pytest.approx(octagon / (8 - octagon), rel=1e-6)
    assert bev_iou(a, a + np.array([10, 0, 0, 0, 0, 0, 0]))[0, 0] == 0.0
    # Heading does not matter, and rotating both boxes about any point changes nothing.
    flipped = a.copy()
    flipped[0, 6] = np.pi
    assert bev_iou(a, flipped)[0, 0] == pytest.approx(1.0)
    c, s = np.cos(0.7), np.sin(0.7)
    rotated = [b.copy() for b in (a, shifted)]
    for b in rotated:
        b[0, :2] = [c * b[0, 0] - s * b[0, 1] + 3, s * b[0, 0] + c * b[0, 1] - 1]
        b[0, 6] += 0.7
    assert bev_iou(*rotated)[0, 0] == pytest.approx(1 / 3, rel=1e-5)


def _frame_with(boxes: list[list[float]], hits: list[int]) -> DemoFrame:
    empty = np.zeros((0, 3), dtype=np.int32)
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 7)
    labels = np.zeros(len(b), dtype=np.int32)
    return DemoFrame(empty, np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32), b, labels, np.asarray(hits))


def _dets(boxes: list[list[float]], scores: list[float]) -> Detections:
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 7)
    return Detections(b, np.asarray(scores, np.float32), np.zeros(len(b), np.int64), np.zeros((len(b), 3), np.int64))


def test_average_precision_by_hand() -> None:
    car = [0, 0, -1, 4.5, 1.9, 1.6, 0]
    far = [10, 0, -1, 4.5, 1.9, 1.6, 0]
    hidden = [0, 10, -1, 4.5, 1.9, 1.6, 0]
    frame = _frame_with([car, far, hidden], [50, 50, MIN_POINTS - 1])
    assert average_precision([_dets([car, far], [0.9, 0.8])], [frame]).ap == pytest.approx(1.0)
    # Detecting the "don't care" car is ignored, wherever it ranks.
    assert average_precision([_dets([hidden, car, far], [0.95, 0.9, 0.8])], [frame]).ap == pytest.approx(1.0)
    # A false positive ranked first: precision 1/2 at recall 1/2, 2/3 at recall 1.
    ghost = [0, -10, -1, 4.5, 1.9, 1.6, 0]
    result = average_precision([_dets([ghost, car, far], [0.95, 0.9, 0.8])], [frame])
    assert result.ap == pytest.approx(2 / 3) and (result.true_positives, result.false_positives) == (2, 1)
    # A duplicate is a false positive; a box 1 m off is right by distance but not by IoU >= 0.5.
    off = [1.5, 0.8, -1, 4.5, 1.9, 1.6, 0]
    assert average_precision([_dets([car, car], [0.9, 0.8])], [frame]).false_positives == 1
    assert average_precision([_dets([off], [0.9])], [frame]).ap == pytest.approx(0.0)
    assert average_precision([_dets([off], [0.9])], [frame], criterion="distance").ap == pytest.approx(0.5)
    with pytest.raises(ValueError, match="criterion"):
        average_precision([_dets([], [])], [frame], criterion="overlap")


# --- training ------------------------------------------------------------------------------------------


def _loss_on(model: CenterPointDetector, frames: list[DemoFrame]) -> float:
    """The training loss on a fixed batch (batch statistics, as in training; the model is left alone)."""
    m = copy.deepcopy(model).train()
    m.batch_size = len(frames)
    feats, coords = collate(frames)
    with torch.no_grad():
        outputs = m(torch.from_numpy(feats), torch.from_numpy(coords))
    return float(detection_loss(*outputs, batch_targets(TINY, frames))[0])


def test_a_few_training_steps_lower_the_loss(tiny_run: tuple[list[DemoFrame], TrainResult]) -> None:
    pool, result = tiny_run
    before = _loss_on(initial_model(TINY, seed=0), pool)
    assert len(result.losses) == 6 and all(np.isfinite(result.losses))
    assert _loss_on(result.model, pool) < 0.95 * before
    with pytest.raises(ValueError, match="steps"):
        train(TINY, pool, steps=0)


def test_checkpoints_round_trip_and_bad_ones_are_refused(trained_tiny: CenterPointDetector, tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, trained_tiny, {"steps": 6})
    model, meta = load_checkpoint(path)
    assert model.cfg == TINY and meta == {"steps": 6}
    for name, tensor in trained_tiny.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    with pytest.raises(FileNotFoundError, match="train one with"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"not a sparsetrt\.demo checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="unknown DetectorConfig fields"):
        DetectorConfig.from_dict({**TINY.to_dict(), "colour": "red"})


# --- export --------------------------------------------------------------------------------------------


def test_export_recipes_fit_the_cli_contract() -> None:
    recipe = tiny_export_recipe()
    assert isinstance(recipe, ExportRecipe)
    assert recipe.input_names == ["voxel_features", "voxel_coords"] and recipe.output_names == ["heatmap", "box"]
    feats, coords = recipe.args
    assert feats.dtype == torch.float32 and feats.shape[1] == 4 and coords.dtype == torch.int32
    with torch.no_grad():
        heatmap, box = recipe.model(*recipe.args)
    assert heatmap.shape == (1, 1, *TINY.bev_shape) and box.shape == (1, len(BOX_CODE), *TINY.bev_shape)


def test_exported_trained_model_gives_pytorchs_outputs_and_detections(trained_tiny: CenterPointDetector) -> None:
    buffer = io.BytesIO()
    export_detector(trained_tiny, make_frame(TINY, [2**20, 0]), buffer)
    session = ReferenceSession(__import__("onnx").load_from_string(buffer.getvalue()))
    for i in range(2):  # held-out frames of other sizes than the one traced
        frame = make_frame(TINY, [EVAL_SEED, i])
        feats, coords = collate([frame])
        heatmap, box = session.run(None, {"voxel_features": feats, "voxel_coords": coords})
        with torch.no_grad():
            ref_heatmap, ref_box = trained_tiny.eval()(torch.from_numpy(feats), torch.from_numpy(coords))
        np.testing.assert_allclose(heatmap, ref_heatmap.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(box, ref_box.numpy(), rtol=1e-4, atol=1e-4)
        from_file, from_torch = run_file(session, trained_tiny, frame), run_torch(trained_tiny, frame)
        assert same_detections(from_file, from_torch)


# --- the shipped checkpoint ----------------------------------------------------------------------------


def test_shipped_checkpoint_loads_strictly_into_the_cli_factory_and_detects_cars() -> None:
    assert SHIPPED_CHECKPOINT.is_file(), "sparsetrt/demo/centerpoint_demo.pt ships with the package"
    state = torch.load(SHIPPED_CHECKPOINT, map_location="cpu", weights_only=True)
    recipe = export_recipe()
    recipe.model.load_state_dict(state["state_dict"])  # strict: what `sparsetrt export --checkpoint` does
    model, meta = load_checkpoint(SHIPPED_CHECKPOINT)
    assert meta["trained_ap_iou50"] > 0.5 > meta["random_init_ap_iou50"]
    frames = make_frames(model.cfg, EVAL_SEED, 2)
    trained = average_precision(predict(model, frames), frames, criterion="distance").ap
    untrained = average_precision(predict(random_init_model(model.cfg), frames), frames, criterion="distance").ap
    assert trained > 0.7 and untrained < 0.3


# --- Figure 1 ------------------------------------------------------------------------------------------


def _dilate(sites: set[tuple[int, int]], size: int) -> set[tuple[int, int]]:
    return {
        (y + dy, x + dx)
        for y, x in sites
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if 0 <= y + dy < size and 0 <= x + dx < size
    }


def test_figure1_regular_convs_dilate_the_curve_and_submanifold_ones_keep_it(tmp_path: Path) -> None:
    t = dilation_experiment(size=32)
    curve = {tuple(r) for r in t["curve"].indices[:, 1:].tolist()}
    once = _dilate(curve, 32)
    assert {tuple(r) for r in t["regular1"].indices[:, 1:].tolist()} == once
    assert {tuple(r) for r in t["regular2"].indices[:, 1:].tolist()} == _dilate(once, 32)
    assert torch.equal(t["subm2"].indices, t["curve"].indices)
    counts = figure1(tmp_path)
    assert counts["curve"] == counts["subm2"] < counts["regular1"] < counts["regular2"]
    assert (tmp_path / "submanifold_dilation.png").stat().st_size > 1000
