"""The ``sparsetrt`` command: from a trained model to a running engine, with numbers at every step.

    sparsetrt export MODULE:FUNCTION [--checkpoint CKPT] -o model.onnx [--save-inputs inputs.bin]
    sparsetrt check  model.onnx [--model MODULE:FUNCTION] [--engine model.engine --plugins LIB] [--inputs FILE]
    sparsetrt build  model.onnx -o model.engine --plugins LIB [--voxels MIN:OPT:MAX] [--fp16]
    sparsetrt run    model.engine|model.onnx --inputs inputs.bin [--save outputs.bin] [--plugins LIB]
    sparsetrt bench  model.engine|model.onnx --inputs inputs.bin [--iterations N] [--plugins LIB]
    sparsetrt info   model.onnx|libsparsetrt_plugins.so|model.engine|tensors.bin

Exit status: 0 success; 1 a check found outputs that differ; 2 bad input or usage (one line saying what is
wrong and what to do); 3 an internal error, a bug in sparsetrt (please report it). --debug shows tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparsetrt.errors import SparsetrtError

EXIT_OK, EXIT_MISMATCH, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C

# Bad input or environment, reported in one line with EXIT_ERROR: our own errors, and the operating system's
# (a file that cannot be read or written) and a missing dependency. Anything else is a bug: EXIT_INTERNAL.
BAD_INPUT: tuple[type[BaseException], ...] = (SparsetrtError, OSError, ImportError)


class CLIError(SparsetrtError):
    """A problem with what the user asked for; printed without a traceback."""


def _out(text: str = "") -> None:
    print(text, flush=True)


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- recipes
def load_recipe(target: str, checkpoint: str | None = None) -> Any:
    """Import ``module:function`` (or ``file.py:function``), call it with no arguments, check it returned an
    ExportRecipe, and load ``checkpoint`` (a state_dict, or a dict holding one under "state_dict", "model" or
    OpenPCDet's "model_state") into its model, strictly."""
    from sparsetrt.exporter.recipe import ExportRecipe

    if target.endswith((".yaml", ".yml")):
        return _openpcdet_recipe(target, checkpoint)
    module_name, sep, function_name = target.rpartition(":")
    if not sep or not module_name or not function_name:
        raise CLIError(
            f"model factory must be MODULE:FUNCTION or path/to/file.py:FUNCTION (e.g. mymodels.second:export_recipe), "
            f"got {target!r}"
        )
    module = _import_factory_module(module_name, target)
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise CLIError(f"module {module_name!r} has no function {function_name!r}")
    try:
        recipe = factory()
    except Exception as e:  # the user's code: say where it failed, without our traceback
        raise CLIError(f"the model factory {target}() raised {_user_error(e)}") from e
    if not isinstance(recipe, ExportRecipe):
        raise CLIError(
            f"{target}() returned {type(recipe).__name__}; a model factory returns sparsetrt.exporter.ExportRecipe("
            "model, args, input_names, output_names)"
        )
    if not isinstance(recipe.args, tuple):  # export() takes one bare tensor as (tensor,); so do we
        recipe.args = (recipe.args,)
    tensors = sum(1 for a in recipe.args if hasattr(a, "shape") and hasattr(a, "dtype"))
    if len(recipe.input_names) != tensors:
        raise CLIError(
            f"{target}(): input_names {recipe.input_names} name {len(recipe.input_names)} inputs but args hold "
            f"{tensors} tensors; name each tensor argument in order"
        )
    if checkpoint is not None:
        _load_checkpoint(recipe.model, checkpoint)
    recipe.model.eval()
    return recipe


def _openpcdet_recipe(config: str, checkpoint: str | None) -> Any:
    """An OpenPCDet config file: its BACKBONE_3D built as OpenPCDet builds it (pcdet must be importable), weights
    from the detector checkpoint (sparsetrt.exporter.adapters.openpcdet_recipe)."""
    from sparsetrt.exporter.adapters import openpcdet_recipe

    if checkpoint is not None and not Path(checkpoint).is_file():
        raise CLIError(f"checkpoint {checkpoint} does not exist")
    try:
        return openpcdet_recipe(config, checkpoint)
    except (ImportError, KeyError, FileNotFoundError, ValueError) as e:
        raise CLIError(f"cannot build the OpenPCDet modules of {config}: {e}") from e
    except RuntimeError as e:  # load_state_dict: missing or unexpected weights
        detail = " ".join(str(e).split())
        raise CLIError(
            f"checkpoint {checkpoint} does not fit the modules of {config} (loaded strictly): {detail}"
        ) from e


def _import_factory_module(name: str, target: str) -> Any:
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise CLIError(f"model factory file {path} does not exist")
        spec = importlib.util.spec_from_file_location(f"_sparsetrt_factory_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise CLIError(f"cannot import {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # SyntaxError, ImportError, whatever its top level raises: the user's code
            sys.modules.pop(spec.name, None)
            raise CLIError(f"cannot load the model factory file {path} of {target!r}: {_user_error(e)}") from e
        return module
    # Like `python -m`, let a module in the working directory be found.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise CLIError(f"cannot import module {name!r} of {target!r}: {e}") from e
    except Exception as e:  # the module's top level raised (a SyntaxError, say): the user's code
        raise CLIError(f"cannot load module {name!r} of {target!r}: {_user_error(e)}") from e


def _user_error(e: BaseException) -> str:
    """``SyntaxError: invalid syntax (at models.py:12)``: an error in the user's code, located, in one line."""
    where = ""
    if isinstance(e, SyntaxError) and e.filename:
        where = f" (at {e.filename}:{e.lineno})"
    else:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if "sparsetrt" not in Path(f.filename).parts]
        if frames:
            where = f" (at {frames[-1].filename}:{frames[-1].lineno})"
    message = " ".join(str(e).split()) if not isinstance(e, SyntaxError) else e.msg
    return f"{type(e).__name__}: {message}{where}"


def _load_checkpoint(model: Any, path: str) -> None:
    import torch

    if not Path(path).is_file():
        raise CLIError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused (custom classes) or not a torch file
        raise CLIError(
            f"cannot read checkpoint {path} as weights ({e}); save it with torch.save(model.state_dict(), path) "
            "or torch.save({'state_dict': model.state_dict(), ...}, path)"
        ) from e
    state = data
    if isinstance(data, dict):
        for key in ("state_dict", "model", "model_state"):  # the last is OpenPCDet's
            if isinstance(data.get(key), dict):
                state = data[key]
                break
    if not isinstance(state, dict):
        raise CLIError(f"checkpoint {path} holds a {type(state).__name__}, not a state_dict")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())  # torch's message spans lines
        raise CLIError(f"checkpoint {path} does not fit the factory's model (loaded strictly): {detail}") from e


def _recipe_feed(recipe: Any) -> dict[str, np.ndarray]:
    tensors = [a for a in recipe.args if hasattr(a, "shape") and hasattr(a, "dtype")]
    return {n: t.detach().cpu().numpy() for n, t in zip(recipe.input_names, tensors, strict=True)}


# ---------------------------------------------------------------------------------------------- verbs
def cmd_export(args: argparse.Namespace) -> int:
    from sparsetrt.exporter import export
    from sparsetrt.exporter.export import DEFAULT_DYNAMO
    from sparsetrt.runtime import ModelSpec, save_tensors

    recipe = load_recipe(args.factory, args.checkpoint)
    kwargs = dict(recipe.export_kwargs)
    if args.fp16:
        kwargs["fp16"] = True
    if args.max_sites is not None:
        kwargs["max_sites"] = args.max_sites
    if args.dynamo is not None:
        kwargs["dynamo"] = args.dynamo
    started = time.perf_counter()
    try:
        proto = export(
            recipe.model,
            recipe.args,
            args.output,
            input_names=recipe.input_names,
            output_names=recipe.output_names,
            dynamic_axes=recipe.dynamic_axes,
            **kwargs,
        )
    except SparsetrtError:
        raise
    except (ValueError, NotImplementedError, RuntimeError) as e:
        # The exporter's refusals (an unsupported module, a bad argument) and the model's own failures while
        # PyTorch traces it.
        raise CLIError(f"exporting {args.factory} failed: {_user_error(e)}") from e
    spec = ModelSpec.from_onnx(proto)
    tracer = "torch.export" if kwargs.get("dynamo", DEFAULT_DYNAMO) else "the TorchScript exporter"
    _out(f"{args.output}: exported with {tracer} in {time.perf_counter() - started:.1f} s")
    _out(_describe_spec(spec))
    if args.save_inputs:
        save_tensors(args.save_inputs, _recipe_feed(recipe))
        _out(f"{args.save_inputs}: the example inputs ({', '.join(recipe.input_names)})")
    return EXIT_OK


def _describe_spec(spec: Any) -> str:
    lines = []
    for t in spec.inputs:
        extra = ""
        if t.role == "coords":
            grid = list(t.spatial_shape) if t.spatial_shape else "?"
            batch = spec.batch_size if spec.batch_size is not None else "any"
            extra = f"  voxel coordinates (batch, *grid) on grid {grid}, batch size {batch}"
        elif t.role == "features":
            extra = f"  features of the voxels of {t.sites!r}"
        lines.append(f"  input  {t.name}: {t.dtype} {list(t.shape)}{extra}")
    for t in spec.outputs:
        extra = f"  sparse {t.role} on the sites of {t.sites!r}" if t.role in ("coords", "features") else ""
        lines.append(f"  output {t.name}: {t.dtype} {list(t.shape)}{extra}")
    if spec.profile:
        for name, (low, opt, high) in spec.profile.items():
            lines.append(f"  profile {name}: min {list(low)}, opt {list(opt)}, max {list(high)}")
    return "\n".join(lines)


def cmd_build(args: argparse.Namespace) -> int:
    from sparsetrt.runtime.build import build_engine, parse_voxels

    voxels = parse_voxels(args.voxels)
    output = args.output or str(Path(args.onnx).with_suffix(".engine"))
    result = build_engine(
        args.onnx,
        output,
        plugins=args.plugins,
        voxels=voxels,
        fp16=args.fp16,
        workspace_mib=args.workspace,
        timing_cache=args.timing_cache,
        compute_capabilities=args.compute_capability,
        progress=not args.no_progress,
        prefer=args.trt,
        verbose=args.verbose,
    )
    _out(
        f"{result.engine_path}: {result.size_bytes / 2**20:.2f} MiB, {result.trt_module} {result.trt_version}, "
        f"{result.precision}, voxels {voxels[0]}:{voxels[1]}:{voxels[2]}, built in {result.seconds:.1f} s"
    )
    _out(f"{result.metadata_path}: the model's inputs, outputs and profile, read by `sparsetrt run`")
    if result.trt_module == "tensorrt_rtx":
        _out("TensorRT-RTX builds ahead of time; it finishes compiling kernels for the GPU on first run")
    return EXIT_OK


def _load_feed(paths: Sequence[str]) -> dict[str, np.ndarray]:
    from sparsetrt.runtime import load_tensors

    feed: dict[str, np.ndarray] = {}
    for path in paths:
        if not Path(path).is_file():
            raise CLIError(f"input file {path} does not exist (write one with `sparsetrt export --save-inputs`)")
        feed.update(load_tensors(path))
    return feed


def _float_types(spec: Any, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float inputs in the model's float type: an inputs file written for the float32 file also feeds the
    float16 engine built from it (`build --fp16`), and the user is told."""
    out = dict(feed)
    for t in spec.inputs:
        value = out.get(t.name)
        if value is not None and value.dtype.kind == "f" and t.np_dtype.kind == "f" and value.dtype != t.np_dtype:
            _note(f"note: input {t.name!r} converted from {value.dtype} to {t.dtype}, the model's type")
            out[t.name] = value.astype(t.np_dtype)
    return out


def _is_onnx(path: str) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def _open_session(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """(runner, spec, description) for an ONNX file (reference runtime) or an engine."""
    from sparsetrt.runtime import ModelSpec, ReferenceSession
    from sparsetrt.runtime.build import load_onnx

    if _is_onnx(args.model):
        proto = load_onnx(args.model)
        # (The verbs validate every frame themselves, as for engines.)
        return ReferenceSession(proto, validate=False), ModelSpec.from_onnx(proto), "the CPU reference runtime"
    from sparsetrt.runtime import EngineSession

    session = EngineSession(args.model, args.plugins, cuda_graph=args.cuda_graph, prefer=args.trt)
    return session, session.spec, f"{session.trt.__name__} {session.trt.__version__}"


def cmd_run(args: argparse.Namespace) -> int:
    from sparsetrt.runtime import save_tensors, validate_inputs

    feed = _load_feed(args.inputs)
    session, spec, where = _open_session(args)
    feed = validate_inputs(spec, _float_types(spec, feed))
    started = time.perf_counter()
    if _is_onnx(args.model):
        outputs = dict(zip(spec.output_names, session.run(None, feed), strict=True))
    else:
        outputs = {k: v.cpu().numpy() for k, v in session.run(feed, validate=False).items()}
    seconds = time.perf_counter() - started
    _out(f"{args.model}: ran on {where} in {seconds * 1e3:.1f} ms")
    for name, value in outputs.items():
        value = np.asarray(value)
        stats = ""
        if value.size and value.dtype.kind in "fiu":
            v = value.astype(np.float64)
            stats = f"  min {v.min():.4g}  max {v.max():.4g}  mean {v.mean():.4g}"
        _out(f"  {name}: {value.dtype} {list(value.shape)}{stats}")
    if args.save:
        save_tensors(args.save, outputs)
        _out(f"{args.save}: the outputs")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from sparsetrt.runtime import ModelSpec, ReferenceSession, check_model, validate_inputs
    from sparsetrt.runtime.build import load_onnx

    try:
        from sparsetrt.runtime.compare import (
            DEFAULT_TOLERANCE,
            EngineRunner,
            ReferenceRunner,
            TorchRunner,
            check,
            derived_frames,
            format_table,
        )
    except ImportError as e:
        raise CLIError(f"check compares with polygraphy's Comparator ({e}): pip install polygraphy") from e

    if not _is_onnx(args.onnx):
        raise CLIError(
            f"check takes the exported ONNX file first ({args.onnx} is not .onnx); pass an engine with --engine"
        )
    if args.checkpoint and not args.model:
        raise CLIError("--checkpoint needs --model MODULE:FUNCTION (the factory whose model it fits)")
    proto = check_model(load_onnx(args.onnx))  # before the factory runs: a bad file is the first thing to say
    spec = ModelSpec.from_onnx(proto)
    recipe = load_recipe(args.model, args.checkpoint) if args.model else None
    if args.inputs:
        first = _load_feed(args.inputs)
    elif recipe is not None:
        first = _recipe_feed(recipe)
    else:
        raise CLIError("check needs inputs: --inputs FILE (see `sparsetrt export --save-inputs`) or --model")
    first = {k: np.asarray(v) for k, v in validate_inputs(spec, first).items()}
    frames = [first, *derived_frames(first, spec, args.frames, seed=args.seed)]
    for frame in frames[1:]:
        validate_inputs(spec, frame)

    runners: list[Any] = []
    if recipe is not None:
        runners.append(TorchRunner(recipe, spec))
    runners.append(ReferenceRunner(ReferenceSession(proto, validate=False), spec))  # frames validated above
    precision = "fp16" if any(t.dtype == "float16" for t in spec.inputs) else "fp32"
    if args.engine:
        from sparsetrt.runtime import EngineSession

        session = EngineSession(args.engine, args.plugins, prefer=args.trt)
        runners.append(EngineRunner(session))
        if any(t.dtype == "float16" for t in session.spec.inputs):
            precision = "fp16"
    if len(runners) < 2:
        raise CLIError("nothing to compare: give --model (PyTorch) and/or --engine besides the ONNX file")
    tolerance = args.tolerance if args.tolerance is not None else DEFAULT_TOLERANCE[precision]
    sizes = ", ".join(str(len(next(iter(f.values())))) for f in frames)
    _out(f"{len(frames)} frames ({sizes} voxels) through {', '.join(r.name for r in runners)}")
    rows = check(runners, frames, spec, tolerance)
    _out(format_table(rows))
    failed = [r for r in rows if not r.passed]
    if failed:
        _out(f"\n{len(failed)} of {len(rows)} comparisons exceed the tolerance ({tolerance:g} of each output's scale)")
        if recipe is not None and args.checkpoint is None:
            _out(
                "(without --checkpoint, PyTorch runs the weights the factory builds: if it initializes them "
                "randomly, they are not the exported file's; pass the checkpoint you exported with)"
            )
        return EXIT_MISMATCH
    _out(f"\nall {len(rows)} comparisons within {tolerance:g} of each output's scale")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from sparsetrt.runtime import validate_inputs
    from sparsetrt.runtime.engine import benchmark_callable

    feed = _load_feed(args.inputs)
    session, spec, where = _open_session(args)
    feed = _float_types(spec, feed)
    if _is_onnx(args.model):
        feed = validate_inputs(spec, feed)
        result = benchmark_callable(lambda: session.run(None, feed), args.iterations, args.warmup, "")
    else:
        result = session.benchmark(feed, args.iterations, args.warmup)
    voxels = [np.asarray(feed[t.name]).shape[0] for t in spec.inputs if t.role == "coords"]
    mode = f" ({result.mode})" if result.mode else ""
    count = f"{voxels[0]} voxels, " if voxels else ""
    _out(f"{args.model} on {where}{mode}, {count}{result.runs} runs after {result.warmup} warm-up")
    keys = ("p50", "p90", "p95", "p99", "mean", "min", "max")
    rows = [("ms", *keys)]
    for label, stats in (("host", result.host), ("gpu", result.device)):
        if stats:
            rows.append((label, *(f"{stats[k]:.3f}" for k in keys)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(keys) + 1)]
    for r in rows:
        _out(r[0].ljust(widths[0]) + "".join("  " + c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)))
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CLIError(f"{path} does not exist")
    with open(path, "rb") as f:
        head = f.read(8)
    from sparsetrt.runtime.tensor_file import MAGIC

    if path.suffix.lower() == ".onnx":
        from sparsetrt.exporter import summary
        from sparsetrt.runtime import ModelSpec, check_model
        from sparsetrt.runtime.build import load_onnx

        proto = check_model(load_onnx(path))
        _out(summary(proto))
        _out("as the runtime reads it:")
        _out(_describe_spec(ModelSpec.from_onnx(proto)))
    elif head == MAGIC:
        from sparsetrt.runtime import load_tensors

        for name, value in load_tensors(path).items():
            _out(f"{name}: {value.dtype} {list(value.shape)}")
    elif head[:4] == b"\x7fELF" or ".so" in path.suffixes:
        from sparsetrt.runtime.plugins import library_creators
        from sparsetrt.runtime.tensorrt_module import load_tensorrt

        trt = load_tensorrt(args.trt)
        creators = library_creators(trt, path)
        _out(f"{path}: {len(creators)} plugin creators (loaded with {trt.__name__} {trt.__version__})")
        for c in creators:
            _out(f"  {c}")
    else:
        from sparsetrt.runtime.build import metadata_path
        from sparsetrt.runtime.spec import load_spec

        meta = metadata_path(path)
        if not meta.is_file():
            raise CLIError(
                f"{path} is not an ONNX file, tensor file or shared library, and has no {meta.name} beside it (what "
                "`sparsetrt build` writes); an engine's contents can only be read on a GPU"
            )
        spec, facts = load_spec(meta)
        built, source = (facts.get(k) if isinstance(facts.get(k), dict) else {} for k in ("built_with", "source_onnx"))
        _out(f"{path}: engine built with {built.get('module')} {built.get('version')}, {facts.get('precision')}")
        _out(f"  from {source.get('file')}, plugins {facts.get('plugins')}")
        _out(_describe_spec(spec))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------- parser
def cmd_bounds(args: argparse.Namespace) -> int:
    from sparsetrt.runtime.bounds import frame_files, load_frames, measure_bounds

    report = measure_bounds(args.onnx, load_frames(frame_files(args.frames)), margin=args.margin)
    _out(report.format())
    return EXIT_OK


def _int_in(low: int, high: int | None = None) -> Any:
    """An argparse type: an integer in [low, high]; anything else is a usage error (exit 2, with the usage)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"{value} must be {bounds}")
        return value

    parse.__name__ = "integer"  # what argparse calls the type in its messages
    return parse


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"{text} must be a finite number >= 0 (a fraction of each output's scale, e.g. 1e-4)"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    from sparsetrt import __version__
    from sparsetrt.runtime.build import DEFAULT_VOXELS

    parser = argparse.ArgumentParser(
        prog="sparsetrt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"sparsetrt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def trt_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--trt",
            choices=["tensorrt", "tensorrt_rtx"],
            help="which TensorRT to use (default: the engine's; for builds tensorrt, or tensorrt_rtx without a GPU)",
        )

    def plugins_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--plugins", action="append", default=[], metavar="LIB", help="plugin library (libsparsetrt_plugins.so)"
        )

    p = sub.add_parser("export", help="export a model factory's model to ONNX")
    p.add_argument(
        "factory",
        metavar="MODULE:FUNCTION",
        help="a function returning ExportRecipe (module, or path/to/file.py), or an OpenPCDet config (cfg.yaml)",
    )
    p.add_argument(
        "--checkpoint",
        help="weights: a state_dict, or a dict holding one under 'state_dict', 'model' or 'model_state' (OpenPCDet)",
    )
    p.add_argument("-o", "--output", required=True, help="the ONNX file to write")
    p.add_argument("--fp16", action="store_true", help="store weights and float inputs/outputs as float16")
    p.add_argument(
        "--max-sites", type=_int_in(0, 2**31 - 1), help="bound on the sites any strided or transposed layer may create"
    )
    p.add_argument(
        "--dynamo",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="trace with torch.export (--dynamo, the default) or torch's deprecated TorchScript exporter "
        "(--no-dynamo); both write the same sparsetrt nodes",
    )
    p.add_argument("--save-inputs", metavar="FILE", help="also write the recipe's example inputs (a tensor file)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("build", help="build a TensorRT engine from an ONNX file")
    p.add_argument("onnx")
    p.add_argument("-o", "--output", help="the engine file (default: the ONNX file's name with .engine)")
    plugins_option(p)
    v0, v1, v2 = DEFAULT_VOXELS
    p.add_argument(
        "--voxels",
        default=f"{v0}:{v1}:{v2}",
        metavar="MIN:OPT:MAX",
        help=f"voxel-count profile (default {v0}:{v1}:{v2})",
    )
    p.add_argument("--fp16", action="store_true", help="build a float32 file in float16 (converts its weights and I/O)")
    p.add_argument("--workspace", type=_int_in(1), metavar="MIB", help="TensorRT workspace limit in MiB")
    p.add_argument("--timing-cache", metavar="FILE", help="read before and update after the build")
    p.add_argument("--compute-capability", action="append", metavar="X.Y", help="TensorRT-RTX: target GPU (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="do not show TensorRT's build phases")
    p.add_argument("-v", "--verbose", action="store_true", help="show polygraphy's and TensorRT's info messages")
    trt_option(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="run an engine (GPU) or an ONNX file (CPU reference) on a tensor file")
    p.add_argument("model", help="an engine, or an ONNX file for the CPU reference runtime")
    p.add_argument("--inputs", action="append", required=True, metavar="FILE", help="tensor file(s) of inputs")
    p.add_argument("--save", metavar="FILE", help="write the outputs to a tensor file")
    p.add_argument("--cuda-graph", action="store_true", help="replay the run as a CUDA graph (engines)")
    plugins_option(p)
    trt_option(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check", help="compare PyTorch, the reference runtime and an engine, output by output")
    p.add_argument("onnx", help="the exported ONNX file")
    p.add_argument(
        "--model", metavar="MODULE:FUNCTION", help="the model factory (or OpenPCDet config), to run PyTorch too"
    )
    p.add_argument("--checkpoint", help="weights for --model")
    p.add_argument("--engine", help="an engine built from the file (needs a GPU)")
    p.add_argument("--inputs", action="append", metavar="FILE", help="tensor file of inputs (default: the recipe's)")
    p.add_argument(
        "--frames", type=_int_in(0), default=2, help="extra frames drawn from the first (subsets; default 2)"
    )
    p.add_argument("--tolerance", type=_tolerance, help="of each output's scale (default 1e-4 fp32, 2e-2 fp16)")
    p.add_argument("--seed", type=_int_in(0, 2**63 - 1), default=0, help="seed of the extra frames")
    plugins_option(p)
    trt_option(p)
    p.set_defaults(func=cmd_check, cuda_graph=False)

    p = sub.add_parser("bench", help="latency percentiles of an engine (GPU) or the reference runtime (CPU)")
    p.add_argument("model")
    p.add_argument("--inputs", action="append", required=True, metavar="FILE")
    p.add_argument("--iterations", type=_int_in(1), default=100)
    p.add_argument("--warmup", type=_int_in(0), default=10)
    p.add_argument("--cuda-graph", action="store_true", help="replay runs as a CUDA graph (engines)")
    plugins_option(p)
    trt_option(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "bounds",
        help="measure frames: the voxel profile for `build --voxels` and the bound for `export --max-sites`",
        description="Run the file's rulebooks (CPU reference) on real frames and recommend the engine's voxel "
        "profile (--voxels MIN:OPT:MAX) and the export's --max-sites: the largest counts seen, times a margin. "
        "TensorRT allocates every sparse tensor for its declared bound, so these decide the engine's memory.",
    )
    p.add_argument("onnx")
    p.add_argument("frames", nargs="+", metavar="FRAMES", help="tensor files (--save-inputs), or folders of *.bin")
    p.add_argument("--margin", type=float, default=1.2, help="factor over the largest counts seen (default 1.2)")
    p.set_defaults(func=cmd_bounds)

    p = sub.add_parser("info", help="describe an ONNX file, plugin library, engine or tensor file")
    p.add_argument("file")
    trt_option(p)
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one verb; return the exit status (see the module docstring; argparse itself exits 2 on bad usage)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        if args.debug:
            raise
        _note(f"sparsetrt {args.verb}: interrupted")
        return EXIT_INTERRUPTED
    except BAD_INPUT as e:
        if args.debug:
            raise
        message = " ".join(str(e).split()) or type(e).__name__
        if isinstance(e, OSError) and not isinstance(e, SparsetrtError) and e.filename:
            message = f"{e.strerror or message}: {e.filename}"
        _note(f"sparsetrt {args.verb}: error: {message}")
        return EXIT_ERROR
    except Exception as e:
        if args.debug:
            raise
        _note(_internal_error(args.verb, e))
        return EXIT_INTERNAL


def _internal_error(verb: str, e: BaseException) -> str:
    from sparsetrt import __version__

    frame = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    message = " ".join(str(e).split())
    return (
        f"sparsetrt {verb}: internal error: {type(e).__name__}: {message}{where}\n"
        "This is a bug in sparsetrt, not a problem with your input. Please report it with the command you ran and "
        f"the traceback that `sparsetrt --debug {verb} ...` prints (sparsetrt {__version__}, Python "
        f"{platform.python_version()})."
    )


if __name__ == "__main__":
    raise SystemExit(main())
