"""Which Python this process runs under: what a heartbeat and a report say about it.

The same project runs on the default interpreter and on a free-threaded build (3.13t), where
``PYTHON_GIL=1`` or an extension without a free-threading marker turns the GIL back on; the
figures only mean something next to which of these actually ran.
"""

from __future__ import annotations

import platform
import sys
import sysconfig


def gil_enabled() -> bool:
    """False only on a free-threaded build running without the GIL right now."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def free_threaded_build() -> bool:
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def python_build() -> str:
    """The version, with ``t`` for a free-threaded build (as its binary is named)."""
    return platform.python_version() + ("t" if free_threaded_build() else "")
