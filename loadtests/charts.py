"""matplotlib for the reports' charts, or nothing when it is not installed.

Charts are an extra (``pip install '.[report]'``): a run without matplotlib still prints
and saves every figure, and says which charts it left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType


def pyplot() -> ModuleType | None:
    """``matplotlib.pyplot`` on the file-only Agg backend (no screen here, nor in CI), or
    None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def charts_lines(out: Path, written: Sequence[str], charts: Sequence[str]) -> list[str]:
    """The charts' paths, and which were not drawn and why, for the run's last lines."""
    lines = ["charts: " + ", ".join(str(out / name) for name in written)] if written else []
    left = [name for name in charts if name not in written]
    if left:
        lines.append(
            f"not drawn: {', '.join(left)} (without matplotlib: pip install '.[report]'; "
            "or the run measured nothing for them)"
        )
    return lines
