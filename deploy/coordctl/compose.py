"""The Compose path of ``cluster up``: used when a container engine answers.

Every call names its Compose project (``-p``), so ``down`` removes exactly that project's
containers, network and volumes, and runs with the engine's environment (``DOCKER_HOST``
and the locally built images for podman; see ``coordctl.engine``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from coordctl.client import GatewayClient, GatewayError, instances_or_none
from shared.heartbeat import WorkerBeat
from shared.settings import WorkerMode

COMPOSE_FILE = Path("docker-compose.yml")
ENV_FILE = Path(".env")
ENV_EXAMPLE = Path(".env.example")
SECRET_KEY = re.compile(r"^(?P<key>[A-Z0-9_]*PASSWORD)=.*$", re.MULTILINE)
PROJECT_LABEL = "com.docker.compose.project"
BUILT_BY = "gateway"
"""Every app service runs the one image; building it for this one builds it for all."""
INTERNAL_METRICS = {
    "gateway": "8000 (in network)",
    "worker": "9100 (in network)",
    "aggregator": "9100 (in network)",
}


class ComposeError(RuntimeError):
    """Compose is missing or failed; the message is one line a person can act on."""


@dataclass(frozen=True)
class ComposeCli:
    argv: list[str]
    can_wait: bool
    """``docker compose`` (v2) waits for healthchecks itself; ``docker-compose`` 1.x cannot."""


@dataclass(frozen=True)
class Project:
    """One Compose project on one engine: its name and the environment Compose runs with."""

    name: str
    env: dict[str, str]
    files: tuple[Path, ...] = (COMPOSE_FILE,)
    quiet: bool = False
    """Keep Compose's progress off the terminal (a failure still says its last line)."""


def docker_engine_available() -> bool:
    """True when a Docker engine answers (the client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and bool(probe.stdout.strip())


def compose_command_name() -> str:
    """``docker compose`` (v2) when the plugin is there, else ``docker-compose`` (1.x)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return "docker compose"
    if shutil.which("docker-compose"):
        return "docker-compose"
    raise ComposeError("neither `docker compose` nor `docker-compose` is installed")


def compose_cli(project: Project) -> ComposeCli:
    command = compose_command_name()
    files = [arg for path in project.files for arg in ("-f", str(path))]
    argv = [*command.split(), *files, "-p", project.name]
    return ComposeCli(argv, can_wait=command == "docker compose")


def ensure_env_file(env_file: Path = ENV_FILE, example: Path = ENV_EXAMPLE) -> bool:
    """Write ``.env`` from ``.env.example`` with fresh random passwords, unless one exists.

    Compose refuses to start without the broker and Redis passwords, and the example's
    placeholders must never run anywhere. Returns True when it wrote the file.
    """
    if env_file.exists():
        return False
    if not example.exists():
        raise ComposeError(f"{env_file} is missing and there is no {example} to start from")
    text = SECRET_KEY.sub(lambda m: f"{m['key']}={secrets.token_urlsafe(18)}", example.read_text())
    env_file.touch(mode=0o600)
    env_file.write_text(text)
    return True


def run_compose(project: Project, *args: str, env: dict[str, str] | None = None) -> None:
    argv = [*compose_cli(project).argv, *args]
    try:
        subprocess.run(
            argv,
            env={**project.env, **(env or {})},
            check=True,
            capture_output=project.quiet,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        detail = last_line(exc.stderr) if project.quiet else ""
        raise ComposeError(f"`{argv[0]} {args[0]}` failed (exit {exc.returncode}){detail}") from exc


def last_line(stderr: str | None) -> str:
    """``: <the last line a failed command wrote>``, cut short, or nothing."""
    last = (stderr or "").strip().splitlines()[-1:]
    return f": {last[0][:200]}" if last else ""


def run_in_service(project: Project, service: str, *argv: str, timeout_s: float = 120) -> str:
    """What ``argv`` prints, run in the first running container of ``service`` (``compose
    exec -T``): a measurement taken inside the service's own image and limits."""
    command = [*compose_cli(project).argv, "exec", "-T", service, *argv]
    try:
        done = subprocess.run(
            command,
            env=project.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as exc:
        raise ComposeError(f"`exec {service} {argv[0]}` took over {timeout_s:g} s") from exc
    except subprocess.CalledProcessError as exc:
        raise ComposeError(
            f"`exec {service} {argv[0]}` failed (exit {exc.returncode}){last_line(exc.stderr)}"
        ) from exc
    return done.stdout


def wait_ready(url: str, workers: int, timeout_s: float) -> None:
    """Wait until the gateway is ready and ``workers`` workers send heartbeats (what `--wait`
    does)."""
    deadline = time.monotonic() + timeout_s
    with GatewayClient(url, timeout_s=2) as client:
        while time.monotonic() < deadline:
            try:
                if client.readiness().ready:
                    fresh = [
                        beat
                        for beat in client.instances().instances
                        if isinstance(beat, WorkerBeat) and time.time() - beat.last_seen < 5
                    ]
                    if len(fresh) >= workers:
                        return
            except GatewayError:
                pass
            time.sleep(1)
    raise ComposeError(f"the cluster at {url} was not ready within {timeout_s:.0f}s")


def compose_up(
    project: Project,
    workers: int,
    mode: WorkerMode,
    pool_size: int,
    *,
    gateway_url: str,
    timeout_s: float = 600,
    write_env_file: bool = True,
) -> bool:
    """Build and start the cluster with ``workers`` replicas; True if it wrote a new .env.

    ``write_env_file=False`` is for callers that put the passwords in the project's env.
    """
    cli = compose_cli(project)
    wrote_env = ensure_env_file() if write_env_file else False
    args = ["up", "-d", "--scale", f"worker={workers}"]
    if cli.can_wait:
        args[1:1] = ["--wait", "--build"]
    else:
        # Compose 1.x builds the one image once for every service that names it: build it
        # through one service, then start without building.
        run_compose(project, "build", BUILT_BY)
        args.insert(2, "--no-build")
    run_compose(
        project,
        *args,
        env={"COORD_WORKER_MODE": mode.value, "COORD_POOL_SIZE": str(pool_size)},
    )
    wait_ready(gateway_url, workers, timeout_s)
    return wrote_env


def compose_scale(project: Project, service: str, replicas: int) -> None:
    """Change the replicas of one service without touching the others."""
    run_compose(project, "up", "-d", "--no-deps", "--scale", f"{service}={replicas}", service)


def compose_down(project: Project) -> None:
    """Remove the project's containers, network and volumes, and nothing else."""
    run_compose(project, "down", "--volumes", "--remove-orphans")


def compose_logs(project: Project, follow: bool) -> subprocess.Popen[bytes]:
    argv = [*compose_cli(project).argv, "logs", "--no-log-prefix", "--no-color"]
    if follow:
        argv.append("--follow")
    return subprocess.Popen(argv, stdout=subprocess.PIPE, env=project.env)


def engine_client(env: dict[str, str], timeout_s: float = 10) -> httpx.Client:
    """A client for the Docker Engine API that ``DOCKER_HOST`` names (podman speaks it too)."""
    host = env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    parsed = urlparse(host)
    if parsed.scheme == "unix":
        transport = httpx.HTTPTransport(uds=parsed.path)
        return httpx.Client(transport=transport, base_url="http://engine", timeout=timeout_s)
    return httpx.Client(base_url=f"http://{parsed.netloc}", timeout=timeout_s)


def project_containers(project: Project, *, every: bool = True) -> list[dict[str, Any]]:
    """The project's containers as the Engine API lists them (``every``: stopped ones too)."""
    filters = json.dumps({"label": [f"{PROJECT_LABEL}={project.name}"]})
    try:
        with engine_client(project.env) as client:
            answer = client.get(
                "/containers/json", params={"all": str(every).lower(), "filters": filters}
            )
            answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise ComposeError(
            f"the container engine did not answer ({exc.__class__.__name__})"
        ) from exc
    containers: list[dict[str, Any]] = answer.json()
    return containers


def container_health(project: Project, ids: list[str]) -> dict[str, str]:
    """Each container's health (healthy, starting, ...), where it has a healthcheck."""
    found = {}
    with engine_client(project.env) as client:
        for container_id in ids:
            try:
                state = client.get(f"/containers/{container_id}/json").json().get("State", {})
            except (httpx.HTTPError, ValueError):
                continue
            status = (state.get("Health") or {}).get("Status")
            if status:
                found[container_id] = status
    return found


def project_networks(project: Project) -> list[str]:
    filters = json.dumps({"label": [f"{PROJECT_LABEL}={project.name}"]})
    with engine_client(project.env) as client:
        answer = client.get("/networks", params={"filters": filters})
        answer.raise_for_status()
    return [n["Name"] for n in answer.json()]


def project_volumes(project: Project) -> list[str]:
    filters = json.dumps({"label": [f"{PROJECT_LABEL}={project.name}"]})
    with engine_client(project.env) as client:
        answer = client.get("/volumes", params={"filters": filters})
        answer.raise_for_status()
    return [v["Name"] for v in answer.json().get("Volumes") or []]


def container_status(
    project: Project, gateway_url: str, api_key: str | None = None
) -> dict[str, Any]:
    """The same report as ``cluster_status`` for local processes, from the containers.

    Members are the project's containers; heartbeats come from Redis through the gateway,
    each matched to its container by hostname (a container's hostname is its short id).
    """
    members = []
    containers = project_containers(project)
    health = container_health(project, [c["Id"] for c in containers])
    for container in containers:
        labels = container.get("Labels") or {}
        service = labels.get("com.docker.compose.service", "?")
        number = labels.get("com.docker.compose.container-number", "1")
        members.append(
            {
                "name": f"{service}-{number}",
                "service": service,
                "pid": container["Id"][:12],
                "alive": container.get("State") == "running",
                "status": health.get(container["Id"]) or "yes",
                "instance_prefix": f"{container['Id'][:12]}-",
                "metrics_port": INTERNAL_METRICS.get(service, ""),
            }
        )
    members.sort(key=lambda m: (m["service"], m["name"]))
    report: dict[str, Any] = {
        "namespace": project.env.get("COORD_NAMESPACE", "coord"),
        "project": project.name,
        "gateway_url": gateway_url,
        "members": members,
        "servers": [],
        "instances": [],
        "queues": {},
    }
    answer = instances_or_none(gateway_url, api_key=api_key)
    if answer is None:
        report["gateway_reachable"] = False
    else:
        report["instances"] = [beat.model_dump(mode="json") for beat in answer.instances]
        report["queues"] = answer.queues
    report["members"] = members_by_process(members, [i["instance"] for i in report["instances"]])
    return report


def members_by_process(members: list[dict[str, Any]], instances: list[str]) -> list[dict[str, Any]]:
    """Each container matched to its heartbeats by its instance prefix; a container that
    runs several service processes (a gateway group, ``GATEWAYS=N``) becomes one row per
    process, ``gateway-1.1``, ``gateway-1.2``, as ``cluster status`` lists them locally."""
    rows: list[dict[str, Any]] = []
    for member in members:
        beats = sorted(i for i in instances if i.startswith(member["instance_prefix"]))
        if len(beats) <= 1:
            rows.append({**member, "instance": beats[0] if beats else member["name"]})
            continue
        rows.extend(
            {**member, "name": f"{member['name']}.{index}", "instance": instance}
            for index, instance in enumerate(beats, start=1)
        )
    return rows


def default_project_name() -> str:
    """Compose's own default would be the checkout's folder name; ours is stable."""
    return os.environ.get("COMPOSE_PROJECT_NAME") or "coord"
