"""matplotlib for the reports' charts, or nothing when it is not installed.

Charts are an extra (``pip install '.[report]'``): a run without matplotlib still prints
and saves every figure, and says which charts it left out.
"""

from __future__ import annotations

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
