"""Run under the free-threaded venv after it is built: is the GIL really off?

An extension module without a free-threading marker silently turns the GIL back on when it
is imported, so the check imports every module a worker can load first, then asks. It also
runs one CPU step in a subinterpreter, so the ``interpreters`` mode is known to work.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import services.worker
import shared
from shared import codec
from shared.interpreter import free_threaded_build, gil_enabled, python_build
from shared.primes import count_primes


def import_everything() -> list[str]:
    names = []
    for package in (shared, services.worker):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if module.name.endswith("__main__"):
                continue
            importlib.import_module(module.name)
            names.append(module.name)
    return names


def main() -> int:
    if not free_threaded_build():
        print(f"python-ft: {sys.executable} is not a free-threaded build", file=sys.stderr)
        return 1
    modules = import_everything()
    if gil_enabled():
        third_party = sorted(
            {name.split(".")[0] for name in sys.modules} - set(sys.stdlib_module_names)
        )
        print(
            "python-ft: the GIL is on after importing the worker's modules: an extension "
            f"without free-threading support re-enabled it (one of {', '.join(third_party)})",
            file=sys.stderr,
        )
        return 1
    from services.worker.subinterpreters import interpreter_pool

    with interpreter_pool(1) as pool:
        answer = pool.submit(count_primes, 10_000).result(timeout=60)
    if answer != 1229:
        print(f"python-ft: a subinterpreter counted {answer} primes below 10,000", file=sys.stderr)
        return 1
    print(
        f"python-ft: {python_build()} ready, GIL off after importing {len(modules)} modules; "
        f"JSON through {codec.BACKEND}; subinterpreters work"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
