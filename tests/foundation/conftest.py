"""The demo store the CLI tests share, built once per test process."""

from __future__ import annotations

import pytest

from tests.foundation.cli_support import build_demo


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory):
    """(path, printed lines) of one ``tsfleet demo`` run: copy the store before writing."""
    path = tmp_path_factory.mktemp("demo") / "built.duckdb"
    return path, build_demo(path)
