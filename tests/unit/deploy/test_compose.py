"""The compose file, Prometheus and Alertmanager: valid for their tools, and wired together.

``deploy/compose.yaml`` validates against the vendored compose-spec schema and starts its
services in order; ``promtool`` and ``amtool`` accept the Prometheus and Alertmanager files,
which scrape every run replica and post alerts to the dashboard's webhook.
"""

from __future__ import annotations

import re
import shutil

import yaml

from tests.image.commands import COMMANDS
from tests.unit.deploy.support import (
    ALERTMANAGER,
    DEPLOY,
    DOCKERFILE,
    PROMETHEUS,
    ROOT,
    compose,
    compose_validator,
    drain_bound_s,
    load_yaml,
    run,
    tool,
)

# --- the compose file ---------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec():
    errors = [f"{e.json_path}: {e.message}" for e in compose_validator().iter_errors(compose())]
    assert not errors, errors


def test_compose_spec_rejects_an_unknown_key():
    broken = compose()
    broken["services"]["run"]["depends_onn"] = broken["services"]["run"].pop("depends_on")
    assert not compose_validator().is_valid(broken)


def test_compose_stop_grace_covers_the_drain():
    service = compose()["services"]["run"]
    grace = int(service["stop_grace_period"].removesuffix("s"))
    assert grace >= drain_bound_s(service["environment"]) + 5


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


def make_variable(name: str) -> str:
    found = re.search(rf"^{name} \?= (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, f"no `{name} ?= ...` in the Makefile"
    return found[1]


def test_compose_builds_the_image_make_image_builds():
    """Same tag, Dockerfile, context and model stage as `make image` (deploy/image.sh)."""
    services = compose()["services"]
    built = {name: service for name, service in services.items() if "build" in service}
    assert set(built) == set(COMMANDS)
    script = (DEPLOY / "image.sh").read_text(encoding="utf-8")
    assert '--build-arg "MODEL=$MODEL"' in script and "-f deploy/Dockerfile" in script
    for name, service in built.items():
        assert service["image"] == make_variable("IMAGE"), name
        assert (DEPLOY / service["build"]["context"]).resolve() == ROOT, name
        assert ROOT / service["build"]["dockerfile"] == DOCKERFILE, name
        model = make_variable("IMAGE_MODEL")
        assert service["build"]["args"] == {"MODEL": f"${{ATTNWATCH_IMAGE_MODEL:-{model}}}"}
    # Every other service names an upstream image by an exact tag, and none of ours.
    for name, service in services.items():
        if name not in built:
            repository, _, tag = service["image"].partition(":")
            assert tag and tag != "latest", name
            assert repository != make_variable("IMAGE").partition(":")[0], name


def test_compose_runs_the_commands_the_image_test_ran():
    services = compose()["services"]
    assert {name: services[name]["command"] for name in COMMANDS} == COMMANDS


# --- Prometheus and Alertmanager ----------------------------------------------------------


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


def test_prometheus_scrapes_every_run_replica_as_job_attnwatch():
    prometheus = load_yaml(PROMETHEUS)
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "attnwatch")
    services = compose()["services"]
    port = int(services["run"]["environment"]["ATTNWATCH_STREAM__METRICS_PORT"])
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
    port = services["dashboard"]["environment"]["ATTNWATCH_DASHBOARD__PORT"]
    assert receiver["url"] == f"http://dashboard:{port}/hooks/alertmanager"
    auth = receiver["http_config"]["authorization"]
    assert auth == {"type": "Bearer", "credentials_file": "/run/secrets/dashboard_token"}
    assert services["alertmanager"]["secrets"] == ["dashboard_token"]
    token_var = compose()["secrets"]["dashboard_token"]["environment"]
    assert f"${{{token_var}:" in services["dashboard"]["environment"]["ATTNWATCH_DASHBOARD__TOKEN"]
