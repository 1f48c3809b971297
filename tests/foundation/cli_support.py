"""Driving ``tsfleet`` through ``main`` as a person types it, for the CLI tests."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from tsfleet.cli import main

#: The demo the CLI tests share: ``tsfleet demo`` with these options.
DEMO_ARGS = ("--devices", "60", "--days", "20", "--seed", "7")


def run(capsys, *argv):
    """Exit status, stdout and stderr of ``tsfleet argv...`` (argparse's own errors
    included)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def build_demo(path: Path) -> list[str]:
    """``tsfleet demo`` (:data:`DEMO_ARGS`) into ``path``; returns the lines it printed."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["demo", *DEMO_ARGS, "--db", str(path)]) == 0
    return buf.getvalue().splitlines()
