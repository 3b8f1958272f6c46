"""`make compare`: one event loop, threads, a process pool and replicas, measured.

- ``scenarios``: the matrix of topologies x workloads, and how big each run is.
- ``calibrate``: one job's single-core CPU time, the bare machine's all-core speed-up, and
  the ideal throughput of each scenario.
- ``clusters``: one fresh cluster per scenario. ``choose_starter`` picks Compose when a
  Docker engine answers and local processes (``coordctl.local``) otherwise; both hand the
  driver a gateway URL, and the local one also the pids for CPU accounting.
- ``drive``: warm-up, then the measured window of one scenario, through the gateway's HTTP
  API; loop lag from the workers' heartbeat histograms, CPU from psutil.
- ``race``: lost updates across an await, in one process and across processes.
- ``results`` / ``verdicts`` / ``report``: results.json, the five claims, report.md, charts.
- ``cli``: the run as ``cluster compare`` shows it.
"""
