"""The rendered Kubernetes overlays (dev and prod) obey the deployment rules of issue 6 on every workload.

The overlays are rendered with deploy/render.py, which deploy/check.sh proves equal to kustomize's output.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from tests.deploy.support import DEPLOY, SERVICES, load_render

OVERLAYS = {"dev": "collections-hub-dev", "prod": "collections-hub"}
DATABASES = {
    "catalog-service": "hub_catalog",
    "access-service": "hub_access",
    "history-service": "hub_history",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}
NAME = "app.kubernetes.io/name"

Manifest = dict[str, Any]


@cache
def rendered(overlay: str) -> tuple[Manifest, ...]:
    """Every object of one overlay, rendered once per session."""
    return tuple(load_render().render(DEPLOY / "k8s" / "overlays" / overlay))


def objects(overlay: str, kind: str) -> dict[str, Manifest]:
    """The overlay's objects of one kind, by name."""
    return {m["metadata"]["name"]: m for m in rendered(overlay) if m["kind"] == kind}


def workloads(overlay: str) -> Iterator[Manifest]:
    """Every Deployment, StatefulSet and Job of the overlay."""
    return (m for m in rendered(overlay) if m["kind"] in WORKLOAD_KINDS)


def pod_spec(workload: Manifest) -> Manifest:
    """A workload's pod template spec."""
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> list[Manifest]:
    """A workload's init containers and containers."""
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: Manifest) -> dict[str, Manifest]:
    """A container's `env` entries by name."""
    return {entry["name"]: entry for entry in container.get("env", [])}


def config_value(overlay: str, config_map: str, key: str) -> str:
    """One key of a rendered ConfigMap."""
    value: str = objects(overlay, "ConfigMap")[config_map]["data"][key]
    return value


def quantity(value: str | int) -> float:
    """A Kubernetes CPU or memory quantity as a plain number (cores or bytes)."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


ALL_WORKLOADS = [
    pytest.param(overlay, workload, id=f"{overlay}-{workload['kind']}/{workload['metadata']['name']}")
    for overlay in OVERLAYS
    for workload in workloads(overlay)
]
LONG_RUNNING = [param for param in ALL_WORKLOADS if param.values[1]["kind"] != "Job"]
ALL_SERVICES = [
    pytest.param(overlay, name, id=f"{overlay}-{name}") for overlay in OVERLAYS for name in SERVICES
]


# --- every object ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_in_the_overlay_namespace(overlay: str) -> None:
    """Each namespaced object lands in the overlay's namespace, and that Namespace enforces 'restricted'."""
    namespace = OVERLAYS[overlay]
    for manifest in rendered(overlay):
        if manifest["kind"] == "Namespace":
            assert manifest["metadata"]["name"] == namespace
            assert manifest["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        else:
            assert manifest["metadata"]["namespace"] == namespace, manifest["metadata"]["name"]


# --- per service -------------------------------------------------------------------------------


@pytest.mark.parametrize(("overlay", "name"), ALL_SERVICES)
def test_each_service_has_its_deployment_service_account_service_hpa_and_pdb(overlay: str, name: str) -> None:
    """A service's Deployment, ServiceAccount, Service, HPA (v2) and PDB exist and fit together."""
    deployment = objects(overlay, "Deployment")[name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # The HPA owns the replica count; a `replicas` field would reset it on every apply.
    assert "replicas" not in deployment["spec"]

    account = objects(overlay, "ServiceAccount")[name]
    assert pod_spec(deployment)["serviceAccountName"] == name
    assert account["automountServiceAccountToken"] is False

    service = objects(overlay, "Service")[name]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 8080
    container_ports = {p["name"]: p["containerPort"] for p in pod_spec(deployment)["containers"][0]["ports"]}
    assert container_ports[port["targetPort"]] == 8080

    hpa = objects(overlay, "HorizontalPodAutoscaler")[name]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    if overlay == "prod":
        assert hpa["spec"]["minReplicas"] >= 2, "prod keeps a spare replica of every service"

    pdb = objects(overlay, "PodDisruptionBudget")[name]
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize(("overlay", "name"), ALL_SERVICES)
def test_service_probes_use_healthz_and_readyz(overlay: str, name: str) -> None:
    """Startup and liveness probe /healthz, readiness probes /readyz, all on the HTTP port."""
    (container,) = pod_spec(objects(overlay, "Deployment")[name])["containers"]
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


@pytest.mark.parametrize(("overlay", "name"), ALL_SERVICES)
def test_service_runs_its_own_module_from_the_one_image(overlay: str, name: str) -> None:
    """Each Deployment runs `python -m <its package>` from the shared image, listening on 0.0.0.0:8080."""
    (container,) = pod_spec(objects(overlay, "Deployment")[name])["containers"]
    assert container["command"] == ["python", "-m", SERVICES[name]]
    assert container["image"].startswith("registry.example.com/collections-hub:")
    assert env_of(container)["HUB_SERVICE_NAME"]["value"] == SERVICES[name]
    assert config_value(overlay, "hub-config", "HUB_HOST") == "0.0.0.0"  # noqa: S104 - a setting, not a bind
    assert config_value(overlay, "hub-config", "HUB_PORT") == "8080"


@pytest.mark.parametrize(("overlay", "name"), ALL_SERVICES)
def test_graceful_shutdown_fits_the_termination_grace_period(overlay: str, name: str) -> None:
    """preStop sleep plus HUB_SHUTDOWN_TIMEOUT ends before the kubelet's SIGKILL."""
    deployment = objects(overlay, "Deployment")[name]
    (container,) = pod_spec(deployment)["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    shutdown = float(config_value(overlay, "hub-config", "HUB_SHUTDOWN_TIMEOUT"))
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > pre_stop + shutdown


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_settings_point_at_the_right_peers(overlay: str) -> None:
    """Each service has its own database over the replica set with w=majority; the gateway has none."""
    deployments = objects(overlay, "Deployment")
    urls = set()
    for name, database in DATABASES.items():
        env = env_of(pod_spec(deployments[name])["containers"][0])
        assert env["HUB_MONGO_DATABASE"]["value"] == database
        url = env["HUB_MONGODB_URL"]["value"]
        urls.add(url)
        hosts = re.search(r"@([^/]+)/", url)
        assert hosts is not None
        assert hosts.group(1).split(",") == [f"mongo-{i}.mongo-headless:27017" for i in range(3)]
        assert "replicaSet=rs0" in url
        assert "w=majority" in url
        assert env["HUB_NATS_URL"]["value"].endswith("@nats:4222")
    assert len(urls) == 3, "one MongoDB user per service"
    assert config_value(overlay, "hub-config", "HUB_MONGO_WRITE_CONCERN") == "majority"
    assert config_value(overlay, "hub-config", "HUB_NATS_STREAM_REPLICAS") == "3"

    gateway = env_of(pod_spec(deployments["gateway"])["containers"][0])
    assert "HUB_MONGODB_URL" not in gateway
    assert "HUB_NATS_URL" in gateway
    services = objects(overlay, "Service")
    for key, target in [
        ("HUB_CATALOG_URL", "catalog-service"),
        ("HUB_ACCESS_URL", "access-service"),
        ("HUB_HISTORY_URL", "history-service"),
    ]:
        assert config_value(overlay, "hub-config", key) == f"http://{target}:8080"
        assert target in services


# --- every workload (services, NATS, MongoDB, the init Job) ------------------------------------


@pytest.mark.parametrize(("overlay", "workload"), ALL_WORKLOADS)
def test_workload_is_hardened(overlay: str, workload: Manifest) -> None:
    """Non-root, RuntimeDefault seccomp, read-only root, no escalation, all capabilities dropped, no token."""
    spec = pod_spec(workload)
    assert spec["automountServiceAccountToken"] is False
    account = objects(overlay, "ServiceAccount")[spec["serviceAccountName"]]
    assert account["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 10000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for host_namespace in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(host_namespace)
    for container in containers(workload):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["privileged"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize(("overlay", "workload"), ALL_WORKLOADS)
def test_workload_has_requests_and_limits(overlay: str, workload: Manifest) -> None:
    """Every container requests and caps CPU and memory, with requests no larger than limits."""
    for container in containers(workload):
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            request = quantity(resources["requests"][resource])
            limit = quantity(resources["limits"][resource])
            assert 0 < request <= limit, f"{container['name']} {resource}"


@pytest.mark.parametrize(("overlay", "workload"), ALL_WORKLOADS)
def test_workload_images_are_pinned_and_always_pulled(overlay: str, workload: Manifest) -> None:
    """Images carry an explicit tag or digest (never `latest`) and imagePullPolicy Always."""
    for container in containers(workload):
        image = container["image"]
        name_and_tag = image.split("@")[0].rsplit("/", 1)[-1]
        assert "@sha256:" in image or ":" in name_and_tag, image
        assert not image.endswith(":latest"), image
        assert container["imagePullPolicy"] == "Always"


@pytest.mark.parametrize(("overlay", "workload"), ALL_WORKLOADS)
def test_workload_writes_only_to_volumes(overlay: str, workload: Manifest) -> None:
    """With a read-only root, /tmp (and any other writable path) is a mounted volume."""
    spec = pod_spec(workload)
    volumes = {volume["name"] for volume in spec.get("volumes", [])}
    claims = {claim["metadata"]["name"] for claim in workload["spec"].get("volumeClaimTemplates", [])}
    for container in containers(workload):
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes | claims
    if workload["metadata"]["name"] in SERVICES:
        (container,) = spec["containers"]
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # noqa: S108 - an emptyDir


@pytest.mark.parametrize(("overlay", "workload"), LONG_RUNNING)
def test_long_running_workload_has_probes_and_pod_anti_affinity(overlay: str, workload: Manifest) -> None:
    """Deployments and StatefulSets probe startup, liveness and readiness and spread their pods over nodes."""
    spec = pod_spec(workload)
    for container in spec["containers"]:
        assert {"startupProbe", "livenessProbe", "readinessProbe"} <= container.keys()
    anti_affinity = spec["affinity"]["podAntiAffinity"]
    preferred = anti_affinity.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    terms = [
        *anti_affinity.get("requiredDuringSchedulingIgnoredDuringExecution", []),
        *(weighted["podAffinityTerm"] for weighted in preferred),
    ]
    own_name = workload["spec"]["template"]["metadata"]["labels"][NAME]
    assert any(
        t["topologyKey"] == "kubernetes.io/hostname" and t["labelSelector"]["matchLabels"] == {NAME: own_name}
        for t in terms
    )
    if overlay == "prod" and workload["kind"] == "StatefulSet":
        # A quorum member per node: losing one node never costs MongoDB or NATS their majority.
        assert anti_affinity["requiredDuringSchedulingIgnoredDuringExecution"]
        assert "preferredDuringSchedulingIgnoredDuringExecution" not in anti_affinity


@pytest.mark.parametrize(("overlay", "workload"), ALL_WORKLOADS)
def test_env_references_resolve(overlay: str, workload: Manifest) -> None:
    """Every $(VAR) names an earlier variable; every ConfigMap and required Secret key it reads exists."""
    config_maps = objects(overlay, "ConfigMap")
    secrets = objects(overlay, "Secret")
    for container in containers(workload):
        defined: set[str] = set()
        for source in container.get("envFrom", []):
            defined |= config_maps[source["configMapRef"]["name"]]["data"].keys()
        for entry in container.get("env", []):
            for reference in re.findall(r"\$\(([A-Z_]+)\)", entry.get("value", "")):
                assert reference in defined, f"{entry['name']} uses $({reference}) before it is set"
            defined.add(entry["name"])
            secret_ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if secret_ref and not secret_ref.get("optional"):
                assert secret_ref["name"] in {"hub-secrets", "mongo-auth"}, "docs/operations.md lists these"
                if overlay == "dev":  # prod Secrets are created out of band
                    assert secret_ref["key"] in secrets[secret_ref["name"]]["stringData"]


# --- NetworkPolicies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """A pod as NetworkPolicies see it: labels and a namespace."""

    name: str
    namespace: str
    labels: dict[str, str] = field(default_factory=dict, hash=False)


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and In/NotIn/Exists/DoesNotExist) selects these labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        matched = {
            "In": value in expression.get("values", []),
            "NotIn": value not in expression.get("values", []),
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }[expression["operator"]]
        if not matched:
            return False
    return True


def peer_matches(peer: Manifest, pod: Pod, policy_namespace: str) -> bool:
    """Whether a NetworkPolicy peer (namespaceSelector and/or podSelector) covers a pod."""
    assert "ipBlock" not in peer, "the evaluator models label selectors only"
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": pod.namespace})
    else:
        in_namespace = pod.namespace == policy_namespace
    return in_namespace and selects(peer.get("podSelector", {}), pod.labels)


def allows(policies: list[Manifest], direction: str, subject: Pod, peer: Pod, port: tuple[int, str]) -> bool:
    """Whether the policies selecting `subject` let traffic to/from `peer` on `port` through."""
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and selects(p["spec"]["podSelector"], subject.labels)
        and direction in p["spec"]["policyTypes"]
    ]
    if not selecting:
        return True  # a pod no policy selects is not isolated
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")

    def rule_allows(rule: Manifest, policy_namespace: str) -> bool:
        """A rule without `ports` covers every port; one without `from`/`to` every peer."""
        port_ok = "ports" not in rule or any(
            (p["port"], p.get("protocol", "TCP")) == port for p in rule["ports"]
        )
        peer_ok = peers_key not in rule or any(
            peer_matches(candidate, peer, policy_namespace) for candidate in rule[peers_key]
        )
        return port_ok and peer_ok

    return any(
        rule_allows(rule, policy["metadata"]["namespace"])
        for policy in selecting
        for rule in policy["spec"].get(rules_key, [])
    )


def reaches(policies: list[Manifest], source: Pod, target: Pod, port: tuple[int, str]) -> bool:
    """Whether a connection passes both the source's egress and the target's ingress policies."""
    leaves = allows(policies, "Egress", source, target, port)
    return leaves and allows(policies, "Ingress", target, source, port)


def expected_edges() -> set[tuple[str, str, int]]:
    """The connections the architecture needs, as (source, target, port); nothing else may pass."""
    apps = ("catalog-service", "access-service", "history-service")
    return {
        ("ingress-nginx", "gateway", 8080),
        *(("prometheus", name, 8080) for name in SERVICES),
        *(("gateway", name, 8080) for name in apps),
        ("catalog-service", "access-service", 8080),
        ("history-service", "access-service", 8080),
        ("access-service", "catalog-service", 8080),
        ("history-service", "catalog-service", 8080),
        *((name, "mongo", 27017) for name in (*apps, "mongo", "mongo-init")),
        *((name, "nats", 4222) for name in SERVICES),
        ("nats", "nats", 6222),
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_default_deny_policy_isolates_every_pod(overlay: str) -> None:
    """One policy selects every pod for ingress and egress and allows nothing."""
    deny = objects(overlay, "NetworkPolicy")["default-deny-all"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_needed_connections(overlay: str) -> None:
    """Evaluating every policy over every pod pair and port yields exactly the architecture's edges."""
    namespace = OVERLAYS[overlay]
    policies = list(objects(overlay, "NetworkPolicy").values())
    pod_labels = [w["spec"]["template"]["metadata"]["labels"] for w in workloads(overlay)]
    ours = [Pod(labels[NAME], namespace, labels) for labels in pod_labels]
    outsiders = [
        Pod("ingress-nginx", "ingress-nginx", {NAME: "ingress-nginx"}),
        Pod("prometheus", "monitoring", {NAME: "prometheus"}),
        Pod("intruder", "default", {NAME: "gateway"}),  # same labels, wrong namespace
    ]
    ports = [(8080, "TCP"), (27017, "TCP"), (4222, "TCP"), (6222, "TCP"), (8222, "TCP")]
    edges = {
        (source.name, target.name, port)
        for source in ours + outsiders
        for target in ours
        for port, protocol in ports
        if reaches(policies, source, target, (port, protocol))
    }
    assert edges == expected_edges()

    dns = Pod("coredns", "kube-system", {"k8s-app": "kube-dns"})
    for pod in ours:
        assert reaches(policies, pod, dns, (53, "UDP"))
        assert reaches(policies, pod, dns, (53, "TCP"))
        assert not reaches(policies, pod, outsiders[2], (8080, "TCP")), "no egress out of the namespace"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_is_exposed(overlay: str) -> None:
    """The one Ingress routes to the gateway Service; no Service is a NodePort or LoadBalancer."""
    (ingress,) = objects(overlay, "Ingress").values()
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"gateway"}
    assert ingress["spec"]["tls"]
    for service in objects(overlay, "Service").values():
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP"


# --- NATS and MongoDB --------------------------------------------------------------------------


def nats_config(overlay: str) -> str:
    """The nats-server configuration the StatefulSet mounts."""
    return config_value(overlay, "nats-config", "nats.conf")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_is_a_jetstream_cluster_of_three_syncing_every_write(overlay: str) -> None:
    """NATS runs as 3 clustered servers with file-backed JetStream on volumes and `sync_interval: always`."""
    nats = objects(overlay, "StatefulSet")["nats"]
    assert nats["spec"]["replicas"] == 3
    config = nats_config(overlay)
    jetstream = re.search(r"jetstream \{(.*?)\n\}", config, re.DOTALL)
    assert jetstream is not None
    assert re.search(r"^\s*sync_interval: always$", jetstream.group(1), re.MULTILINE)
    assert re.search(r"^\s*store_dir: /data$", jetstream.group(1), re.MULTILINE)
    routes = re.findall(r"nats://(nats-\d)\.nats-headless:6222", config)
    assert routes == ["nats-0", "nats-1", "nats-2"]
    (container,) = pod_spec(nats)["containers"]
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    assert [c["metadata"]["name"] for c in nats["spec"]["volumeClaimTemplates"]] == ["data"]
    assert objects(overlay, "Service")["nats-headless"]["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mongo_is_a_replica_set_of_three_data_bearing_members(overlay: str) -> None:
    """MongoDB runs 3 members of rs0 on volumes with auth, initialised with three members and no arbiter."""
    mongo = objects(overlay, "StatefulSet")["mongo"]
    assert mongo["spec"]["replicas"] == 3
    (container,) = pod_spec(mongo)["containers"]
    arguments = shlex.join(container["args"])
    assert "--replSet rs0" in arguments
    assert "--keyFile" in arguments
    assert {"name": "data", "mountPath": "/data/db"} in container["volumeMounts"]

    script = config_value(overlay, "mongo-init-script", "init-replica-set.js")
    assert "[0, 1, 2].map" in script
    assert "mongo-${i}.mongo-headless:27017" in script
    assert "arbiterOnly" not in script
    job = objects(overlay, "Job")["mongo-init"]
    (init,) = pod_spec(job)["containers"]
    assert "/scripts/init-replica-set.js" in init["command"]
