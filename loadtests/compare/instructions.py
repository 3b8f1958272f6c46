"""Instructions per ``cpu`` job in a pool's child, counted by valgrind: noise-free where
CPU time is not (and where, as in our VM, ``perf`` has no hardware counters).

Each variant starts one child under ``valgrind --tool=callgrind`` (``set_executable`` on a
script that ``exec``s valgrind with this python), runs ``--few`` and then ``--many`` jobs in
it, and prints (many - few) instructions ÷ (many - few): one job, start-up cancelled out.

    python -m loadtests.compare.instructions            # n = 100,000: several minutes
    python -m loadtests.compare.instructions --n 5000   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import stat
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from services.worker.executors import CpuRunner
from shared.primes import count_primes
from shared.settings import WorkerMode

VARIANTS = ("cpu_runner", "executor", "prefork")


def run_jobs(variant: str, n: int, jobs: int) -> None:
    """``jobs`` jobs in a one-child pool of ``variant``, started through the wrapper."""
    context = multiprocessing.get_context("spawn")
    if variant == "prefork":
        with context.Pool(1) as pool:
            pool.map(count_primes, [n] * jobs, 1)
    elif variant == "executor":
        with ProcessPoolExecutor(1, mp_context=context) as executor:
            list(executor.map(count_primes, [n] * jobs))
    else:

        async def through_the_runner() -> None:
            runner = CpuRunner(WorkerMode.PROCESSES, 1)
            try:
                await runner.warm_up()
                for _ in range(jobs):
                    await runner.run(count_primes, n)
            finally:
                runner.close()

        asyncio.run(through_the_runner())


def instructions(out: Path) -> int:
    """The instructions of the child's profile: the largest of the variant's files (the
    resource tracker writes a small one of its own)."""
    totals = []
    for path in out.parent.glob(f"{out.name}.*"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("summary:"):
                totals.append(int(line.split()[1]))
    return max(totals)


def count(variant: str, n: int, jobs: int, folder: Path) -> int:
    out = folder / f"{variant}-{jobs}"
    wrapper = folder / f"valgrind-{variant}-{jobs}.sh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec valgrind --tool=callgrind --callgrind-out-file={out}.%p "
        f'{sys.executable} "$@" 2>>{folder / "valgrind.log"}\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    multiprocessing.set_executable(str(wrapper))
    try:
        run_jobs(variant, n, jobs)
    finally:
        multiprocessing.set_executable(sys.executable)
    return instructions(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--few", type=int, default=1)
    parser.add_argument("--many", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    with tempfile.TemporaryDirectory(prefix="instructions-") as work:
        for variant in VARIANTS:
            few = count(variant, args.n, args.few, Path(work))
            many = count(variant, args.n, args.many, Path(work))
            per_job = (many - few) / (args.many - args.few)
            print(f"{variant}: {per_job / 1e6:.2f} M instructions per job (n = {args.n:,})")


if __name__ == "__main__":
    main()
