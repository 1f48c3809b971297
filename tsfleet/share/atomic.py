"""Writing beside a target and renaming into place, so a reader never sees half a file.

A rename within one directory is atomic on POSIX file systems: a reader that
opens the target sees either the old file or the new one. A reader that already
has the old file open keeps reading it (its inode lives until it closes), which
is what lets Grafana's DuckDB plugin keep a snapshot open while a new one lands.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path


def staging_path(target: Path, label: str = "tmp") -> Path:
    """A hidden, unique path in ``target``'s directory (same file system, so rename is atomic).

    >>> staging_path(Path("/data/out.duckdb")).name.startswith(".out.duckdb.tmp-")
    True
    """
    return target.parent / f".{target.name}.{label}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry change (a rename) to disk, where the OS allows it."""
    with contextlib.suppress(OSError):  # some file systems refuse fsync on directories
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace_file(staged: Path, target: Path) -> None:
    """Move the finished file ``staged`` onto ``target`` atomically and durably."""
    fsync_file(staged)
    os.replace(staged, target)
    fsync_dir(target.parent)


def replace_dir(staged: Path | None, target: Path, trash: Path) -> None:
    """Put directory ``staged`` at ``target`` (or remove ``target`` when ``staged`` is None).

    The old ``target`` is first renamed into ``trash`` (a folder on the same file
    system), then ``staged`` is renamed in, then the old copy is deleted. A
    concurrent reader sees the old or the new partition, or for an instant none.
    """
    old = None
    if target.exists():
        trash.mkdir(parents=True, exist_ok=True)
        old = trash / f"{target.name}-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    if staged is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_quietly(*paths: Path) -> None:
    """Delete files or folders left by a failed write; never raises."""
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
