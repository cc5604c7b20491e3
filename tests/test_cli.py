"""The ``sparsetrt`` command end to end on a zoo model, on the CPU: export (a model factory plus a checkpoint),
check (PyTorch vs the reference runtime, with a per-output error table), run and bench (the reference runtime
on an ONNX file), info; and the errors a user meets, each with its message.

The zoo model is a spconv 2.3.8 network, so spconv's own forward is the independent oracle of every number.
Engine builds run in subprocesses in ``test_runtime_build.py``; engines cannot run here (no GPU).

This module also holds the model factories the tests hand to ``sparsetrt export`` (``test_cli:...``).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from zoo import ZOO
from zoo.run import spconv_forward

from sparsetrt.cli import CLIError, load_recipe, main
from sparsetrt.exporter import ExportRecipe, SparseTensor
from sparsetrt.exporter import nn as snn
from sparsetrt.runtime import ModelSpec, ReferenceSession, load_tensors, save_tensors
from sparsetrt.runtime.compare import ReferenceRunner, check, format_table

ZOO_NAME = "sparse_cnn2d"  # the zoo model that exports in about a second
INPUTS = ["voxel_features", "voxel_coords"]


# ---------------------------------------------------------------------------------------------- factories
def zoo_recipe() -> ExportRecipe:
    """A model factory as users write them: the model (weights come from --checkpoint) and one example input."""
    entry = ZOO[ZOO_NAME]
    features, coords, batch = entry.make_inputs(7, 2, 300)
    return ExportRecipe(entry.build(), (features, coords, batch), INPUTS, ["logits"])


class _SparseHead(torch.nn.Module):
    """Sparse outputs: the features and coordinates of the sites a strided conv creates."""

    def __init__(self) -> None:
        super().__init__()
        self.subm = snn.SubMConv3d(3, 8, 3, indice_key="s1")
        self.down = snn.SparseConv3d(8, 6, 3, stride=2, padding=1)

    def forward(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int):
        x = self.subm(SparseTensor(features, coords, [9, 20, 20], batch_size))
        y = self.down(x.replace_feature(torch.relu(x.features)))
        return y.features, y.indices


def sparse_recipe() -> ExportRecipe:
    gen = torch.Generator().manual_seed(3)
    model = _SparseHead().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    flat = torch.randperm(2 * 9 * 20 * 20, generator=gen)[:300]
    coords = torch.stack([flat // 3600, flat // 400 % 9, flat // 20 % 20, flat % 20], 1).to(torch.int32)
    return ExportRecipe(model, (torch.randn(300, 3, generator=gen), coords, 2), INPUTS, ["features", "coords"])


def not_a_recipe() -> torch.nn.Module:
    return torch.nn.Linear(2, 2)


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------------------------------------- export
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`sparsetrt export test_cli:zoo_recipe --checkpoint CKPT -o model.onnx --save-inputs inputs.bin`, with a
    checkpoint of weights other than the factory's (so loading it is observable)."""
    folder = tmp_path_factory.mktemp("cli")
    model = zoo_recipe().model
    gen = torch.Generator().manual_seed(11)
    params = {name for name, _ in model.named_parameters()}  # not BN statistics: a variance must stay positive
    state = {
        k: v + 0.05 * torch.randn(v.shape, generator=gen) if k in params else v for k, v in model.state_dict().items()
    }
    torch.save({"state_dict": state, "epoch": 3}, folder / "model.pth")
    args = ["--checkpoint", folder / "model.pth", "-o", folder / "model.onnx", "--save-inputs", folder / "inputs.bin"]
    assert main(["export", "test_cli:zoo_recipe", *map(str, args)]) == 0
    return {"dir": folder, "onnx": folder / "model.onnx", "inputs": folder / "inputs.bin", "ckpt": folder / "model.pth"}


def _oracle(ckpt: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    """spconv's forward of the zoo model with the checkpoint's weights."""
    model = ZOO[ZOO_NAME].build()
    model.load_state_dict(torch.load(ckpt, weights_only=True)["state_dict"])
    features, coords = (torch.from_numpy(feed[n]) for n in INPUTS)
    return spconv_forward(model, features, coords, 2).numpy()


def test_export_writes_a_file_that_computes_what_spconv_computes(exported: dict[str, Path]) -> None:
    feed = load_tensors(exported["inputs"])
    assert list(feed) == INPUTS and feed["voxel_coords"].dtype == np.int32
    (got,) = ReferenceSession(exported["onnx"]).run(None, feed)
    expected = _oracle(exported["ckpt"], feed)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))
    # And not what the factory's own weights compute: the checkpoint was loaded.
    assert not np.allclose(got, spconv_forward(zoo_recipe().model, *map(torch.from_numpy, feed.values()), 2).numpy())


def test_check_tabulates_pytorch_against_the_reference(exported: dict[str, Path], capsys) -> None:
    args = ["check", exported["onnx"], "--model", "test_cli:zoo_recipe", "--checkpoint", exported["ckpt"]]
    code, out, _ = _cli(capsys, *args, "--frames", "2")
    assert code == 0, out
    rows = [line.split() for line in out.splitlines() if line.startswith("reference")]
    assert len(rows) == 3  # one output, three frames
    assert all(row[1] == "pytorch" and row[2] == "logits" and row[-1] == "yes" for row in rows)
    assert "all 3 comparisons within 0.0001" in out


def test_check_reports_outputs_that_differ(exported: dict[str, Path], capsys, tmp_path: Path) -> None:
    """The ONNX file holds the checkpoint's weights; PyTorch with the factory's weights must not match it."""
    code, out, _ = _cli(capsys, "check", exported["onnx"], "--model", "test_cli:zoo_recipe", "--frames", "0")
    assert code == 1
    (row,) = [line for line in out.splitlines() if line.startswith("reference")]
    assert row.split()[-1] == "NO" and "1 of 1 comparisons exceed the tolerance" in out
    assert "pass the checkpoint you exported with" in out  # the likely cause, named


def test_run_and_save_outputs(exported: dict[str, Path], capsys, tmp_path: Path) -> None:
    code, out, _ = _cli(capsys, "run", exported["onnx"], "--inputs", exported["inputs"], "--save", tmp_path / "o.bin")
    assert code == 0 and "ran on the CPU reference runtime" in out and "logits: float32 [2, 10]" in out
    expected = _oracle(exported["ckpt"], load_tensors(exported["inputs"]))
    got = load_tensors(tmp_path / "o.bin")["logits"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))


def test_bench_prints_latency_percentiles(exported: dict[str, Path], capsys) -> None:
    args = ["--inputs", exported["inputs"], "--iterations", "3", "--warmup", "1"]
    code, out, _ = _cli(capsys, "bench", exported["onnx"], *args)
    assert code == 0
    header, host = out.splitlines()[-2:]
    assert header.split() == ["ms", "p50", "p90", "p95", "p99", "mean", "min", "max"]
    values = [float(v) for v in host.split()[1:]]
    assert host.startswith("host") and values[-2] <= values[0] <= values[-1]  # min <= p50 <= max
    assert "600 voxels, 3 runs after 1 warm-up" in out


def test_info_on_onnx_and_tensor_files(exported: dict[str, Path], capsys) -> None:
    code, out, _ = _cli(capsys, "info", exported["onnx"])
    assert code == 0
    assert "SubmRulebook" in out and "shared by" in out  # the exporter's summary
    assert "voxel_coords: int32 ['num_voxels', 3]  voxel coordinates (batch, *grid) on grid [96, 96]" in out
    assert "batch size 2" in out
    code, out, _ = _cli(capsys, "info", exported["inputs"])
    assert code == 0 and out.splitlines() == ["voxel_features: float32 [600, 1]", "voxel_coords: int32 [600, 3]"]


# ---------------------------------------------------------------------------------------------- errors
def test_run_refuses_bad_inputs(exported: dict[str, Path], capsys, tmp_path: Path) -> None:
    feed = load_tensors(exported["inputs"])
    save_tensors(tmp_path / "i64.bin", {**feed, "voxel_coords": feed["voxel_coords"].astype(np.int64)})
    code, _, err = _cli(capsys, "run", exported["onnx"], "--inputs", tmp_path / "i64.bin")
    assert code == 2 and "'voxel_coords' is int64, the model takes int32: convert it first" in err
    # Float inputs are converted to the model's float type (a float32 inputs file feeds an fp16 engine), saying so.
    save_tensors(tmp_path / "f64.bin", {**feed, "voxel_features": feed["voxel_features"].astype(np.float64)})
    code, _, err = _cli(capsys, "run", exported["onnx"], "--inputs", tmp_path / "f64.bin")
    assert code == 0 and "'voxel_features' converted from float64 to float32" in err
    coords = feed["voxel_coords"].copy()
    coords[5] = coords[2]
    save_tensors(tmp_path / "dup.bin", {**feed, "voxel_coords": coords})
    code, _, err = _cli(capsys, "run", exported["onnx"], "--inputs", tmp_path / "dup.bin")
    assert code == 2 and "indices rows 2 and 5 are the same site" in err
    code, _, err = _cli(capsys, "run", exported["onnx"], "--inputs", tmp_path / "none.bin")
    assert code == 2 and "does not exist" in err


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("no_colon", "must be MODULE:FUNCTION"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("test_cli:missing", "has no function 'missing'"),
        ("test_cli:not_a_recipe", "returned Linear; a model factory returns sparsetrt.exporter.ExportRecipe"),
        ("nothing/here.py:export_recipe", "model factory file nothing/here.py does not exist"),
    ],
)
def test_factory_errors(factory: str, message: str, capsys, tmp_path: Path) -> None:
    code, _, err = _cli(capsys, "export", factory, "-o", tmp_path / "m.onnx")
    assert code == 2 and message in err and not (tmp_path / "m.onnx").exists()


def test_checkpoint_formats_and_errors(tmp_path: Path) -> None:
    state = zoo_recipe().model.state_dict()
    state = {k: torch.full_like(v, 0.25) if v.is_floating_point() else v for k, v in state.items()}
    payloads = (state, {"state_dict": state}, {"model": state, "optimizer": {}}, {"model_state": state, "it": 9})
    for i, payload in enumerate(payloads):
        torch.save(payload, tmp_path / f"c{i}.pth")
        model = load_recipe("test_cli:zoo_recipe", str(tmp_path / f"c{i}.pth")).model
        assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
        assert not model.training
    torch.save({k: v for k, v in list(state.items())[1:]}, tmp_path / "partial.pth")
    with pytest.raises(CLIError, match=r"does not fit the factory's model.*Missing key"):
        load_recipe("test_cli:zoo_recipe", str(tmp_path / "partial.pth"))
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(CLIError, match="holds a list, not a state_dict"):
        load_recipe("test_cli:zoo_recipe", str(tmp_path / "list.pth"))
    with pytest.raises(CLIError, match="does not exist"):
        load_recipe("test_cli:zoo_recipe", str(tmp_path / "nothing.pth"))


def test_check_needs_something_to_compare(exported: dict[str, Path], capsys) -> None:
    code, _, err = _cli(capsys, "check", exported["onnx"], "--inputs", exported["inputs"])
    assert code == 2 and "nothing to compare" in err
    code, _, err = _cli(capsys, "check", exported["onnx"], "--checkpoint", exported["ckpt"])
    assert code == 2 and "--checkpoint needs --model" in err


# ---------------------------------------------------------------------------------------------- sparse outputs
class _Reordered(ReferenceRunner):
    """The reference runtime with its sparse output rows in another order (as a GPU's may be) and, optionally,
    one feature nudged."""

    def __init__(self, session: ReferenceSession, spec: ModelSpec, seed: int, nudge: float = 0.0) -> None:
        super().__init__(session, spec)
        self.name, self.seed, self.nudge = "reordered", seed, nudge

    def infer_impl(self, feed_dict):
        out = super().infer_impl(feed_dict)
        perm = np.random.default_rng(self.seed).permutation(len(out["coords"]))
        out["features"], out["coords"] = out["features"][perm].copy(), out["coords"][perm]
        out["features"][0, 0] += self.nudge
        return OrderedDict(out)


def test_sparse_outputs_are_compared_site_by_site(gen: torch.Generator, tmp_path: Path, capsys) -> None:
    code, _, _ = _cli(capsys, "export", "test_cli:sparse_recipe", "-o", tmp_path / "s.onnx")
    assert code == 0
    proto = onnx.load(tmp_path / "s.onnx")
    spec = ModelSpec.from_onnx(proto)
    recipe = sparse_recipe()
    feed = {n: t.numpy() for n, t in zip(INPUTS, recipe.args[:2], strict=True)}
    seed = int(torch.randint(1 << 30, (1,), generator=gen))
    session = ReferenceSession(proto)
    rows = check([ReferenceRunner(session, spec), _Reordered(session, spec, seed)], [feed], spec, 1e-4)
    assert [(r.output, r.passed, r.max_abs) for r in rows] == [("features", True, 0.0), ("coords", True, 0.0)]
    scale = float(np.abs(session.run(["features"], feed)[0]).max())
    rows = check([ReferenceRunner(session, spec), _Reordered(session, spec, seed, 0.01 * scale)], [feed], spec, 1e-4)
    assert [r.passed for r in rows] == [False, True]
    assert rows[0].max_abs == pytest.approx(0.01 * scale, rel=1e-3)
    assert "NO" in format_table(rows)


def test_check_on_sparse_outputs_against_pytorch(tmp_path: Path, capsys) -> None:
    assert main(["export", "test_cli:sparse_recipe", "-o", str(tmp_path / "s.onnx")]) == 0
    code, out, _ = _cli(capsys, "check", tmp_path / "s.onnx", "--model", "test_cli:sparse_recipe", "--frames", "1")
    assert code == 0, out
    assert {line.split()[2] for line in out.splitlines() if line.startswith("reference")} == {"features", "coords"}


def test_export_picks_the_exporter(tmp_path: Path, capsys) -> None:
    """--dynamo (the default) traces with torch.export, --no-dynamo with the TorchScript exporter: opset 18
    and 17, and files that compute the same outputs."""
    outputs = []
    for flag, tracer, opset in (("--dynamo", "torch.export", 18), ("--no-dynamo", "the TorchScript exporter", 17)):
        path = tmp_path / f"{flag}.onnx"
        code, out, _ = _cli(capsys, "export", "test_cli:sparse_recipe", "-o", path, flag)
        assert code == 0 and f"exported with {tracer} in" in out, out
        proto = onnx.load(path)
        assert next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == opset
        feed = {n: t.numpy() for n, t in zip(INPUTS, sparse_recipe().args[:2], strict=True)}
        outputs.append(ReferenceSession(proto).run(None, feed))
    for a, b in zip(*outputs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "sparsetrt", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("sparsetrt ")


# ---------------------------------------------------------------------------------------------- the README
ROOT = Path(__file__).resolve().parents[1]
README_SECTION = "## From a spconv model to an engine with the CLI"
README_LIBRARY = "build/plugins/libsparsetrt_plugins.so"


def _readme_commands() -> list[str]:
    """The commands of the README's CLI walk-through, in order (comments and blank lines dropped)."""
    text = (ROOT / "README.md").read_text()
    start = text.index(README_SECTION)
    section = text[start : text.find("\n## ", start + 1)]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _needs_gpu(command: str) -> bool:
    return "--engine" in command or (command.split()[1] in ("run", "bench") and ".engine" in command)


def _run_readme_command(command: str, library: Path | None = None) -> subprocess.CompletedProcess | int:
    argv = shlex.split(command.replace(README_LIBRARY, str(library)) if library else command)
    if argv[0] == "python":
        return subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=600)
    if argv[1] == "build":  # in a subprocess: a failed multi-plugin build can abort the process
        return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=900)
    return main(argv[1:])


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh folder where the walk-through's CPU steps have run (examples/ linked in, as in a checkout)."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / "examples").symlink_to(ROOT / "examples")
    return folder


def test_readme_cpu_steps(readme_dir: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(readme_dir)
    commands = _readme_commands()
    assert commands[0].startswith("pip install") and any(c.startswith("sparsetrt build") for c in commands)
    ran = 0
    for command in commands[1:]:
        if command.startswith(("cmake", "TENSORRT_ROOT")) or README_LIBRARY in command or _needs_gpu(command):
            continue
        if command.startswith("sparsetrt info") and ".engine" in command:
            continue  # after the build, in the next test
        result = _run_readme_command(command)
        code = result if isinstance(result, int) else result.returncode
        assert code == 0, f"{command}\n{capsys.readouterr()}{getattr(result, 'stderr', '')}"
        ran += 1
    assert ran == 5
    out = capsys.readouterr().out
    assert "all 3 comparisons within 0.0001" in out and "bev: float32 [1, 64, 16, 16]" in out
    assert (readme_dir / "second.onnx").is_file() and (readme_dir / "bev_reference.bin").is_file()


def test_readme_engine_build(readme_dir: Path, plugin_library: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(readme_dir)
    if not (readme_dir / "second.onnx").is_file():
        pytest.skip("the README's CPU steps did not run first (run the whole module)")
    build = next(c for c in _readme_commands() if c.startswith("sparsetrt build"))
    result = _run_readme_command(build, plugin_library)
    assert result.returncode == 0, result.stdout + result.stderr
    assert main(["info", "second.engine"]) == 0
    assert "voxel coordinates (batch, *grid) on grid [41, 128, 128]" in capsys.readouterr().out


def test_readme_gpu_steps(readme_dir: Path, plugin_library: Path, monkeypatch) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the README's GPU steps cannot run on this machine")
    monkeypatch.chdir(readme_dir)
    if not (readme_dir / "second.engine").is_file():
        pytest.skip("the README's build step did not run first (run the whole module)")
    for command in filter(_needs_gpu, _readme_commands()):
        assert _run_readme_command(command, plugin_library) == 0, command
