"""The Kubernetes manifests: each kustomize build, validated strictly, and consistent.

Every object ``kubectl kustomize`` builds from the base and each overlay validates against
Kubernetes ``K8S_VERSION`` or a vendored CRD schema; the settings, partition count, drain
bound, ports, probes, security context and selectors agree with each other and with the
compose file that runs the same image.
"""

from __future__ import annotations

import copy
from pathlib import PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

from attnwatch.settings import Settings
from pipeline.config_compat import FLAT
from tests.unit.deploy.support import (
    BUILDS,
    CRD_SCHEMAS,
    DEPLOY,
    K8S_VERSION,
    OVERLAYS,
    build,
    compose,
    config,
    container,
    crd_validator,
    drain_bound_s,
    find,
    image_uid,
    pod,
    pod_specs,
)

#: kafka-python's sasl_mechanism -> the KEDA Kafka scaler's `sasl`.
KEDA_SASL = {
    "PLAIN": "plaintext",
    "SCRAM-SHA-256": "scram_sha256",
    "SCRAM-SHA-512": "scram_sha512",
    "OAUTHBEARER": "oauthbearer",
    "GSSAPI": "gssapi",
}


# --- every file parses, every object validates --------------------------------------------


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


# --- numbers and names that must agree ----------------------------------------------------


def nested(env: dict[str, str]) -> dict[str, Any]:
    """``ATTNWATCH_KAFKA__TOPICS__CHAT=chat`` -> ``{"kafka": {"topics": {"chat": "chat"}}}``."""
    out: dict[str, Any] = {}
    for key, value in env.items():
        *groups, leaf = key.removeprefix("ATTNWATCH_").lower().split("__")
        node = out
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    return out


def test_the_settings_parse_as_attnwatch_settings():
    """Every ATTNWATCH_* name and value is one ``attnwatch.settings.Settings`` accepts."""
    base = build("base")
    secret = find(base, "Secret", "attnwatch-secrets")["stringData"]
    services = compose()["services"]
    for env in [
        {**config(base), **secret},
        services["run"]["environment"],
        services["dashboard"]["environment"],
    ]:
        assert all(key.startswith("ATTNWATCH_") for key in env), sorted(env)
        # The nested names, not the deprecated flat ones of 0.1.
        assert not [k for k in env if k.removeprefix("ATTNWATCH_").lower() in FLAT], sorted(env)
        Settings(**nested(env))


def test_several_replicas_share_a_postgresql_store():
    secret = find(build("base"), "Secret", "attnwatch-secrets")["stringData"]
    assert secret["ATTNWATCH_STORE__URL"].startswith("postgresql://")
    run_service = compose()["services"]["run"]
    assert run_service["deploy"]["replicas"] > 1
    assert run_service["environment"]["ATTNWATCH_STORE__URL"].startswith("postgresql://")


@pytest.mark.parametrize("target", OVERLAYS)
def test_autoscaling_stops_at_the_partition_count(target):
    objects = build(target)
    partitions = int(config(objects)["ATTNWATCH_KAFKA__PARTITIONS"])
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
    partitions = config(objects)["ATTNWATCH_KAFKA__PARTITIONS"]
    job = container(objects, "Job", "attnwatch-topics")
    assert job["args"][0] == "topics" and "--partitions" not in job["args"]
    assert {"configMapRef": {"name": "attnwatch-config"}} in job["envFrom"]
    services = compose()["services"]
    assert services["topic-init"]["command"][0] == "topics"
    assert "--partitions" not in services["topic-init"]["command"]
    assert services["topic-init"]["environment"]["ATTNWATCH_KAFKA__PARTITIONS"] == partitions
    assert services["run"]["deploy"]["replicas"] <= int(partitions)


def test_keda_reads_the_same_kafka_group_topics_and_credentials():
    objects = build("overlays/production")
    cfg = config(objects)
    scaled = find(objects, "ScaledObject", "attnwatch-run")["spec"]
    auth = find(objects, "TriggerAuthentication", "attnwatch-kafka")["spec"]
    sasl = KEDA_SASL[cfg["ATTNWATCH_KAFKA__SASL_MECHANISM"]]
    tls = "enable" if cfg["ATTNWATCH_KAFKA__SECURITY_PROTOCOL"].endswith("SSL") else "disable"
    topics = []
    for trigger in scaled["triggers"]:
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert trigger["authenticationRef"]["name"] == "attnwatch-kafka"
        assert meta["bootstrapServers"] == cfg["ATTNWATCH_KAFKA__BOOTSTRAP_SERVERS"]
        assert meta["consumerGroup"] == cfg["ATTNWATCH_KAFKA__GROUP_ID"]
        assert (meta["sasl"], meta["tls"]) == (sasl, tls)
        assert int(meta["lagThreshold"]) > 0
        topics.append(meta["topic"])
    assert sorted(topics) == sorted(
        [cfg["ATTNWATCH_KAFKA__TOPICS__CHAT"], cfg["ATTNWATCH_KAFKA__TOPICS__NEWS"]]
    )
    for ref in [*auth["configMapTargetRef"], *auth["secretTargetRef"]]:
        kind = "ConfigMap" if ref in auth["configMapTargetRef"] else "Secret"
        source = find(objects, kind, ref["name"])
        assert ref["key"] in source.get("data", source.get("stringData", {})), ref


@pytest.mark.parametrize("target", BUILDS)
def test_termination_grace_covers_the_drain(target):
    objects = build(target)
    grace = pod(objects, "Deployment", "attnwatch-run")["terminationGracePeriodSeconds"]
    assert grace >= drain_bound_s(config(objects)) + 5


def test_run_probes_use_the_health_endpoints_on_the_metrics_port():
    objects = build("base")
    cfg = config(objects)
    run_loop = container(objects, "Deployment", "attnwatch-run")
    ports = {p["name"]: p["containerPort"] for p in run_loop["ports"]}
    assert ports == {"metrics": int(cfg["ATTNWATCH_STREAM__METRICS_PORT"])}
    assert cfg["ATTNWATCH_STREAM__METRICS_HOST"] == "0.0.0.0"  # noqa: S104 - the pod's own address
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/readyz"}
    for probe, path in expected.items():
        assert run_loop[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe


def test_dashboard_probes_and_service_use_its_port():
    objects = build("base")
    port = int(config(objects)["ATTNWATCH_DASHBOARD__PORT"])
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
    cafile = PurePosixPath(config(objects)["ATTNWATCH_KAFKA__SSL_CAFILE"])
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
