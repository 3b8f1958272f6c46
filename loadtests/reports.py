"""Report folders: one per run under a base folder, and ``latest`` pointing at the newest."""

from __future__ import annotations

import os
import time
from pathlib import Path


def new_run_dir(base: Path) -> Path:
    """``<base>/<YYYYmmdd-HHMMSS>``, with a suffix when two runs start in the same second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = base / stamp
    suffix = 1
    while path.exists():
        path = base / f"{stamp}-{suffix}"
        suffix += 1
    path.mkdir(parents=True)
    return path


def point_latest(run_dir: Path) -> Path:
    """Swap ``<base>/latest`` to ``run_dir`` in one rename, so readers never see it missing."""
    link = run_dir.parent / "latest"
    staging = run_dir.parent / f".latest-{os.getpid()}"
    staging.unlink(missing_ok=True)
    staging.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(staging, link)
    return link
