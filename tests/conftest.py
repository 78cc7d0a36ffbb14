"""Shared fixtures: tiny hand-made tables, the built-in sample, and the real data in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CUSTSEG_SHARED_DATA") or ROOT.parent / "shared" / "data")
TEST_DATA = Path(__file__).resolve().parent / "data"


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or a skip that says why (a user's fresh clone has no ../shared)."""
    path = SHARED_DATA / name
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing in CI: ../shared/data must be beside the clone")
        pytest.skip(f"{path} not found: the real data lives in ../shared/data beside the project (present in CI)")
    return path


@pytest.fixture(scope="session")
def shopify_sample(tmp_path_factory) -> Path:
    """The demo's built-in Shopify-like sample (70,000 lines), written once per session."""
    from custseg.sample import write_sample

    path = tmp_path_factory.mktemp("sample") / "shopify.csv"
    return write_sample(path, "shopify", 70_000, 42)


@pytest.fixture(scope="session")
def small_shopify(tmp_path_factory) -> Path:
    from custseg.sample import write_sample

    path = tmp_path_factory.mktemp("sample") / "shopify_small.csv"
    return write_sample(path, "shopify", 6_000, 7)


@pytest.fixture(scope="session")
def medium_shopify(tmp_path_factory) -> Path:
    """150,000 Shopify-like lines: long enough to interrupt a run and to use several threads."""
    from custseg.sample import write_sample

    path = tmp_path_factory.mktemp("sample") / "shopify_medium.csv"
    return write_sample(path, "shopify", 150_000, 11)


from pg import pg_schema, pg_url  # noqa: E402,F401  # PostgreSQL fixtures (tests/pg.py), registered once here
