"""The dashboard in headless Chromium against a real cluster under load.

One worker runs CPU steps in a process pool, a second one (added to the same cluster)
runs them on its event loop. The page must show the figures moving, and the blocking
worker's loop lag next to the pool worker's. A screenshot is kept in test-artifacts/.
"""

import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from coordctl.local import ClusterState, service_env
from coordctl.servers import free_port
from shared.settings import Settings, WorkerMode
from tests.conftest import ClusterFactory

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1150",
)
CPU_N = 100_000  # about 0.1 s of pure Python per step: a stall the loop lag cannot miss


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Debian's chromium driven through its own chromedriver (no browser download)."""
    chromium = shutil.which("chromium")
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.fail(
            "headless Chromium is missing: apt-get install -y chromium chromium-driver",
            pytrace=False,
        )
    options = Options()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def add_blocking_worker(state: ClusterState, settings: Settings) -> str:
    """A worker of mode blocking in the same cluster, stopped with it (it is in the state)."""
    env = service_env(settings, COORD_WORKER_MODE=WorkerMode.BLOCKING.value, COORD_POOL_SIZE="1")
    name = "worker-blocking"
    state.spawn(
        name,
        "worker",
        python=sys.executable,
        env=env,
        logs=Path(state.run_dir) / "logs",
        metrics_port=free_port(),
    )
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=state.gateway_url, timeout=5) as client:
        while time.monotonic() < deadline:
            instances = client.get("/instances").json()["instances"]
            if any(i["instance"] == name for i in instances):
                return name
            time.sleep(0.3)
    raise AssertionError(f"{name} sent no heartbeat within 60 s")


class Load:
    """Keeps CPU batches coming from a thread until stopped."""

    def __init__(self, gateway_url: str) -> None:
        self.gateway_url = gateway_url
        self.stop = threading.Event()
        self.batches = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        body = {"kind": "cpu", "count": 12, "params": {"n": CPU_N}}
        with httpx.Client(base_url=self.gateway_url, timeout=30) as client:
            while not self.stop.is_set():
                batch = client.post("/batches", json=body).json()
                self.batches += 1
                client.get(f"/batches/{batch['batch_id']}", params={"wait": 10})

    def __enter__(self) -> "Load":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


READ_PAGE = """
const tiles = {};
for (const el of document.querySelectorAll('.tile .value')) tiles[el.id] = el.textContent;
const rows = {};
for (const row of document.querySelectorAll('#instances tbody tr')) {
  const cells = {service: row.dataset.service};
  for (const td of row.querySelectorAll('td')) cells[td.dataset.field] = td.textContent;
  rows[row.dataset.instance] = cells;
}
return {tiles, rows, polls: Number(document.getElementById('status').dataset.polls || 0)};
"""


def read_page(driver: WebDriver) -> dict[str, Any]:
    """The figures as shown, read in one script call (the table is redrawn every poll)."""
    page: dict[str, Any] = driver.execute_script(READ_PAGE)
    return page


def number(text: str | None) -> float:
    cleaned = (text or "").replace(",", "")
    return float(cleaned) if cleaned not in ("", "\u2013") else float("nan")


def tile(driver: WebDriver, name: str) -> float:
    return number(read_page(driver)["tiles"].get(name))


def cell(driver: WebDriver, instance: str, field: str) -> float:
    return number(read_page(driver)["rows"].get(instance, {}).get(field))


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"dashboard: {what} within {timeout_s:.0f} s")
        time.sleep(0.25)


def test_dashboard_shows_live_figures_and_a_blocked_loop(
    start_cluster: ClusterFactory, settings: Settings, browser: WebDriver
) -> None:
    state = start_cluster(workers=1, mode=WorkerMode.PROCESSES, pool_size=2)
    blocking = add_blocking_worker(state, settings)
    browser.get(f"{state.gateway_url}/")
    assert browser.title == "coord-cluster dashboard"

    with Load(state.gateway_url) as load:
        wait_for(lambda: tile(browser, "total-completed") > 0, 60, "no completed jobs shown")
        first = read_page(browser)
        wait_for(
            lambda: tile(browser, "total-completed") > number(first["tiles"]["total-completed"]),
            30,
            "completed count never moved",
        )
        assert read_page(browser)["polls"] > first["polls"]
        wait_for(lambda: tile(browser, "total-rate") > 0, 30, "throughput stayed at 0")
        wait_for(
            lambda: cell(browser, blocking, "lag_max_ever") >= 20,
            30,
            "the blocking worker's loop lag showed no stall",
        )
        time.sleep(12)  # a few more seconds of history, so the charts have lines to draw
        page = read_page(browser)
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    services = sorted(row["service"] for row in page["rows"].values())
    assert services == ["aggregator", "gateway", "worker", "worker"]
    assert page["rows"][blocking]["mode"] == "blocking"
    assert page["rows"]["worker-1"]["mode"] == "processes"
    shown = {name: page["rows"][name] for name in ("worker-1", blocking)}
    print(f"\nbatches submitted: {load.batches}; tiles: {page['tiles']}; workers: {shown}")
