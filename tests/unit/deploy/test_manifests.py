"""The deployment files in ``deploy/``: valid for the tools that read them, and consistent.

Nothing here starts a container or a cluster (the build machine has neither). Instead:
``kubectl kustomize`` builds the base and each overlay; every built object of a built-in
kind is validated strictly by kubernetes-validate (Kubernetes ``K8S_VERSION``), every custom
resource by jsonschema against the CRD schemas vendored in ``deploy/k8s/schemas`` (made
strict as ``kubectl apply --validate=strict`` is); ``deploy/compose.yaml`` against the
vendored compose-spec schema; ``promtool check config`` and ``amtool check-config`` check the
Prometheus and Alertmanager files. The rest are the numbers that must agree across files
(partitions, drain bound, ports, names) and the Dockerfile's shape.

``kubectl`` (with kustomize v5), ``promtool`` and ``amtool`` are system tools: without them
these tests fail, naming what installs them, rather than skip.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from pipeline.config import Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = K8S / "schemas"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
BUILDS = ("base", "overlays/production", "overlays/production-hpa")
OVERLAYS = BUILDS[1:]
#: The oldest Kubernetes the manifests promise to work on (autoscaling/v2, policy/v1, ...).
K8S_VERSION = "1.30.0"
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobject_v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_triggerauthentication_v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitor_v1.json",
}
INSTALL = {
    "kubectl": "kubectl >= 1.27 (built-in kustomize v5) is not on PATH: it comes with the "
    "machine image, or install `kubectl` from the Kubernetes apt repository pkgs.k8s.io "
    "(Debian bookworm's kubernetes-client is 1.20, too old)",
    "promtool": "promtool is not on PATH: run `make promtool` (Debian package prometheus)",
    "amtool": "amtool is not on PATH: run `make promtool` (Debian package prometheus-alertmanager)",
}

#: kafka-python's sasl_mechanism -> the KEDA Kafka scaler's `sasl`.
KEDA_SASL = {
    "PLAIN": "plaintext",
    "SCRAM-SHA-256": "scram_sha256",
    "SCRAM-SHA-512": "scram_sha512",
    "OAUTHBEARER": "oauthbearer",
    "GSSAPI": "gssapi",
}

Obj = dict[str, Any]


# --- tools and loading ------------------------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(INSTALL[name])
    return path


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@cache
def kubectl() -> str:
    path = tool("kubectl")
    version = json.loads(run(path, "version", "--client", "-o", "json").stdout)
    if not version.get("kustomizeVersion", "v0").startswith("v5"):
        pytest.fail(f"{INSTALL['kubectl']}; found {version}")
    return path


@cache
def build(target: str) -> tuple[Obj, ...]:
    result = run(kubectl(), "kustomize", K8S / target)
    assert result.returncode == 0, f"kubectl kustomize {target} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def find(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return copy.deepcopy(found[0])


def config(objects: tuple[Obj, ...]) -> dict[str, str]:
    data: dict[str, str] = find(objects, "ConfigMap", "attnwatch-config")["data"]
    return data


def pod(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    spec: Obj = find(objects, kind, name)["spec"]["template"]["spec"]
    return spec


def container(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    first: Obj = pod(objects, kind, name)["containers"][0]
    return first


def pod_specs(objects: tuple[Obj, ...]) -> list[Obj]:
    return [o["spec"]["template"]["spec"] for o in objects if o["kind"] in {"Deployment", "Job"}]


def crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[api_version, kind]).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(strict(schema))


def strict(node: Any) -> Any:
    """Forbid fields the schema does not list, as ``kubectl apply --validate=strict`` does."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        if not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


def compose() -> Obj:
    loaded: Obj = load_yaml(COMPOSE)
    return loaded


def drain_bound_s(env: dict[str, str]) -> float:
    """Shutdown of the batch in flight, then the producer's and the consumer's close."""
    return float(env["ATTNWATCH_SHUTDOWN_TIMEOUT_S"]) + 2 * float(env["ATTNWATCH_IO_TIMEOUT_S"])


# --- every file parses, every object validates -------------------------------------------


def test_every_yaml_file_under_deploy_parses():
    paths = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert len(paths) >= 20
    for path in paths:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        assert docs, f"{path} is empty"


@pytest.mark.parametrize("target", BUILDS)
def test_kustomize_builds_and_every_object_validates(target):
    objects = build(target)
    assert {o["kind"] for o in objects} >= {"Deployment", "Job", "ConfigMap", "Secret"}
    for obj in objects:
        where = f"{target}: {obj['kind']}/{obj['metadata']['name']}"
        key = (obj["apiVersion"], obj["kind"])
        if key in CRD_SCHEMAS:
            errors = [e.message for e in crd_validator(*key).iter_errors(obj)]
            assert not errors, f"{where}: {errors}"
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{where}: neither a built-in kind nor a vendored CRD schema")
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {exc.message} at {list(exc.path)}")


@pytest.mark.parametrize("mistake", ["imagePullPolicyy", "terminationGracePeriod"])
def test_strict_validation_rejects_a_misspelled_deployment_field(mistake):
    deployment = find(build("base"), "Deployment", "attnwatch-run")
    spec = deployment["spec"]["template"]["spec"]
    target = spec["containers"][0] if mistake.startswith("image") else spec
    target[mistake] = "IfNotPresent" if mistake.startswith("image") else 60
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_crd_schemas_reject_a_scaledobject_without_target_or_with_a_typo():
    scaled = find(build("overlays/production"), "ScaledObject", "attnwatch-run")
    validator = crd_validator(scaled["apiVersion"], scaled["kind"])
    assert validator.is_valid(scaled)
    missing = copy.deepcopy(scaled)
    del missing["spec"]["scaleTargetRef"]
    assert "'scaleTargetRef' is a required property" in [
        e.message for e in validator.iter_errors(missing)
    ]
    typo = copy.deepcopy(scaled)
    typo["spec"]["maxReplicas"] = typo["spec"].pop("maxReplicaCount")
    assert not validator.is_valid(typo)


def test_crd_schemas_reject_a_misspelled_servicemonitor_field():
    monitor = find(build("base"), "ServiceMonitor", "attnwatch")
    monitor["spec"]["endpoints"][0]["intervall"] = monitor["spec"]["endpoints"][0].pop("interval")
    assert not crd_validator(monitor["apiVersion"], monitor["kind"]).is_valid(monitor)


def compose_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def test_compose_file_validates_against_the_compose_spec():
    errors = [f"{e.json_path}: {e.message}" for e in compose_validator().iter_errors(compose())]
    assert not errors, errors


def test_compose_spec_rejects_an_unknown_key():
    broken = compose()
    broken["services"]["run"]["depends_onn"] = broken["services"]["run"].pop("depends_on")
    assert not compose_validator().is_valid(broken)


def test_promtool_accepts_the_prometheus_config_and_resolves_its_rules():
    result = run(tool("promtool"), "check", "config", PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    assert "alerts.yml" in result.stdout


def test_promtool_fails_when_the_rule_file_is_missing(tmp_path):
    shutil.copy(PROMETHEUS, tmp_path / PROMETHEUS.name)
    result = run(tool("promtool"), "check", "config", tmp_path / PROMETHEUS.name)
    assert result.returncode != 0
    assert "alerts.yml" in result.stdout + result.stderr


def test_amtool_accepts_the_alertmanager_config():
    result = run(tool("amtool"), "check-config", ALERTMANAGER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_amtool_rejects_a_route_to_an_unknown_receiver(tmp_path):
    broken = load_yaml(ALERTMANAGER)
    broken["route"]["receiver"] = "nobody"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(broken), encoding="utf-8")
    assert run(tool("amtool"), "check-config", tmp_path / "alertmanager.yml").returncode != 0


# --- numbers and names that must agree ----------------------------------------------------


def test_the_settings_parse_as_attnwatch_settings():
    """Every ATTNWATCH_* name and value is one ``pipeline.config.Settings`` accepts."""
    base = build("base")
    secret = find(base, "Secret", "attnwatch-secrets")["stringData"]
    services = compose()["services"]
    for env in [
        {**config(base), **secret},
        services["run"]["environment"],
        services["dashboard"]["environment"],
    ]:
        fields = {key.removeprefix("ATTNWATCH_").lower(): value for key, value in env.items()}
        assert all(key.startswith("ATTNWATCH_") for key in env), sorted(env)
        Settings(**fields)


def test_several_replicas_share_a_postgresql_store():
    secret = find(build("base"), "Secret", "attnwatch-secrets")["stringData"]
    assert secret["ATTNWATCH_STORE_URL"].startswith("postgresql://")
    run_service = compose()["services"]["run"]
    assert run_service["deploy"]["replicas"] > 1
    assert run_service["environment"]["ATTNWATCH_STORE_URL"].startswith("postgresql://")


@pytest.mark.parametrize("target", OVERLAYS)
def test_autoscaling_stops_at_the_partition_count(target):
    objects = build(target)
    partitions = int(config(objects)["ATTNWATCH_PARTITIONS"])
    assert "replicas" not in find(objects, "Deployment", "attnwatch-run")["spec"]
    autoscalers = {"ScaledObject", "HorizontalPodAutoscaler"}
    scalers = [o["spec"] for o in objects if o["kind"] in autoscalers]
    assert len(scalers) == 1
    spec = scalers[0]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "attnwatch-run",
    }
    assert spec.get("maxReplicaCount", spec.get("maxReplicas")) == partitions
    assert spec.get("minReplicaCount", spec.get("minReplicas")) >= 1
    for metric in spec.get("metrics", []):
        if metric["type"] == "External":
            # prometheus-adapter matches these labels on attnwatch_consumer_lag's series.
            assert metric["external"]["metric"]["selector"]["matchLabels"] == {"job": "attnwatch"}


def test_topics_are_created_with_the_same_partition_count():
    objects = build("base")
    partitions = config(objects)["ATTNWATCH_PARTITIONS"]
    job = container(objects, "Job", "attnwatch-topics")
    assert job["args"][0] == "topics" and "--partitions" not in job["args"]
    assert {"configMapRef": {"name": "attnwatch-config"}} in job["envFrom"]
    services = compose()["services"]
    assert services["topic-init"]["command"][0] == "topics"
    assert "--partitions" not in services["topic-init"]["command"]
    assert services["topic-init"]["environment"]["ATTNWATCH_PARTITIONS"] == partitions
    assert services["run"]["deploy"]["replicas"] <= int(partitions)


def test_keda_reads_the_same_kafka_group_topics_and_credentials():
    objects = build("overlays/production")
    cfg = config(objects)
    scaled = find(objects, "ScaledObject", "attnwatch-run")["spec"]
    auth = find(objects, "TriggerAuthentication", "attnwatch-kafka")["spec"]
    sasl = KEDA_SASL[cfg["ATTNWATCH_SASL_MECHANISM"]]
    tls = "enable" if cfg["ATTNWATCH_SECURITY_PROTOCOL"].endswith("SSL") else "disable"
    topics = []
    for trigger in scaled["triggers"]:
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert trigger["authenticationRef"]["name"] == "attnwatch-kafka"
        assert meta["bootstrapServers"] == cfg["ATTNWATCH_BOOTSTRAP_SERVERS"]
        assert meta["consumerGroup"] == cfg["ATTNWATCH_GROUP_ID"]
        assert (meta["sasl"], meta["tls"]) == (sasl, tls)
        assert int(meta["lagThreshold"]) > 0
        topics.append(meta["topic"])
    assert sorted(topics) == sorted([cfg["ATTNWATCH_TOPIC_CHAT"], cfg["ATTNWATCH_TOPIC_NEWS"]])
    for ref in [*auth["configMapTargetRef"], *auth["secretTargetRef"]]:
        kind = "ConfigMap" if ref in auth["configMapTargetRef"] else "Secret"
        source = find(objects, kind, ref["name"])
        assert ref["key"] in source.get("data", source.get("stringData", {})), ref


@pytest.mark.parametrize("target", BUILDS)
def test_termination_grace_covers_the_drain(target):
    objects = build(target)
    grace = pod(objects, "Deployment", "attnwatch-run")["terminationGracePeriodSeconds"]
    assert grace >= drain_bound_s(config(objects)) + 5


def test_compose_stop_grace_covers_the_drain():
    service = compose()["services"]["run"]
    grace = int(service["stop_grace_period"].removesuffix("s"))
    assert grace >= drain_bound_s(service["environment"]) + 5


def test_run_probes_use_the_health_endpoints_on_the_metrics_port():
    objects = build("base")
    cfg = config(objects)
    run_loop = container(objects, "Deployment", "attnwatch-run")
    ports = {p["name"]: p["containerPort"] for p in run_loop["ports"]}
    assert ports == {"metrics": int(cfg["ATTNWATCH_METRICS_PORT"])}
    assert cfg["ATTNWATCH_METRICS_HOST"] == "0.0.0.0"  # noqa: S104 - the pod's own address
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/readyz"}
    for probe, path in expected.items():
        assert run_loop[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe


def test_dashboard_probes_and_service_use_its_port():
    objects = build("base")
    port = int(config(objects)["ATTNWATCH_DASHBOARD_PORT"])
    dashboard = container(objects, "Deployment", "attnwatch-dashboard")
    assert dashboard["ports"][0] == {"name": "http", "containerPort": port, "protocol": "TCP"}
    for probe in ("livenessProbe", "readinessProbe"):
        assert dashboard[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert find(objects, "Service", "attnwatch-dashboard")["spec"]["ports"][0]["port"] == port


@pytest.mark.parametrize("target", BUILDS)
def test_pods_run_as_non_root_on_a_read_only_root(target):
    for spec in pod_specs(build(target)):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == image_uid()
        # Service links would set ATTNWATCH_<SERVICE>_PORT=tcp://..., clashing with settings.
        assert spec["enableServiceLinks"] is False
        empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for each in spec["containers"]:
            context = each["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            tmp = [m for m in each["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1 and tmp[0]["name"] in empty_dirs


def test_the_kafka_ca_is_mounted_where_the_config_points():
    objects = build("base")
    cafile = PurePosixPath(config(objects)["ATTNWATCH_SSL_CAFILE"])
    for kind, name in [("Deployment", "attnwatch-run"), ("Job", "attnwatch-topics")]:
        spec = pod(objects, kind, name)
        volume = next(v for v in spec["volumes"] if "secret" in v)
        assert volume["secret"]["secretName"] == "attnwatch-kafka-tls"
        assert volume["secret"]["items"] == [{"key": "ca.crt", "path": cafile.name}]
        mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
        assert mounts[volume["name"]]["mountPath"] == str(cafile.parent)
        assert mounts[volume["name"]]["readOnly"] is True
    assert "ca.crt" in find(objects, "Secret", "attnwatch-kafka-tls")["stringData"]


def test_selectors_find_their_pods_and_services():
    objects = build("base")
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in objects
        if o["kind"] == "Deployment"
    }
    metrics = find(objects, "Service", "attnwatch-metrics")
    assert metrics["spec"]["selector"].items() <= pods["attnwatch-run"].items()
    pdb = find(objects, "PodDisruptionBudget", "attnwatch-run")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pods["attnwatch-run"].items()
    monitor = find(objects, "ServiceMonitor", "attnwatch")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in metrics["spec"]["ports"]}
    # The alert rules and the Grafana dashboard expect job="attnwatch".
    assert metrics["metadata"]["labels"][monitor["jobLabel"]] == "attnwatch"


# --- compose, Prometheus and Alertmanager -------------------------------------------------


def test_compose_starts_in_order():
    services = compose()["services"]
    conditions = {
        name: {dep: spec["condition"] for dep, spec in service.get("depends_on", {}).items()}
        for name, service in services.items()
    }
    assert conditions["topic-init"] == {"kafka": "service_healthy"}
    assert conditions["migrate"] == {"postgres": "service_healthy"}
    assert conditions["run"] == {
        "topic-init": "service_completed_successfully",
        "migrate": "service_completed_successfully",
        "kafka": "service_healthy",
        "postgres": "service_healthy",
    }
    commands = {name: services[name]["command"][0] for name in ("migrate", "run", "dashboard")}
    assert commands == {"migrate": "migrate", "run": "run", "dashboard": "dashboard"}
    for name, deps in conditions.items():
        for dep, condition in deps.items():
            if condition == "service_healthy" and services[dep].get("build") is None:
                assert "test" in services[dep]["healthcheck"], f"{name} waits on {dep}"


def test_prometheus_scrapes_every_run_replica_as_job_attnwatch():
    prometheus = load_yaml(PROMETHEUS)
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "attnwatch")
    services = compose()["services"]
    port = int(services["run"]["environment"]["ATTNWATCH_METRICS_PORT"])
    assert job["dns_sd_configs"] == [
        {"names": ["run"], "type": "A", "port": port, "refresh_interval": "15s"}
    ]
    assert prometheus["rule_files"] == ["alerts.yml"]
    mounts = services["prometheus"]["volumes"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def test_alertmanager_posts_to_the_dashboard_webhook_with_its_token():
    receiver = load_yaml(ALERTMANAGER)["receivers"][0]["webhook_configs"][0]
    services = compose()["services"]
    port = services["dashboard"]["environment"]["ATTNWATCH_DASHBOARD_PORT"]
    assert receiver["url"] == f"http://dashboard:{port}/hooks/alertmanager"
    auth = receiver["http_config"]["authorization"]
    assert auth == {"type": "Bearer", "credentials_file": "/run/secrets/dashboard_token"}
    assert services["alertmanager"]["secrets"] == ["dashboard_token"]
    token_var = compose()["secrets"]["dashboard_token"]["environment"]
    assert f"${{{token_var}:" in services["dashboard"]["environment"]["ATTNWATCH_DASHBOARD_TOKEN"]


# --- the image ------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(maxsplit=1) for line in lines if line and not line.startswith("#")]
    return [(words[0].upper(), words[1] if len(words) > 1 else "") for words in pairs]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def image_uid() -> int:
    users = [args for name, args in final_stage() if name == "USER"]
    return int(users[-1].split(":")[0])


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck():
    assert sum(name == "FROM" for name, _ in dockerfile_instructions()) >= 2
    stage = dict(final_stage())
    assert image_uid() != 0
    # Exec form (no shell in the probe): python's urllib on the metrics port's /healthz.
    probe = json.loads(stage["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert probe[:2] == ["python", "-c"]
    assert "/healthz" in probe[2] and "ATTNWATCH_METRICS_PORT" in probe[2]
    assert json.loads(stage["ENTRYPOINT"]) == ["attnwatch"]
    assert json.loads(stage["CMD"]) == ["run"]
    for setting in (
        "ATTNWATCH_METRICS_HOST=0.0.0.0",
        "ATTNWATCH_LOG_FORMAT=json",
        "HF_HUB_OFFLINE=1",
        "ATTNWATCH_MODEL_DIR=/models/current",
    ):
        assert setting in stage["ENV"].split(), setting


def test_dockerfile_installs_cpu_torch_by_default_from_a_build_argument():
    instructions = dockerfile_instructions()
    args = dict(a.partition("=")[::2] for name, a in instructions if name == "ARG")
    assert args["TORCH_VARIANT"] == "cpu"
    assert args["TORCH_INDEX"] == "https://download.pytorch.org/whl/${TORCH_VARIANT}"
    runs = [args for name, args in instructions if name == "RUN"]
    torch = next(r for r in runs if "torch==" in r)
    assert '--index-url "${TORCH_INDEX}"' in torch
    assert runs.index(torch) < next(i for i, r in enumerate(runs) if "pip install ." in r)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, for the patterns used here: the last matching line wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for line in patterns:
        pattern = line.removeprefix("!").strip("/")
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            ignored = not line.startswith("!")
    return ignored


def test_dockerignore_keeps_what_the_build_copies_and_nothing_else():
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    copies = [args.split() for name, args in dockerfile_instructions() if name == "COPY"]
    sources = [src for words in copies if not words[0].startswith("--") for src in words[:-1]]
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in packages} <= set(sources)
    for package in (p.rstrip("*") for p in packages):
        for path in (ROOT / package).rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and "__pycache__" not in relative:
                assert not dockerignored(relative, patterns), relative
    for source in sources:
        assert not dockerignored(source, patterns), source
    for excluded in (".venv/bin/python", "var/attnwatch.db", ".git/HEAD", "tests/conftest.py"):
        assert dockerignored(excluded, patterns), excluded
