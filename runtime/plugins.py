"""Load the sparsetrt plugin library (or any TensorRT plugin library) and list what it registers.

Our library registers its creators through ``getCreators`` when TensorRT's ``IPluginRegistry::loadLibrary``
opens it (it has no static registration), so a plain ``ctypes.CDLL``, what polygraphy's ``LoadPlugins``
does, would load it without registering anything: we go through the registry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from sparsetrt.errors import SparsetrtError

# Libraries this process has loaded, by resolved path: the registry is process-wide and a second
# loadLibrary of the same file would register its creators twice.
_LOADED: dict[tuple[str, str], list[str]] = {}


class PluginLibraryError(SparsetrtError, RuntimeError):
    pass


@dataclass(frozen=True)
class CreatorInfo:
    name: str
    version: str
    namespace: str
    fields: tuple[str, ...]

    def __str__(self) -> str:
        ns = f"{self.namespace}::" if self.namespace else ""
        fields = ", ".join(self.fields) if self.fields else "no fields"
        return f"{ns}{self.name} v{self.version} ({fields})"


def _creator_key(creator: object) -> tuple[str, str, str]:
    return (
        str(getattr(creator, "name", "")),
        str(getattr(creator, "plugin_version", "")),
        str(getattr(creator, "plugin_namespace", "")),
    )


def _creator_info(creator: object) -> CreatorInfo:
    name, version, namespace = _creator_key(creator)
    fields: tuple[str, ...] = ()
    collection = getattr(creator, "field_names", None)
    if collection is not None:
        try:
            fields = tuple(str(f.name) for f in collection)
        except TypeError:  # a collection the bindings cannot iterate: the creator still loads
            fields = ()
    return CreatorInfo(name, version, namespace, fields)


def load_plugin_libraries(trt: ModuleType, paths: Iterable[str | os.PathLike]) -> list[CreatorInfo]:
    """Load each plugin library into TensorRT's plugin registry (once per process); return the creators
    they added. Raises ``PluginLibraryError`` for a missing file or a library TensorRT refuses."""
    registry = trt.get_plugin_registry()
    added: list[CreatorInfo] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise PluginLibraryError(
                f"plugin library {path} does not exist: build it from plugins/ (see plugins/README.md) and "
                "pass its path, e.g. --plugins build/plugins/libsparsetrt_plugins.so"
            )
        key = (trt.__name__, str(path.resolve()))
        if key in _LOADED:
            continue
        before = {_creator_key(c) for c in registry.all_creators}
        handle = registry.load_library(str(path.resolve()))
        if handle is None:
            raise PluginLibraryError(
                f"TensorRT ({trt.__name__} {trt.__version__}) could not load plugin library {path} (its message is "
                "above): a TensorRT plugin library exports getCreators; check that this file is one and was built "
                "against the same TensorRT major version"
            )
        new = [_creator_info(c) for c in registry.all_creators if _creator_key(c) not in before]
        _LOADED[key] = [str(c) for c in new]
        added.extend(new)
    return added


def library_creators(trt: ModuleType, path: str | os.PathLike) -> list[CreatorInfo]:
    """The creators a plugin library registers (loading it into this process if it is not yet)."""
    registry = trt.get_plugin_registry()
    key = (trt.__name__, str(Path(path).resolve()))
    if key not in _LOADED:
        return load_plugin_libraries(trt, [path])
    # Loaded before: find its creators again by their printed form.
    wanted = set(_LOADED[key])
    return [info for c in registry.all_creators if str(info := _creator_info(c)) in wanted]


def custom_op_types(proto: object, domain: str) -> Sequence[str]:
    graph = proto.graph  # type: ignore[attr-defined]
    return sorted({n.op_type for n in graph.node if n.domain == domain})
