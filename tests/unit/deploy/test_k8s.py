"""deploy/k8s: every overlay renders and every manifest is valid, with no cluster.

Built-in kinds are validated against the Kubernetes JSON schemas (kubernetes-validate,
strict: unknown fields fail) for the oldest Kubernetes we support and the newest the
package knows. KEDA's kinds are validated against models generated from KEDA's CRDs
(cloudcoil-models-keda); a field the models drop is a field KEDA does not know.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from shared.names import Names
from tests.unit.deploy.conftest import OVERLAYS

OLDEST_KUBERNETES = "1.29.0"
APP_DEPLOYMENTS = ("gateway", "worker", "aggregator")
Manifest = dict[str, Any]


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    for manifest in manifests:
        if manifest["kind"] in ("Deployment", "StatefulSet"):
            yield manifest["metadata"]["name"], manifest["spec"]["template"]["spec"]


def config(manifests: list[Manifest]) -> dict[str, str]:
    (config_map,) = of_kind(manifests, "ConfigMap").values()
    data = config_map["data"]
    assert isinstance(data, dict)
    return data


def keda_errors(manifest: Manifest) -> str | None:
    from cloudcoil.models.keda.v1alpha1 import ScaledObject, TriggerAuthentication

    models = {"ScaledObject": ScaledObject, "TriggerAuthentication": TriggerAuthentication}
    if manifest["apiVersion"] != "keda.sh/v1alpha1" or manifest["kind"] not in models:
        return f"unknown KEDA kind {manifest['apiVersion']} {manifest['kind']}"
    try:
        model = models[manifest["kind"]].model_validate(manifest)
    except ValueError as exc:
        return str(exc)
    understood = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    if understood != manifest:
        return f"fields KEDA does not know: {manifest} became {understood}"
    return None


def test_there_are_the_overlays_the_guide_names() -> None:
    assert {"dev", "dev-keda", "prod", "prod-hpa"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_matches_the_kubernetes_schema(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    problems = []
    for manifest in rendered[overlay]:
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["apiVersion"].startswith("keda.sh/"):
            if (error := keda_errors(manifest)) is not None:
                problems.append(f"{name}: {error}")
            continue
        for version in (OLDEST_KUBERNETES, latest_version()):
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{name} (k8s {version}): {exc.message} at {list(exc.path)}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                problems.append(f"{name}: {exc.message}")
    assert not problems, "\n".join(problems)


def test_the_keda_check_catches_unknown_and_missing_fields(
    rendered: dict[str, list[Manifest]],
) -> None:
    scaled = of_kind(rendered["prod"], "ScaledObject")["worker"]
    assert keda_errors(scaled) is None
    misspelt = copy.deepcopy(scaled)
    misspelt["spec"]["minReplicaCont"] = 1
    assert keda_errors(misspelt) is not None
    missing = copy.deepcopy(scaled)
    del missing["spec"]["scaleTargetRef"]
    assert keda_errors(missing) is not None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_run_from_one_image_with_probes_and_resources(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    deployments = of_kind(rendered[overlay], "Deployment")
    assert set(deployments) == set(APP_DEPLOYMENTS)
    images = set()
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        images.add(container["image"])
        assert container["command"] == ["python", "-m", f"services.{name}"]
        assert {"livenessProbe", "readinessProbe"} <= set(container), name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
    assert len(images) == 1
    gateway = deployments["gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_meet_the_restricted_security_profile(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    for name, spec in pod_specs(rendered[overlay]):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] != 0, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_periods_outlast_the_drain_deadline(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    drain = float(config(rendered[overlay])["COORD_DRAIN_TIMEOUT_S"])
    for name, spec in pod_specs(rendered[overlay]):
        if name in APP_DEPLOYMENTS:
            assert spec["terminationGracePeriodSeconds"] > drain + 5, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """Every ConfigMap and Secret a pod reads exists, except prod's Secret, made by hand."""
    manifests = rendered[overlay]
    names = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    made_by_hand = {("Secret", "coord-secrets")} if overlay.startswith("prod") else set()
    for pod, spec in pod_specs(manifests):
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                kind, ref = next(
                    (k, v)
                    for k, v in (
                        ("ConfigMap", source.get("configMapRef")),
                        ("Secret", source.get("secretRef")),
                    )
                    if v
                )
                assert (kind, ref["name"]) in names | made_by_hand, (pod, kind, ref)
            for variable in container.get("env", []):
                secret = variable.get("valueFrom", {}).get("secretKeyRef")
                if secret:
                    assert ("Secret", secret["name"]) in names | made_by_hand, (pod, secret)
    for auth in of_kind(manifests, "TriggerAuthentication").values():
        for target in auth["spec"]["secretTargetRef"]:
            assert ("Secret", target["name"]) in names | made_by_hand, target


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_and_budgets_select_pods(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    manifests = rendered[overlay]
    pod_labels = [
        m["spec"]["template"]["metadata"]["labels"]
        for m in manifests
        if m["kind"] in ("Deployment", "StatefulSet")
    ]

    def selects(selector: dict[str, str]) -> bool:
        return any(selector.items() <= labels.items() for labels in pod_labels)

    for service in of_kind(manifests, "Service").values():
        if service["spec"].get("type") != "ExternalName":
            assert selects(service["spec"]["selector"]), service["metadata"]["name"]
    budgets = of_kind(manifests, "PodDisruptionBudget")
    assert budgets["worker"]["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "worker"
    }
    for budget in budgets.values():
        assert selects(budget["spec"]["selector"]["matchLabels"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_servers_exist_under_the_names_the_urls_use(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    services = of_kind(rendered[overlay], "Service")
    for server, port in (("rabbitmq", 5672), ("redis", 6379)):
        assert server in services
        assert port in [p["port"] for p in services[server]["spec"]["ports"]]
    external = {n for n, s in services.items() if s["spec"].get("type") == "ExternalName"}
    statefulsets = set(of_kind(rendered[overlay], "StatefulSet"))
    if overlay.startswith("dev"):
        assert statefulsets == {"rabbitmq", "redis"} and not external
    else:
        assert external == {"rabbitmq", "redis"} and not statefulsets


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_scale_one_way_only(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    manifests = rendered[overlay]
    worker = of_kind(manifests, "Deployment")["worker"]
    scaled = of_kind(manifests, "ScaledObject")
    hpas = of_kind(manifests, "HorizontalPodAutoscaler")
    assert len(scaled) + len(hpas) <= 1, "two autoscalers would fight over the workers"
    if scaled or hpas:
        assert "replicas" not in worker["spec"], "the autoscaler owns the replica count"
        target = (scaled or hpas)["worker"]["spec"]["scaleTargetRef"]
        assert target["name"] == "worker"
    else:
        assert worker["spec"]["replicas"] >= 1
    expected = {"dev": None, "dev-keda": "keda", "prod": "keda", "prod-hpa": "hpa"}
    if overlay in expected:
        assert {None: not (scaled or hpas), "keda": bool(scaled), "hpa": bool(hpas)}[
            expected[overlay]
        ]


@pytest.mark.parametrize("overlay", ["dev-keda", "prod"])
def test_keda_watches_the_jobs_queue_with_the_services_credentials(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    manifests = rendered[overlay]
    namespace = config(manifests)["COORD_NAMESPACE"]
    (trigger,) = of_kind(manifests, "ScaledObject")["worker"]["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == Names(namespace).jobs_queue
    assert trigger["metadata"]["mode"] == "QueueLength"
    assert int(trigger["metadata"]["value"]) > 0
    auth = of_kind(manifests, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert {"parameter": "host", "name": "coord-secrets", "key": "COORD_AMQP_URL"} in auth["spec"][
        "secretTargetRef"
    ]


def test_no_guest_credentials_anywhere(rendered: dict[str, list[Manifest]]) -> None:
    for overlay, manifests in rendered.items():
        assert "guest" not in repr(manifests).lower(), overlay


def test_dev_secret_urls_match_the_server_credentials(
    rendered: dict[str, list[Manifest]],
) -> None:
    import base64

    secrets = of_kind(rendered["dev"], "Secret")

    def decoded(secret: str) -> dict[str, str]:
        data = secrets[secret]["data"]
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    app, servers = decoded("coord-secrets"), decoded("coord-servers")
    user, password = servers["rabbitmq-username"], servers["rabbitmq-password"]
    assert app["COORD_AMQP_URL"] == f"amqp://{user}:{password}@rabbitmq:5672/"
    assert app["COORD_REDIS_URL"] == f"redis://:{servers['redis-password']}@redis:6379/0"
    assert "COORD_API_KEY" not in app, "an empty key would require the empty key"
