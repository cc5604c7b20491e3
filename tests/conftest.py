"""Test-session settings: fresh random inputs every run, reproducible from the printed seed."""

from __future__ import annotations

import os
import random
import zlib

import pytest
import torch

SESSION_SEED = int(os.environ.get("SPARSETRT_TEST_SEED", random.SystemRandom().randrange(2**31)))


def pytest_report_header(config: pytest.Config) -> str:
    return f"sparsetrt random seed: {SESSION_SEED} (rerun with SPARSETRT_TEST_SEED={SESSION_SEED})"


@pytest.fixture
def gen(request: pytest.FixtureRequest) -> torch.Generator:
    """A torch.Generator seeded from the session seed and the test's id: fresh each run, reproducible."""
    g = torch.Generator()
    g.manual_seed(SESSION_SEED ^ zlib.crc32(request.node.nodeid.encode()))
    return g
