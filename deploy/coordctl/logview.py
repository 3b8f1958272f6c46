"""Reading the cluster's JSON log lines back: filter by job, batch, service or level, merge
every service's lines in time order, and print them for a person."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.text import Text

from shared import codec

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
LEVEL_STYLES = {"debug": "dim", "info": "green", "warning": "yellow", "error": "bold red"}
SERVICE_STYLES = {"gateway": "cyan", "worker": "magenta", "aggregator": "blue"}
SHOWN_FIRST = ("timestamp", "service", "instance", "level", "event")


def batch_of(job_id: str) -> str:
    """A job id is ``{batch_id}.{index}``: the batch a job belongs to, from its id alone."""
    return job_id.rpartition(".")[0] or job_id


@dataclass(frozen=True)
class LogFilter:
    """Which log lines to show.

    ``job_id`` selects that job's own lines and the batch-level lines of its batch (lines
    with its ``batch_id`` and no ``job_id``): the gateway accepts and the aggregator
    completes whole batches, so a job's path starts with ``batch_received`` and ends with
    ``batch_completed``.
    """

    batch_id: str | None = None
    job_id: str | None = None
    service: str | None = None
    level: str | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        if self.batch_id and record.get("batch_id") != self.batch_id:
            return False
        if self.job_id and not self._on_path_of_job(record, self.job_id):
            return False
        if self.service and record.get("service") != self.service:
            return False
        if self.level:
            found = LEVELS.get(str(record.get("level", "info")), 20)
            return found >= LEVELS[self.level]
        return True

    @staticmethod
    def _on_path_of_job(record: dict[str, Any], job_id: str) -> bool:
        if "job_id" in record:
            return bool(record["job_id"] == job_id)
        return bool(record.get("batch_id") == batch_of(job_id))


def parse_line(line: bytes | str) -> dict[str, Any] | None:
    """A structlog JSON line as a dict; anything else (a stray print) is None."""
    try:
        record = codec.loads(line)
    except codec.DecodeError:
        return None
    return record if isinstance(record, dict) and "event" in record else None


def read_records(paths: Iterable[Path], log_filter: LogFilter) -> list[dict[str, Any]]:
    records = []
    for path in paths:
        with path.open("rb") as lines:
            for line in lines:
                record = parse_line(line)
                if record is not None and log_filter.matches(record):
                    records.append(record)
    records.sort(key=lambda r: str(r.get("timestamp", "")))
    return records


def follow_records(paths: list[Path], log_filter: LogFilter) -> Iterator[dict[str, Any]]:
    """New matching lines as they are written, from every file, until interrupted."""
    handles: dict[Path, IO[bytes]] = {}
    try:
        while True:
            for path in paths:
                if path not in handles and path.exists():
                    handles[path] = path.open("rb")
                    handles[path].seek(0, 2)
            batch = []
            for handle in handles.values():
                for line in handle.readlines():
                    record = parse_line(line)
                    if record is not None and log_filter.matches(record):
                        batch.append(record)
            yield from sorted(batch, key=lambda r: str(r.get("timestamp", "")))
            time.sleep(0.3)
    finally:
        for handle in handles.values():
            handle.close()


def render(record: dict[str, Any]) -> Text:
    timestamp = str(record.get("timestamp", ""))
    service = str(record.get("service", "?"))
    level = str(record.get("level", "info"))
    text = Text()
    text.append(timestamp[11:23] if len(timestamp) > 23 else timestamp, style="dim")
    text.append(f" {service:<10}", style=SERVICE_STYLES.get(service, "white"))
    text.append(f" {record.get('instance', ''):<12}", style="dim")
    text.append(f" {level:<7}", style=LEVEL_STYLES.get(level, ""))
    text.append(f" {record.get('event', '')}", style="bold")
    for key, value in record.items():
        if key not in SHOWN_FIRST:
            text.append(f" {key}=", style="dim")
            text.append(str(value))
    return text


def print_records(records: Iterable[dict[str, Any]], console: Console) -> int:
    count = 0
    for record in records:
        console.print(render(record), soft_wrap=True, highlight=False)
        count += 1
    return count
