"""Test-session settings: fresh random inputs every run, reproducible from the printed seed."""

from __future__ import annotations

import os
import random
import zlib
from pathlib import Path

import pytest
import torch
from plugins_build import PluginsBuild, build_plugins

SESSION_SEED = int(os.environ.get("SPARSETRT_TEST_SEED", random.SystemRandom().randrange(2**31)))


def pytest_report_header(config: pytest.Config) -> str:
    return f"sparsetrt random seed: {SESSION_SEED} (rerun with SPARSETRT_TEST_SEED={SESSION_SEED})"


def seed_for(key: str) -> int:
    """A seed drawn from the session seed and ``key``: fresh each run, reproducible, shared by every test
    that asks with the same key (for work done once per session, such as the zoo's exports)."""
    return (SESSION_SEED ^ zlib.crc32(key.encode())) % (1 << 30)


@pytest.fixture
def gen(request: pytest.FixtureRequest) -> torch.Generator:
    """A torch.Generator seeded from the session seed and the test's id: fresh each run, reproducible."""
    g = torch.Generator()
    g.manual_seed(SESSION_SEED ^ zlib.crc32(request.node.nodeid.encode()))
    return g


@pytest.fixture(scope="session")
def plugins_build(tmp_path_factory: pytest.TempPathFactory) -> PluginsBuild:
    """plugins/ built once per session (kernels for one architecture; the plugin library where TensorRT
    headers are found)."""
    build = build_plugins(tmp_path_factory.mktemp("plugins_build"))
    if build.build_dir is None:
        pytest.skip(build.reason)
    return build


@pytest.fixture(scope="session")
def plugin_library(plugins_build: PluginsBuild) -> Path:
    """The built libsparsetrt_plugins.so; skips where TensorRT's headers are absent (it cannot be built)."""
    if plugins_build.library is None:
        pytest.skip(f"the TensorRT plugin library was not built: {plugins_build.reason or 'see the CMake log'}")
    return plugins_build.library
