"""The Helm chart (helm/calgate), linted, rendered and validated without a cluster.

helm-python-sdk (Helm v4's own SDK through libhelm_c) lints and renders the chart, and
enforces values.schema.json; kubernetes-validate checks every rendered manifest against
the Kubernetes 1.33 schemas, strictly (HARNESS.md section 7). The Vault policy and role
scripts shipped in the chart run against a real OpenBao dev server.
"""

from __future__ import annotations

import base64
import copy
import datetime
import importlib.util
import json
import re
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

try:
    import helm_python as helm
except ModuleNotFoundError:
    raise  # a missing test dependency is an error: scripts/bootstrap test,dev
except Exception as exc:  # HelmLibraryError: libhelm_c has no build for this platform
    if type(exc).__name__ != "HelmLibraryError":
        raise
    pytest.skip(f"libhelm_c cannot load here: {exc}", allow_module_level=True)

import jsonschema
import kubernetes_validate
import yaml

from gateway.settings import Settings, describe

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "calgate"
KUBE_VERSION = "1.33.0"
RELEASE, NAMESPACE = "calgate", "calendar"

REQUIRED = {
    "database": {"existingSecret": "calgate-db"},
    "vault": {"address": "https://vault.vault.svc:8200"},
    "config": {"CALGATE_PUBLIC_URL": "https://calendar.example.com"},
}

# Realistic value sets an operator would install with, each on top of REQUIRED.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ingress-tls": {
        "ingress": {"enabled": True, "className": "nginx",
                    "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                    "tls": {"enabled": True, "secretName": "calgate-tls"}},
    },
    "external-secrets-approle": {
        "image": {"repository": "registry.internal/calgate", "tag": "0.1.0",
                  "digest": "sha256:" + "ab" * 32},
        "imagePullSecrets": [{"name": "registry-login"}],
        "database": {"existingSecret": "calgate-postgres", "urlKey": "database-url"},
        "vault": {"auth": "approle",
                  "approle": {"existingSecret": "calgate-vault-approle"},
                  "caConfigMap": {"name": "vault-ca", "key": "ca.pem"}},
        "serviceAccount": {"create": False, "name": "calgate-runtime"},
        "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"}],
    },
    "autoscaling-off": {
        "api": {"replicas": 3, "autoscaling": {"enabled": False},
                "podDisruptionBudget": {"minAvailable": 2, "maxUnavailable": None}},
        "worker": {"enabled": False},
        "config": {"CALGATE_API_WORKERS": 2, "CALGATE_LOG_LEVEL": "warning",
                   "CALGATE_NOTIFY_TIMEOUT": 2.5,
                   "CALGATE_OUTBOUND_ALLOW_NETWORKS": "10.20.0.0/16"},
    },
    "networkpolicy-servicemonitor": {
        "networkPolicy": {
            "enabled": True,
            "ingressFrom": [{"namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                        "ports": [{"port": 443, "protocol": "TCP"},
                                  {"port": 5432, "protocol": "TCP"},
                                  {"port": 8200, "protocol": "TCP"}]}]},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "api": {"podDisruptionBudget": {"enabled": False}},
    },
}

# The ServiceMonitor is a CRD (Prometheus Operator), so kubernetes-validate has no schema
# for it: it is checked against this strict subset of monitoring.coreos.com/v1 instead.
DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
SERVICE_MONITOR_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"], "additionalProperties": False,
                     "properties": {"name": {"type": "string"}, "labels": LABELS}},
        "spec": {"type": "object", "required": ["selector", "endpoints"],
                 "additionalProperties": False, "properties": {
                     "selector": {"type": "object", "additionalProperties": False,
                                  "properties": {"matchLabels": LABELS}},
                     "namespaceSelector": {
                         "type": "object", "additionalProperties": False, "properties": {
                             "matchNames": {"type": "array", "items": {"type": "string"}}}},
                     "endpoints": {"type": "array", "minItems": 1, "items": {
                         "type": "object", "additionalProperties": False, "required": ["port"],
                         "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                        "interval": DURATION, "scrapeTimeout": DURATION}}}}},
    },
}
# The worker's PodMonitor: the same subset, with podMetricsEndpoints for endpoints.
POD_MONITOR_SCHEMA = copy.deepcopy(SERVICE_MONITOR_SCHEMA)
POD_MONITOR_SCHEMA["properties"]["kind"] = {"const": "PodMonitor"}
_pod_spec = POD_MONITOR_SCHEMA["properties"]["spec"]
_pod_spec["required"] = ["selector", "podMetricsEndpoints"]
_pod_spec["properties"]["podMetricsEndpoints"] = _pod_spec["properties"].pop("endpoints")


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, recursively (what Helm does with -f files)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def values_for(name: str) -> dict[str, Any]:
    return merged(REQUIRED, VALUE_SETS[name])


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def render(chart: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rendered Kubernetes document (NOTES.txt left out)."""
    out = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs += [doc for doc in yaml.safe_load_all(text) if doc]
    return docs


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest, chart: Any) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(chart, values_for(request.param))


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
            for d in docs if d["kind"] in {"Deployment", "Job"}]


def is_hook(doc: dict[str, Any]) -> bool:
    return "helm.sh/hook" in doc["metadata"].get("annotations", {})


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "calgate_generate_values", CHART_DIR / "generate_values.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- lint and Kubernetes schemas ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_is_clean_in_strict_mode(name: str) -> None:
    report = helm.lint(CHART_DIR, values_for(name), strict=True,
                       kube_version=f"v{KUBE_VERSION}", namespace=NAMESPACE)
    assert report["errors"] == []
    # severity 1 is info ("icon is recommended"); 2 warning, 3 error
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_manifest_validates_strictly(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _name, docs = rendered
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
            continue
        if doc["kind"] == "PodMonitor":
            jsonschema.validate(doc, POD_MONITOR_SCHEMA)
            continue
        # SchemaNotFoundError (a removed or unknown apiVersion) fails the test too.
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_each_value_set_renders_what_it_asks_for(chart: Any) -> None:
    def kinds(name: str) -> list[str]:
        return sorted(f"{d['kind']}/{d['metadata']['name']}"
                      for d in render(chart, values_for(name)))

    base = ["ConfigMap/calgate", "ConfigMap/calgate-migrate", "Deployment/calgate-api",
            "Job/calgate-migrate", "Service/calgate", "ServiceAccount/calgate-migrate"]
    assert kinds("defaults") == sorted([
        *base, "Deployment/calgate-worker", "HorizontalPodAutoscaler/calgate-api",
        "PodDisruptionBudget/calgate-api", "ServiceAccount/calgate"])
    assert "Ingress/calgate" in kinds("ingress-tls")
    assert kinds("external-secrets-approle") == sorted([
        *base, "Deployment/calgate-worker", "HorizontalPodAutoscaler/calgate-api",
        "PodDisruptionBudget/calgate-api"])  # serviceAccount.create=false
    assert kinds("autoscaling-off") == sorted([
        *base, "PodDisruptionBudget/calgate-api", "ServiceAccount/calgate"])
    assert kinds("networkpolicy-servicemonitor") == sorted([
        *base, "Deployment/calgate-worker", "HorizontalPodAutoscaler/calgate-api",
        "NetworkPolicy/calgate-api", "NetworkPolicy/calgate-internal",
        "NetworkPolicy/calgate-worker-metrics", "PodMonitor/calgate-worker",
        "ServiceAccount/calgate", "ServiceMonitor/calgate"])


# -- pods: security, probes, commands -----------------------------------------------------


def test_every_pod_and_container_is_restricted(
        rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _name, docs = rendered
    specs = pod_specs(docs)
    assert specs
    for where, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert (pod["runAsUser"], pod["runAsGroup"]) == (10001, 10001), where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert tmp and "emptyDir" in tmp[0], where
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["runAsUser"] == 10001, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["privileged"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], where
            assert container["resources"]["requests"], where
            assert container["resources"]["limits"], where


def test_api_probes_ports_and_commands(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _name, docs = rendered
    [api] = named(docs, "Deployment", "calgate-api")["spec"]["template"]["spec"]["containers"]
    assert api["args"] == ["serve", "--no-migrate"]
    assert api["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    probes = {kind: (api[kind]["httpGet"]["path"], api[kind]["httpGet"]["port"])
              for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes == {"startupProbe": ("/healthz", "http"), "livenessProbe": ("/healthz", "http"),
                      "readinessProbe": ("/readyz", "http")}
    [job] = named(docs, "Job", "calgate-migrate")["spec"]["template"]["spec"]["containers"]
    assert job["args"] == ["migrate"]
    config = named(docs, "ConfigMap", "calgate")["data"]
    assert (config["CALGATE_HOST"], config["CALGATE_PORT"]) == ("0.0.0.0", "8080")
    assert config["CALGATE_SECRET_BACKEND"] == "vault"


def test_worker_runs_apart_or_inside_the_api(chart: Any) -> None:
    docs = render(chart, values_for("defaults"))
    [worker] = named(docs, "Deployment", "calgate-worker")["spec"]["template"]["spec"][
        "containers"]
    assert worker["args"] == ["worker"]
    assert named(docs, "ConfigMap", "calgate")["data"]["CALGATE_WORKER_MODE"] == "external"
    inside = render(chart, values_for("autoscaling-off"))
    assert [d["metadata"]["name"] for d in of_kind(inside, "Deployment")] == ["calgate-api"]
    assert named(inside, "ConfigMap", "calgate")["data"]["CALGATE_WORKER_MODE"] == "inprocess"


def test_metrics_are_served_by_the_api_and_the_worker(chart: Any) -> None:
    docs = render(chart, values_for("networkpolicy-servicemonitor"))
    api = named(docs, "Deployment", "calgate-api")["spec"]["template"]["spec"]
    [container] = api["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"] == mounts["metrics"]  # the uvicorn workers' files
    assert "emptyDir" in next(v for v in api["volumes"] if v["name"] == "metrics")
    [worker] = named(docs, "Deployment", "calgate-worker")["spec"]["template"]["spec"][
        "containers"]
    port = int(named(docs, "ConfigMap", "calgate")["data"]["CALGATE_WORKER_METRICS_PORT"])
    assert worker["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
    assert "PROMETHEUS_MULTIPROC_DIR" not in {e["name"] for e in worker["env"]}
    monitor = named(docs, "PodMonitor", "calgate-worker")["spec"]
    pod_labels = named(docs, "Deployment", "calgate-worker")["spec"]["template"]["metadata"][
        "labels"]
    assert monitor["selector"]["matchLabels"].items() <= pod_labels.items()
    assert [e["port"] for e in monitor["podMetricsEndpoints"]] == ["metrics"]
    allowed = named(docs, "NetworkPolicy", "calgate-worker-metrics")["spec"]
    assert allowed["ingress"][0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    off = render(chart, merged(values_for("networkpolicy-servicemonitor"),
                               {"config": {"CALGATE_WORKER_METRICS_PORT": 0}}))
    [worker] = named(off, "Deployment", "calgate-worker")["spec"]["template"]["spec"][
        "containers"]
    assert "ports" not in worker
    assert not of_kind(off, "PodMonitor")
    assert "calgate-worker-metrics" not in {d["metadata"]["name"] for d in off}


def test_vault_credentials_reach_only_the_pods_that_use_vault(chart: Any) -> None:
    docs = render(chart, values_for("defaults"))
    api = named(docs, "Deployment", "calgate-api")["spec"]["template"]["spec"]
    [token] = [v for v in api["volumes"] if v["name"] == "vault-token"]
    source = token["projected"]["sources"][0]["serviceAccountToken"]
    assert source == {"audience": "vault", "expirationSeconds": 3600, "path": "token"}
    config = named(docs, "ConfigMap", "calgate")["data"]
    mount = next(m for m in api["containers"][0]["volumeMounts"] if m["name"] == "vault-token")
    assert config["CALGATE_VAULT_K8S_TOKEN_FILE"] == f"{mount['mountPath']}/token"
    assert config["CALGATE_VAULT_AUTH"] == "kubernetes"
    job = named(docs, "Job", "calgate-migrate")["spec"]["template"]["spec"]
    assert [v["name"] for v in job["volumes"]] == ["tmp"]  # the Job needs no Vault

    approle = render(chart, values_for("external-secrets-approle"))
    api = named(approle, "Deployment", "calgate-api")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in api["volumes"]}
    assert volumes["vault-approle"]["secret"]["secretName"] == "calgate-vault-approle"
    assert volumes["vault-ca"]["configMap"] == {
        "name": "vault-ca", "items": [{"key": "ca.pem", "path": "ca.crt"}]}
    assert "vault-token" not in volumes
    env = {e["name"]: e for e in api["containers"][0]["env"]}
    assert env["CALGATE_VAULT_ROLE_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "calgate-vault-approle", "key": "role-id"}
    assert api["serviceAccountName"] == "calgate-runtime"
    assert api["containers"][0]["image"] == "registry.internal/calgate@sha256:" + "ab" * 32


# -- the migration hook -------------------------------------------------------------------


def test_migration_job_runs_as_a_hook_after_its_dependencies(
        rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _name, docs = rendered
    hooks = {(d["kind"], d["metadata"]["name"]): d["metadata"]["annotations"]
             for d in docs if is_hook(d)}
    job_key = ("Job", "calgate-migrate")
    job = hooks[job_key]
    assert job["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    spec = named(docs, "Job", "calgate-migrate")["spec"]["template"]["spec"]
    needs = {("ServiceAccount", spec["serviceAccountName"])} | {
        ("ConfigMap", ref["configMapRef"]["name"])
        for c in spec["containers"] for ref in c.get("envFrom", [])}
    for dependency in needs:
        # At pre-install the release's normal resources do not exist yet: each of the
        # Job's dependencies must be a hook of the same events, created before the Job.
        assert dependency in hooks, f"{dependency} is not a hook"
        annotations = hooks[dependency]
        assert annotations["helm.sh/hook"] == job["helm.sh/hook"]
        assert int(annotations["helm.sh/hook-weight"]) < int(job["helm.sh/hook-weight"])
    assert set(hooks) == needs | {job_key}
    assert spec["restartPolicy"] == "Never"


def test_hook_configmap_matches_the_runtime_configmap(
        rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _name, docs = rendered
    assert (named(docs, "ConfigMap", "calgate-migrate")["data"]
            == named(docs, "ConfigMap", "calgate")["data"])


# -- secrets never in a ConfigMap ---------------------------------------------------------

PLANTED = {
    "database": {"existingSecret": "planted-db-f00d", "urlKey": "planted-url-key"},
    "vault": {"auth": "approle", "approle": {"existingSecret": "planted-approle-f00d",
                                             "roleIdKey": "planted-role-key",
                                             "secretIdKey": "planted-secret-key"}},
}
# ConfigMap keys that name a token or secret but hold none: lifetimes, file paths, names.
NOT_SECRET = {"CALGATE_SECRET_BACKEND", "CALGATE_ACCESS_TOKEN_TTL", "CALGATE_REFRESH_TOKEN_TTL",
              "CALGATE_REFRESH_TOKEN_IDLE_TTL", "CALGATE_VAULT_K8S_TOKEN_FILE",
              "CALGATE_VAULT_SECRET_ID_FILE", "CALGATE_VAULT_TRANSIT_KEY"}
SECRET_LOOKING_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|DATABASE_URL|ROLE_ID|_KEY$")
SECRET_LOOKING_VALUE = re.compile(
    r"://[^/@\s]+:[^/@\s]+@|^(hvs|hvb|s|b)\.[A-Za-z0-9]{20,}$|-----BEGIN|planted")


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_no_secret_lands_in_a_configmap(chart: Any, name: str) -> None:
    docs = render(chart, merged(values_for(name), PLANTED))
    for configmap in of_kind(docs, "ConfigMap"):
        for key, value in configmap["data"].items():
            if SECRET_LOOKING_KEY.search(key):
                assert key in NOT_SECRET, f"{key} looks secret in {configmap['metadata']}"
            assert not SECRET_LOOKING_VALUE.search(value), f"{key}={value!r}"
            if key.endswith("_FILE"):
                assert value.startswith(("/var/run/secrets/calgate/", "/etc/calgate/"))
    # The planted names appear only as references to Secrets, in the pods' specs.
    for doc in docs:
        text = json.dumps(doc)
        if doc["kind"] not in {"Deployment", "Job"}:
            assert "planted" not in text, doc["kind"]
    api = named(docs, "Deployment", "calgate-api")["spec"]["template"]["spec"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in api["containers"][0]["env"]
            if "valueFrom" in e}
    assert refs == {
        "CALGATE_DATABASE_URL": {"name": "planted-db-f00d", "key": "planted-url-key"},
        "CALGATE_VAULT_ROLE_ID": {"name": "planted-approle-f00d", "key": "planted-role-key"}}


def test_the_database_url_cannot_be_put_in_the_config(chart: Any) -> None:
    url = {"config": {"CALGATE_DATABASE_URL": "postgresql+psycopg://calgate:hunter2@db/calgate"}}
    with pytest.raises(helm.HelmValuesError, match="CALGATE_DATABASE_URL"):
        chart.render(values=merged(values_for("defaults"), url), name=RELEASE)


# -- optional resources -------------------------------------------------------------------


def test_autoscaler_owns_the_replica_count_only_when_enabled(chart: Any) -> None:
    scaled = render(chart, values_for("defaults"))
    assert "replicas" not in named(scaled, "Deployment", "calgate-api")["spec"]
    hpa = named(scaled, "HorizontalPodAutoscaler", "calgate-api")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": "calgate-api"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    fixed = render(chart, values_for("autoscaling-off"))
    assert named(fixed, "Deployment", "calgate-api")["spec"]["replicas"] == 3
    assert not of_kind(fixed, "HorizontalPodAutoscaler")
    assert named(fixed, "PodDisruptionBudget", "calgate-api")["spec"]["minAvailable"] == 2


def test_selectors_and_references_line_up(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _name, docs = rendered
    api = named(docs, "Deployment", "calgate-api")
    pod_labels = api["spec"]["template"]["metadata"]["labels"]
    selectors = [api["spec"]["selector"]["matchLabels"],
                 named(docs, "Service", "calgate")["spec"]["selector"]]
    for kind in ("PodDisruptionBudget", "ServiceMonitor"):
        selectors += [d["spec"]["selector"]["matchLabels"] for d in of_kind(docs, kind)]
    selectors += [d["spec"]["podSelector"]["matchLabels"] for d in of_kind(docs, "NetworkPolicy")
                  if d["metadata"]["name"] == "calgate-api"]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    for ingress in of_kind(docs, "Ingress"):
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": "calgate", "port": {"name": "http"}}
        assert ingress["spec"]["rules"][0]["host"] == "calendar.example.com"
        assert ingress["spec"]["tls"] == [{"hosts": ["calendar.example.com"],
                                           "secretName": "calgate-tls"}]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for _where, spec in pod_specs(docs):
        if ("ServiceAccount", spec["serviceAccountName"]) not in names:
            assert spec["serviceAccountName"] == "calgate-runtime"  # create=false
        for ref in spec["containers"][0]["envFrom"]:
            assert ("ConfigMap", ref["configMapRef"]["name"]) in names


# -- settings: values.yaml documents every CALGATE_* setting ------------------------------


def test_values_and_schema_are_generated_from_the_settings() -> None:
    generator = load_generator()
    assert generator.rendered_values() == (CHART_DIR / "values.yaml").read_text(), (
        "values.yaml is stale: run .venv/bin/python helm/calgate/generate_values.py")
    assert generator.rendered_schema() == (CHART_DIR / "values.schema.json").read_text(), (
        "values.schema.json is stale: run .venv/bin/python helm/calgate/generate_values.py")


def test_values_yaml_documents_every_setting() -> None:
    text = (CHART_DIR / "values.yaml").read_text()
    flat = " ".join(line.strip().lstrip("# ") for line in text.splitlines())
    config = yaml.safe_load(text)["config"]
    managed = load_generator().MANAGED
    for name, default, help_text in describe():
        assert " ".join(help_text.split()) in flat, f"{name}'s help text is missing"
        if name in managed:
            assert f"# {name} (default" in text
        else:
            assert name in config, f"{name} is missing under config:"


def test_rendered_configuration_is_what_calgate_reads(chart: Any) -> None:
    values = values_for("autoscaling-off")
    docs = render(chart, values)
    env = dict(named(docs, "ConfigMap", "calgate")["data"])
    env["CALGATE_DATABASE_URL"] = "postgresql+psycopg://calgate@db/calgate"
    settings = Settings.from_env(env)  # validates every value
    assert settings.secret_backend == "vault"
    assert settings.worker_mode == "inprocess"
    assert settings.issuer == "https://calendar.example.com"
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["config"]
    expected = {**defaults, **values["config"]}
    by_env = {f.metadata["env"]: f.name for f in Settings.__dataclass_fields__.values()}
    for name, value in expected.items():
        got = getattr(settings, by_env[name])
        assert got == value, f"{name}: values say {value!r}, Calgate reads {got!r}"


def test_forwarded_headers_are_trusted_from_the_ingress_network_only(chart: Any) -> None:
    """Issue 11: never `*` (uvicorn then takes the left-most X-Forwarded-For entry, which
    any caller writes, as the client's address: the client-secret throttle's key)."""
    for values, expected in (
            (values_for("defaults"), "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"),
            (merged(values_for("defaults"), {"ingress": {"trustedProxies": [
                "10.244.0.0/16", "fd00:10:244::/56"]}}), "10.244.0.0/16,fd00:10:244::/56")):
        env = dict(named(render(chart, values), "ConfigMap", "calgate")["data"])
        assert env["CALGATE_FORWARDED_ALLOW_IPS"] == expected
        env["CALGATE_DATABASE_URL"] = "postgresql+psycopg://calgate@db/calgate"
        assert Settings.from_env(env).forwarded_allow_ips == expected


def test_chart_runs_the_project_version() -> None:
    chart_yaml = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart_yaml["apiVersion"] == "v2"
    assert chart_yaml["appVersion"] == project["version"]


# -- the schema refuses bad values --------------------------------------------------------


@pytest.mark.parametrize(("bad", "message"), [
    ({"api": {"replicas": 0}}, "/api/replicas"),
    ({"vault": {"auth": "token"}}, "/vault/auth"),
    ({"vault": {"auth": "approle"}}, "/vault/approle/existingSecret"),
    ({"database": {"existingSecret": ""}}, "/database/existingSecret"),
    ({"vault": {"address": ""}}, "/vault/address"),
    ({"ingres": {"enabled": True}}, "ingres"),
    ({"secretBackend": "local"}, "/secretBackend"),
    ({"securityContext": {"readOnlyRootFilesystem": False}}, "readOnlyRootFilesystem"),
    ({"securityContext": {"capabilities": {"drop": [], "add": ["NET_ADMIN"]}}}, "capabilities"),
    ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
    ({"config": {"CALGATE_PUBLIC_URL": "http://calendar.example.com"}}, "CALGATE_PUBLIC_URL"),
    ({"config": {"CALGATE_SYNC_INTERVALL": 60}}, "CALGATE_SYNC_INTERVALL"),
    ({"config": {"CALGATE_LOG_LEVEL": "verbose"}}, "CALGATE_LOG_LEVEL"),
    ({"config": {"CALGATE_CODE_TTL": 3600}}, "CALGATE_CODE_TTL"),
    ({"config": {"CALGATE_VAULT_TOKEN_FILE": "/run/token"}}, "CALGATE_VAULT_TOKEN_FILE"),
    ({"ingress": {"enabled": True, "tls": {"enabled": True}}}, "/ingress/tls/secretName"),
    ({"image": {"digest": "latest"}}, "/image/digest"),
    ({"ingress": {"enabled": False, "tls": {"enabled": False}, "trustedProxies": ["*"]}},
     "/ingress/trustedProxies/0"),
    ({"ingress": {"enabled": False, "tls": {"enabled": False}, "trustedProxies": []}},
     "/ingress/trustedProxies"),
    ({"ingress": {"enabled": False, "tls": {"enabled": False},
                  "trustedProxies": ["10.0.0.0/8", "0.0.0.0/0"]}}, "/ingress/trustedProxies/1"),
    ({"config": {"CALGATE_FORWARDED_ALLOW_IPS": "*"}}, "CALGATE_FORWARDED_ALLOW_IPS"),
])
def test_bad_values_are_refused(chart: Any, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(message)):
        chart.render(values=merged(values_for("defaults"), bad), name=RELEASE)


def test_the_required_values_are_required(chart: Any) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        chart.render(values={}, name=RELEASE)
    for missing in ("/database/existingSecret", "/vault/address", "/config/CALGATE_PUBLIC_URL"):
        assert missing in str(refused.value)


@pytest.mark.parametrize(("bad", "message"), [
    ({"api": {"autoscaling": {"minReplicas": 4, "maxReplicas": 3}}}, "maxReplicas (3)"),
    ({"api": {"podDisruptionBudget": {"minAvailable": 1}}}, "exactly one"),
    ({"api": {"terminationGracePeriodSeconds": 20}}, "terminationGracePeriodSeconds (20)"),
    ({"worker": {"terminationGracePeriodSeconds": 10}}, "worker.terminationGracePeriodSeconds"),
])
def test_inconsistent_values_fail_with_a_message(
        chart: Any, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=re.escape(message)):
        chart.render(values=merged(values_for("defaults"), bad), name=RELEASE)


# -- the image ----------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM ", text)[1:]
    assert len(stages) >= 2
    final = stages[-1]
    assert re.search(r"(?m)^USER 10001(:10001)?$", final)
    assert 'ENTRYPOINT ["calgate"]' in final
    assert re.search(r"(?m)^EXPOSE 8080$", final)
    assert not re.search(r"build-essential|gcc|apt-get install", final)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "tests", "helm"} <= {line.strip("/") for line in ignored}
    image = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["image"]["repository"]
    assert image in (ROOT / "README.md").read_text()


# -- Vault: the shipped policy and role scripts against a real OpenBao --------------------


@pytest.fixture(scope="module")
def bao() -> Iterator[Any]:
    from tests.support.baodev import OpenBaoDevServer

    with OpenBaoDevServer() as server:
        yield server


def run_script(script: str, bao: Any, tmp_path: Path, **env: str) -> str:
    done = bao.run_script(CHART_DIR / "files" / script, HOME=str(tmp_path), **env)
    assert done.returncode == 0, done.stderr
    return str(done.stderr)


def exercise_store(settings: Settings) -> None:
    """Everything Calgate does with Vault, through the policy the script wrote."""
    from gateway.secrets.vault import VaultSecretStore

    store = VaultSecretStore.from_settings(settings)
    try:
        store.check()
        store.put("profiles/pro_1/credentials", {"password": "hunter2"})
        store.put("profiles/pro_1/credentials", {"password": "hunter3"})
        assert store.get("profiles/pro_1/credentials") == {"password": "hunter3"}
        assert store.list("") == ["profiles/pro_1/credentials"]
        key = store.new_data_key()
        assert store.unwrap_data_key(key.wrapped) == key.plaintext
        store.delete("profiles/pro_1/credentials")
        assert store.find("profiles/pro_1/credentials") is None
    finally:
        store.close()


def refused(client: Any, *calls: Any) -> None:
    import hvac.exceptions

    for call in calls:
        with pytest.raises(hvac.exceptions.Forbidden):
            call(client)


@pytest.mark.vault
def test_approle_script_grants_exactly_what_calgate_uses(bao: Any, tmp_path: Path) -> None:
    import hvac

    out = tmp_path / "approle"
    custom = {"CALGATE_VAULT_KV_PREFIX": "gw-prod", "CALGATE_VAULT_TRANSIT_KEY": "gw-keys",
              "CALGATE_VAULT_POLICY": "gw-prod", "CALGATE_VAULT_APPROLE": "gw-prod"}
    run_script("vault-role-approle.sh", bao, tmp_path, OUT_DIR=str(out), **custom)
    run_script("vault-role-approle.sh", bao, tmp_path, OUT_DIR=str(out), **custom)  # idempotent
    assert oct(out.joinpath("secret-id").stat().st_mode & 0o777) == "0o600"
    role_id = out.joinpath("role-id").read_text()
    settings = Settings().replace(
        secret_backend="vault", vault_addr=bao.url, vault_auth="approle",
        vault_role_id=role_id, vault_secret_id_file=out / "secret-id",
        vault_kv_prefix="gw-prod", vault_transit_key="gw-keys")
    exercise_store(settings)

    client = hvac.Client(bao.url)
    try:
        client.auth.approle.login(role_id, out.joinpath("secret-id").read_text())
        assert client.auth.token.lookup_self()["data"]["policies"] == ["gw-prod"]  # no default
        kv, transit = client.secrets.kv.v2, client.secrets.transit
        refused(client,
                lambda c: kv.read_secret_version("calgate/x", mount_point="secret",
                                                 raise_on_deleted_version=True),
                lambda c: kv.create_or_update_secret("other/x", {"k": "v"}),
                lambda c: kv.destroy_secret_versions("gw-prod/x", versions=[1]),
                lambda c: transit.create_key("other-key"),
                lambda c: transit.rotate_key("gw-keys"),
                lambda c: transit.export_key("gw-keys", key_type="encryption-key"),
                lambda c: transit.encrypt_data("gw-keys", plaintext="aGk="),
                lambda c: c.sys.list_mounted_secrets_engines(),
                lambda c: c.sys.read_policy("gw-prod"))
    finally:
        client.adapter.close()


class _TokenReview(BaseHTTPRequestHandler):
    """The API server's TokenReview, approving any token as calendar/calgate and echoing
    the audiences Vault asks for (what a real API server does for a matching token)."""

    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body)
        status = {"authenticated": True, "audiences": body["spec"].get("audiences", []),
                  "user": {"username": f"system:serviceaccount:{NAMESPACE}:calgate",
                           "uid": "uid-1"}}
        answer = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                             "status": status}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def service_account_jwt() -> tuple[str, str]:
    """A service-account token signed by a fresh key, and that key's certificate (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from cryptography.x509.oid import NameOID

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    key = ec.generate_private_key(ec.SECP256R1())
    claims = {"iss": "kubernetes/serviceaccount", "aud": ["vault"],
              "sub": f"system:serviceaccount:{NAMESPACE}:calgate",
              "kubernetes.io/serviceaccount/namespace": NAMESPACE,
              "kubernetes.io/serviceaccount/service-account.name": "calgate",
              "kubernetes.io/serviceaccount/service-account.uid": "uid-1"}
    signing = ".".join(b64(json.dumps(p).encode()) for p in ({"alg": "ES256"}, claims))
    r, s = decode_dss_signature(key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
    jwt = f"{signing}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-cluster-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))
    return jwt, cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.vault
def test_kubernetes_script_binds_the_chart_service_account_and_audience(
        bao: Any, tmp_path: Path, chart: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenReview)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        jwt, ca = service_account_jwt()
        (tmp_path / "ca.pem").write_text(ca)
        run_script("vault-role-kubernetes.sh", bao, tmp_path, CALGATE_NAMESPACE=NAMESPACE,
                   KUBERNETES_HOST=f"http://127.0.0.1:{server.server_port}",
                   KUBERNETES_CA_CERT=str(tmp_path / "ca.pem"))
        # What the chart's defaults put in the pod: the role, mount and projected token.
        docs = render(chart, values_for("defaults"))
        config = named(docs, "ConfigMap", "calgate")["data"]
        token_file = tmp_path / "token"
        token_file.write_text(jwt)
        settings = Settings().replace(
            secret_backend="vault", vault_addr=bao.url, vault_auth=config["CALGATE_VAULT_AUTH"],
            vault_k8s_role=config["CALGATE_VAULT_K8S_ROLE"],
            vault_k8s_mount=config["CALGATE_VAULT_K8S_MOUNT"], vault_k8s_token_file=token_file,
            vault_kv_prefix=f"{config['CALGATE_VAULT_KV_PREFIX']}")
        exercise_store(settings)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert _TokenReview.seen and _TokenReview.seen[0]["spec"]["token"] == jwt
    assert _TokenReview.seen[0]["spec"]["audiences"] == ["vault"]
    assert named(docs, "ServiceAccount", "calgate")  # the name the script binds by default
