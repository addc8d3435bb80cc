"""Shared fixtures: where the real datasets are, and a small problem."""
import os
from pathlib import Path

import pytest

# The shared datasets sit beside the checkout (../shared/data); tests use
# them through SKBOLT_DATA and skip when they are absent.
_beside = Path(__file__).resolve().parents[2] / "shared" / "data"
if not os.environ.get("SKBOLT_DATA") and _beside.is_dir():
    os.environ["SKBOLT_DATA"] = str(_beside)


@pytest.fixture(scope="session")
def data_dir():
    """Folder of the shared real datasets; skips the test when absent."""
    from skbolt.datasets import data_home

    home = data_home()
    if home is None:
        pytest.skip("shared datasets not found; set SKBOLT_DATA to run this test")
    return home
