"""Shared fixtures: small synthetic images and a seeded random VGG-19 weights file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

# Before anything imports Prefect: an isolated PREFECT_HOME (caches and concurrency limits would
# otherwise leak between runs) and a startup timeout that covers a fresh database's migration.
_PREFECT_HOME = tempfile.mkdtemp(prefix="nst-tests-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ["NST_CACHE"] = os.path.join(_PREFECT_HOME, "nst-cache")

import numpy as np
import pytest
import torch
from PIL import Image

from nst_engine.vgg import random_state

if TYPE_CHECKING:
    from tests.prefect_process import Server


def make_image(width: int, height: int, seed: int, kind: str = "content") -> Image.Image:
    """Deterministic test pictures: a smooth scene for contents, a striped texture for styles."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    if kind == "content":
        base = np.stack([x, y, 1 - x * y], axis=-1)
        cy, cx = rng.uniform(0.3, 0.7, size=2)
        disc = ((x - cx) ** 2 + (y - cy) ** 2) < 0.04
        base[disc] = rng.uniform(0, 1, size=3)
    else:
        phase = rng.uniform(0, 6.28, size=3)
        base = 0.5 + 0.5 * np.sin(np.stack([x * 40 + phase[0], (x + y) * 30 + phase[1], y * 50 + phase[2]], -1))
    noise = rng.normal(0, 0.03, size=base.shape)
    return Image.fromarray((np.clip(base + noise, 0, 1) * 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision-format VGG-19 state dict with seeded random weights (no real ones offline)."""
    path = tmp_path_factory.mktemp("weights") / "vgg19-random.pth"
    torch.save({f"features.{k}": v for k, v in random_state(7).items()}, path)
    return path


@pytest.fixture
def content_image() -> Image.Image:
    return make_image(64, 48, seed=1)


@pytest.fixture
def style_image() -> Image.Image:
    return make_image(56, 56, seed=2, kind="style")


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One real Prefect server (the test harness, SQLite) for the whole session (~30 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def prefect_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator["Server"]:
    """`prefect server start` (with its UI) in a subprocess for the session: for tests whose other
    processes (workers, `nst deploy`, a browser) must reach a server at a URL."""
    from tests.prefect_process import serve_prefect

    yield from serve_prefect(tmp_path_factory)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Exact invariance is a property of the algorithm at a fixed thread count: with 2 threads,
    torch's CPU reductions split work by tensor shape, and that rounding noise, amplified by 100
    L-BFGS iterations, moved the final loss by 1.2-2% between a pair alone and in a batch
    (measured on this project's 2-core machine); with 1 thread the images are bit-identical."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
