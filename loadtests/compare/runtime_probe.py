"""What the comparison runs inside another interpreter, answering one JSON line on stdout.

``python -m loadtests.compare.runtime_probe calibrate N RUNS`` times one ``cpu`` job on one
core; ``... race THREADS ROUNDS`` runs the threads race. Standard library and
``shared.primes`` only, so it runs in any of the runtimes (the free-threaded venv has no
pydantic-heavy comparison code to lean on).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from contextlib import AbstractContextManager, nullcontext

from shared.interpreter import gil_enabled, python_build
from shared.primes import count_primes


def calibrate(n: int, runs: int) -> dict[str, object]:
    """CPU milliseconds of ``runs`` jobs in this thread, after one to warm up."""
    count_primes(n)
    samples = []
    for _ in range(runs):
        started = time.thread_time()
        count_primes(n)
        samples.append(round((time.thread_time() - started) * 1000, 3))
    return {"samples_ms": samples}


class Counter:
    value = 0


def race(threads: int, rounds: int, *, lock: bool) -> dict[str, int]:
    """``threads`` threads each add 1 ``rounds`` times by a read and a write, started together.

    With the GIL, a thread is switched out only at certain points of the bytecode, so the
    read and the write of one round seldom come apart; without it, threads run at once on
    different cores and overwrite each other's writes, unless a ``threading.Lock`` guards
    the pair.
    """
    counter = Counter()
    guard = threading.Lock()
    start = threading.Barrier(threads)

    def add_one_at_a_time() -> None:
        start.wait()
        for _ in range(rounds):
            context: AbstractContextManager[object] = guard if lock else nullcontext()
            with context:
                seen = counter.value
                counter.value = seen + 1

    workers = [threading.Thread(target=add_one_at_a_time) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    expected = threads * rounds
    return {"expected": expected, "observed": counter.value, "lost": expected - counter.value}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("calibrate", "race"):
        print("usage: runtime_probe calibrate N RUNS | race THREADS ROUNDS", file=sys.stderr)
        return 2
    first, second = int(argv[1]), int(argv[2])
    answer: dict[str, object] = {"python": python_build()}
    if argv[0] == "calibrate":
        answer.update(calibrate(first, second))
    else:
        answer["unsafe"] = race(first, second, lock=False)
        answer["safe"] = race(first, second, lock=True)
    answer["gil"] = gil_enabled()
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
