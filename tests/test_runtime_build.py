"""Engine builds through TensorRT-RTX on the CPU (it builds ahead of time without a GPU; it cannot run engines):
`sparsetrt build` writes an engine TensorRT recognises as well formed, its metadata, a timing cache, and shows
TensorRT's build phases; with the plugin library, a zoo model builds. Errors come before any build work.

Builds run in subprocesses (the CLI), because a failed build of a multi-plugin graph can abort the process.
Running engines needs a GPU: ``test_engine_runs_on_a_gpu`` does where one is, and skips, saying so, elsewhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from zoo import ZOO

from sparsetrt.cli import main
from sparsetrt.exporter import export
from sparsetrt.exporter.schema import DOMAIN, load
from sparsetrt.runtime import EngineSession, NoGPUError, metadata_path
from sparsetrt.runtime.engine import CudaGraphError, cuda_graph_refusal
from sparsetrt.runtime.plugins import load_plugin_libraries
from sparsetrt.runtime.spec import ModelSpec, save_spec

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def rtx():
    try:
        from sparsetrt.runtime.tensorrt_module import load_tensorrt

        return load_tensorrt("tensorrt_rtx")
    except ImportError as e:
        pytest.skip(f"TensorRT-RTX is not installed ({e}): pip install -e '.[test]'")


def _cli_subprocess(*argv: object, cwd: Path) -> subprocess.CompletedProcess:
    paths = [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        [sys.executable, "-m", "sparsetrt", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=900,
    )


def _standard_model(path: Path, gen: torch.Generator, dynamic_width: bool = False) -> onnx.ModelProto:
    """Standard ops only (no plugins needed): per-voxel features [N, 4] -> MatMul -> Relu -> [N, 8]."""
    weight = numpy_helper.from_array(torch.randn(4, 8, generator=gen).numpy(), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["voxel_features", "w"], ["y"]), helper.make_node("Relu", ["y"], ["out"])],
        "standard",
        [
            helper.make_tensor_value_info(
                "voxel_features", TensorProto.FLOAT, ["num_voxels", "c" if dynamic_width else 4]
            )
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["num_voxels", 8])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return model


def _standard_model_proto(gen: torch.Generator) -> onnx.ModelProto:
    weight = numpy_helper.from_array(torch.randn(4, 8, generator=gen).numpy(), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "static",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["num_voxels", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["num_voxels", 8])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _assert_well_formed_engine(trt, path: Path) -> None:
    """TensorRT's own check of the engine header: not malformed and of this TensorRT version (it cannot say
    more without a GPU, which it reports as a CUDA error, not ours)."""
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    data = path.read_bytes()
    _, diagnostics = runtime.get_engine_validity(data[: runtime.engine_header_size])
    bad = int(trt.EngineInvalidityDiagnostics.MALFORMED_ENGINE) | int(trt.EngineInvalidityDiagnostics.VERSION_MISMATCH)
    assert int(diagnostics) & bad == 0, f"TensorRT says the engine is invalid: diagnostics {int(diagnostics)}"
    _, garbage = runtime.get_engine_validity(bytes(runtime.engine_header_size))  # the check is not vacuous
    assert int(garbage) & bad


def test_build_on_the_cpu_with_profile_cache_and_progress(rtx, gen: torch.Generator, tmp_path: Path) -> None:
    _standard_model(tmp_path / "m.onnx", gen)
    args = ["build", "m.onnx", "-o", "m.engine", "--trt", "tensorrt_rtx", "--voxels", "2:64:256"]
    result = _cli_subprocess(*args, "--workspace", "64", "--timing-cache", "m.cache", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "m.engine: " in result.stdout and "tensorrt_rtx 1.7" in result.stdout and "voxels 2:64:256" in result.stdout
    # The build phases come from TensorRT's IProgressMonitor callbacks.
    assert "Building engine" in result.stderr, result.stderr
    _assert_well_formed_engine(rtx, tmp_path / "m.engine")
    meta = json.loads(metadata_path(tmp_path / "m.engine").read_text())
    assert meta["spec"]["profile"] == {"voxel_features": [[2, 4], [64, 4], [256, 4]]}
    assert meta["built_with"]["module"] == "tensorrt_rtx" and meta["precision"] == "fp32"
    assert meta["source_onnx"]["sha256"] == hashlib.sha256((tmp_path / "m.onnx").read_bytes()).hexdigest()
    assert (tmp_path / "m.cache").stat().st_size > 0 and not (tmp_path / "m.cache.lock").exists()
    # A second build reads the cache; --fp16 converts the file's float I/O and weights first.
    result = _cli_subprocess(*args, "--timing-cache", "m.cache", "--fp16", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Building engine" not in result.stderr
    meta = json.loads(metadata_path(tmp_path / "m.engine").read_text())
    assert meta["precision"] == "fp16"
    assert [t["dtype"] for t in (*meta["spec"]["inputs"], *meta["spec"]["outputs"])] == ["float16", "float16"]
    # `info` reads the metadata back without a GPU.
    result = _cli_subprocess("info", "m.engine", cwd=tmp_path)
    assert result.returncode == 0 and "engine built with tensorrt_rtx" in result.stdout
    assert "profile voxel_features: min [2, 4], opt [64, 4], max [256, 4]" in result.stdout


def test_build_for_a_chosen_compute_capability(rtx, gen: torch.Generator, tmp_path: Path) -> None:
    _standard_model(tmp_path / "m.onnx", gen)
    result = _cli_subprocess(
        "build", "m.onnx", "--trt", "tensorrt_rtx", "--compute-capability", "8.6", "--no-progress", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "m.engine.json").read_text())["compute_capabilities"] == ["8.6"]


def _custom_op_model(path: Path) -> None:
    node = helper.make_node(
        "SubmRulebook", ["c"], ["n"], domain=DOMAIN, spatial_shape=[8, 8], kernel_size=[3, 3], dilation=[1, 1]
    )
    graph = helper.make_graph(
        [node],
        "custom",
        [helper.make_tensor_value_info("c", TensorProto.INT32, ["num_voxels", 3])],
        [helper.make_tensor_value_info("n", TensorProto.INT32, [9, "num_voxels"])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, load().version)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), path)


@pytest.mark.parametrize(
    ("setup", "argv", "message"),
    [
        ("none", ["missing.onnx"], "ONNX file missing.onnx does not exist"),
        ("junk", ["m.onnx"], "is not a readable ONNX file"),
        ("standard", ["m.onnx", "--voxels", "1:2"], "--voxels takes MIN:OPT:MAX"),
        ("standard", ["m.onnx", "--voxels", "5:2:9"], "must satisfy 1 <= MIN <= OPT <= MAX"),
        ("standard", ["m.onnx", "--voxels", "1:2:99999999999"], "MAX must be at most 2147483647 (2^31 - 1"),
        ("standard", ["m.onnx", "-o", "no/such/dir/m.engine"], "folder no/such/dir does not exist"),
        ("dynamic_width", ["m.onnx"], "only dim 0 (the voxel count) may be dynamic"),
        ("custom", ["m.onnx"], "has sparsetrt ops (SubmRulebook), which TensorRT runs through our plugins"),
        ("custom", ["m.onnx", "--plugins", "nothing.so"], "plugin library nothing.so does not exist"),
        ("standard", ["m.onnx", "--compute-capability", "86"], "a compute capability is MAJOR.MINOR"),
    ],
)
def test_build_errors(
    rtx, gen: torch.Generator, tmp_path: Path, monkeypatch, capsys, setup: str, argv: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if setup in ("standard", "dynamic_width"):
        _standard_model(tmp_path / "m.onnx", gen, dynamic_width=setup == "dynamic_width")
    elif setup == "custom":
        _custom_op_model(tmp_path / "m.onnx")
    elif setup == "junk":
        (tmp_path / "m.onnx").write_bytes(b"not onnx at all")
    # In-process is safe: each of these fails before TensorRT builds anything.
    code = main(["build", *argv, "--trt", "tensorrt_rtx", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not (tmp_path / "m.engine").exists()


def test_a_standard_op_tensorrt_cannot_parse_is_named_not_blamed_on_the_plugins(rtx, tmp_path: Path, capsys) -> None:
    """ONNX Unique (what torch.unique of sites became before UniqueSites): the error names the node and says the
    model must be exported without it, rather than suspecting the plugin library."""
    x = helper.make_tensor_value_info("voxel_coords", TensorProto.INT32, ["num_voxels", 3])
    y = helper.make_tensor_value_info("unique", TensorProto.INT32, None)
    node = helper.make_node("Unique", ["voxel_coords"], ["unique"], axis=0, name="bev_out/Unique")
    graph = helper.make_graph([node], "unique", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    code = main(["build", str(tmp_path / "m.onnx"), "--trt", "tensorrt_rtx", "--no-progress", "--voxels", "1:8:64"])
    err = capsys.readouterr().err
    assert code != 0 and "node 'bev_out/Unique' (Unique): a standard ONNX op this TensorRT cannot run" in err, err
    assert "plugin library" not in err.split("refused", 1)[-1], err


def test_running_an_engine_without_a_gpu_says_so(rtx, gen: torch.Generator, tmp_path: Path, capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the no-GPU message cannot be observed here")
    _standard_model(tmp_path / "m.onnx", gen)
    (tmp_path / "m.engine").write_bytes(b"an engine")  # never read: the GPU check comes first
    with pytest.raises(NoGPUError, match="needs an NVIDIA GPU and a CUDA build of PyTorch"):
        EngineSession(tmp_path / "m.engine")
    from sparsetrt.runtime import save_tensors

    save_tensors(tmp_path / "in.bin", {"voxel_features": np.zeros((3, 4), np.float32)})
    for verb in ("run", "bench"):
        assert main([verb, str(tmp_path / "m.engine"), "--inputs", str(tmp_path / "in.bin")]) == 2
        assert "run or check the ONNX file instead" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- CUDA graphs
def test_spec_names_the_data_dependent_layers(gen: torch.Generator) -> None:
    """Every SparseRulebook (a size tensor TensorRT reads back mid-run) and ONNX's data-dependent-shape ops."""
    entry = ZOO["second"]
    buf = io.BytesIO()
    export(entry.build(), entry.make_inputs(0, 1, 300), buf, input_names=["voxel_features", "voxel_coords"])
    proto = onnx.load_from_string(buf.getvalue())
    spec = ModelSpec.from_onnx(proto)
    rulebooks = [n.name for n in proto.graph.node if n.op_type == "SparseRulebook"]
    assert rulebooks and spec.data_dependent == rulebooks
    assert ModelSpec.from_json(spec.to_json()).data_dependent == rulebooks
    legacy = spec.to_json()
    del legacy["data_dependent"]  # metadata written before it was recorded: unknown, not "none"
    assert ModelSpec.from_json(legacy).data_dependent is None
    assert ModelSpec.from_onnx(_standard_model_proto(gen)).data_dependent == []


def test_cuda_graphs_are_refused_up_front_for_data_dependent_engines(gen: torch.Generator, tmp_path: Path) -> None:
    """Full TensorRT cannot capture an engine that reads sizes back mid-run: EngineSession says so when it is made,
    naming the layers, before it loads anything or needs a GPU (it used to try, and fail inside the capture)."""
    entry = ZOO["second"]
    buf = io.BytesIO()
    export(entry.build(), entry.make_inputs(0, 1, 300), buf, input_names=["voxel_features", "voxel_coords"])
    spec = ModelSpec.from_onnx(onnx.load_from_string(buf.getvalue()))
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"an engine")  # never deserialized: the refusal comes first
    save_spec(metadata_path(engine), spec, built_with={"module": "tensorrt", "version": "10.3.0"})
    with pytest.raises(CudaGraphError, match=r"CUDA graphs cannot replay this engine: 4 layer\(s\) .*SparseRulebook"):
        EngineSession(engine, cuda_graph=True)
    assert "SparseRulebook" in cuda_graph_refusal(spec)
    unknown = ModelSpec(spec.inputs, spec.outputs, spec.batch_size)
    assert "nothing says so" in cuda_graph_refusal(unknown) and "nothing says so" in cuda_graph_refusal(None)
    assert cuda_graph_refusal(ModelSpec.from_onnx(_standard_model_proto(gen))) is None
    # TensorRT-RTX captures graphs itself: no refusal (here the next thing missing is the GPU).
    if not torch.cuda.is_available():
        save_spec(metadata_path(engine), spec, built_with={"module": "tensorrt_rtx", "version": "1.7"})
        with pytest.raises(NoGPUError):
            EngineSession(engine, cuda_graph=True)


def test_engine_runtime_does_not_call_is_stream_capturable() -> None:
    """IExecutionContext.is_stream_capturable is TensorRT-RTX's; full TensorRT 10 has none."""
    import sparsetrt.runtime.engine as engine_module

    assert "is_stream_capturable" not in Path(engine_module.__file__).read_text()


# ---------------------------------------------------------------------------------------------- plugins
def test_plugin_library_creators_match_the_schema(rtx, plugin_library: Path, capsys) -> None:
    assert main(["info", str(plugin_library), "--trt", "tensorrt_rtx"]) == 0
    out = capsys.readouterr().out
    listed = {line.split("::")[1].split()[0] for line in out.splitlines() if line.startswith("  sparsetrt::")}
    assert listed == set(load().ops), out
    assert load_plugin_libraries(rtx, [plugin_library]) == []  # once per process: loading again adds nothing


def test_zoo_model_builds_with_the_plugin_library(rtx, plugin_library: Path, tmp_path: Path) -> None:
    """`sparsetrt build model.onnx -o model.engine --plugins LIB` on a CPU-only machine (the README's step)."""
    entry = ZOO["sparse_cnn2d"]
    buf = io.BytesIO()
    export(entry.build(), entry.make_inputs(0, 2, 200), buf, input_names=["voxel_features", "voxel_coords"])
    (tmp_path / "model.onnx").write_bytes(buf.getvalue())
    argv = ["build", "model.onnx", "-o", "model.engine", "--plugins", plugin_library, "--trt", "tensorrt_rtx"]
    result = _cli_subprocess(*argv, "--voxels", "1:400:1000", "--fp16", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_well_formed_engine(rtx, tmp_path / "model.engine")
    meta = json.loads((tmp_path / "model.engine.json").read_text())
    assert meta["plugins"] == [plugin_library.name] and meta["precision"] == "fp16"
    coords = next(t for t in meta["spec"]["inputs"] if t["role"] == "coords")
    assert coords["spatial_shape"] == [96, 96] and meta["spec"]["batch_size"] == 2


# ---------------------------------------------------------------------------------------------- GPU
def test_engine_runs_on_a_gpu(gen: torch.Generator, tmp_path: Path) -> None:
    """Build and run a standard-op engine with the installed TensorRT: outputs against onnxruntime, including a
    data-dependent output (NonZero, through the output allocator) and a CUDA-graph replay of a static one."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: engines cannot run on this machine (built and checked on the CPU above)")
    import onnxruntime as ort

    from sparsetrt.runtime import build_engine

    weight = numpy_helper.from_array(torch.randn(4, 8, generator=gen).numpy(), "w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["y"]),
            helper.make_node("Relu", ["y"], ["dense"]),
            helper.make_node("NonZero", ["dense"], ["where"]),
        ],
        "gpu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["num_voxels", 4])],
        [
            helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["num_voxels", 8]),
            helper.make_tensor_value_info("where", TensorProto.INT64, [2, "nz"]),
        ],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "g.onnx")
    build_engine(tmp_path / "g.onnx", tmp_path / "g.engine", voxels=(1, 64, 512), progress=False)
    session = EngineSession(tmp_path / "g.engine")
    reference = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    for n in (5, 300):
        x = torch.randn(n, 4, generator=gen).numpy()
        got = {k: v.cpu().numpy() for k, v in session.run({"x": x}).items()}
        dense, where = reference.run(None, {"x": x})
        np.testing.assert_allclose(got["dense"], dense, rtol=1e-3, atol=1e-3)
        np.testing.assert_array_equal(got["where"], where)
    bench = session.benchmark({"x": x}, iterations=5, warmup=1)
    assert len(bench.host_ms) == len(bench.device_ms) == 5
    # CUDA-graph replay of a static engine: new data through the same shapes.
    _standard_model(tmp_path / "s.onnx", gen)
    build_engine(tmp_path / "s.onnx", tmp_path / "s.engine", voxels=(1, 64, 512), progress=False)
    graphed = EngineSession(tmp_path / "s.engine", cuda_graph=True)
    reference = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    for _ in range(3):
        x = torch.randn(100, 4, generator=gen).numpy()
        got = graphed.run({"voxel_features": x})["out"].cpu().numpy()
        np.testing.assert_allclose(got, reference.run(None, {"voxel_features": x})[0], rtol=1e-3, atol=1e-3)
