"""The pool probe's per-process figures: every thread's CPU and wake-ups, and a summary that
leaves the pipeline's figures to the side that has them."""

from __future__ import annotations

import os
import threading
import time

from loadtests.compare.pool_probe import summary, threads_cpu_and_wakeups


def test_cpu_and_wakeups_count_every_thread_of_a_process() -> None:
    before_cpu, before_wakeups = threads_cpu_and_wakeups(os.getpid())
    worked, release = threading.Event(), threading.Event()

    def sleepy_then_busy() -> None:
        for _ in range(5):
            time.sleep(0.005)
        until = time.thread_time() + 0.05
        while time.thread_time() < until:
            pass
        worked.set()
        release.wait()

    thread = threading.Thread(target=sleepy_then_busy)
    thread.start()
    assert worked.wait(5)
    cpu_ms, wakeups = threads_cpu_and_wakeups(os.getpid())
    release.set()
    thread.join()
    assert cpu_ms - before_cpu >= 45, "the other thread's 50 ms of CPU"
    assert wakeups - before_wakeups >= 5, "its five sleeps"
    assert threads_cpu_and_wakeups(2**22 + 7) == (0.0, 0), "a process that is gone"


def test_summary_compares_shared_figures_and_lists_the_cluster_s_own() -> None:
    cluster = [{"jobs_s": 10.0, "worker_cpu_us_per_job": 900.0}] * 2
    other = [{"jobs_s": 12.0}] * 2
    lines = summary({"cluster": cluster, "other": other})
    assert lines[0].startswith("jobs_s: cluster 10.00, other 12.00") and "1.200" in lines[0]
    assert lines[1] == "worker_cpu_us_per_job: cluster 900.00"
