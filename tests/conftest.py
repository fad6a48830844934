"""Shared test fixtures: where the real CIFAR-10 copy is, and a skip marker without it.

The data is decoded once per machine into the array cache (~/.cache/ttq/arrays, or
$TTQ_CACHE_DIR); nothing is ever written beside ../shared/data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CIFAR_ARCHIVE = Path(os.environ.get("TTQ_TEST_ARCHIVE",
                                    REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))

# Skip without the data on a developer's machine, but never in CI (CI=true), where
# ../shared is always beside the checkout: a missing archive there must fail loudly.
needs_cifar = pytest.mark.skipif(not CIFAR_ARCHIVE.exists() and not os.environ.get("CI"),
                                 reason=f"real CIFAR-10 archive not found at {CIFAR_ARCHIVE}")
