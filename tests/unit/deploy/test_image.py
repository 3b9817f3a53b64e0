"""The image: the Dockerfile's shape and what ``.dockerignore`` lets into the build."""

from __future__ import annotations

import fnmatch
import json
import tomllib

from tests.unit.deploy.support import ROOT, dockerfile_instructions, final_stage, image_uid


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck():
    assert sum(name == "FROM" for name, _ in dockerfile_instructions()) >= 2
    stage = dict(final_stage())
    assert image_uid() != 0
    # Exec form (no shell in the probe): python's urllib on the metrics port's /healthz.
    probe = json.loads(stage["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert probe[:2] == ["python", "-c"]
    assert "/healthz" in probe[2] and "ATTNWATCH_STREAM__METRICS_PORT" in probe[2]
    assert json.loads(stage["ENTRYPOINT"]) == ["attnwatch"]
    assert json.loads(stage["CMD"]) == ["run"]
    for setting in (
        "ATTNWATCH_STREAM__METRICS_HOST=0.0.0.0",
        "ATTNWATCH_LOG_FORMAT=json",
        "HF_HUB_OFFLINE=1",
        "ATTNWATCH_MODEL__DIR=/models/current",
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


def test_dockerfile_builds_with_buildah_on_the_official_base_by_default():
    """Every FROM is ${BASE_IMAGE} or an earlier stage: buildah 1.28 (podman 4.3) resolves no
    stage name from a build argument (`FROM model-${MODEL}` failed with "short-name ... did
    not resolve"), and BASE_IMAGE defaults to the official python image."""
    instructions = dockerfile_instructions()
    args = dict(a.partition("=")[::2] for name, a in instructions if name == "ARG" and "=" in a)
    assert args["BASE_IMAGE"] == "python:${PYTHON_VERSION}-slim-bookworm"
    assert args["PYTHON_VERSION"] == "3.11"
    stages: list[str] = []
    for words in (a.split() for n, a in instructions if n == "FROM"):
        assert words[0] == "${BASE_IMAGE}" or words[0] in stages, words
        assert words[1].upper() == "AS"
        stages.append(words[2])
    copied = [a.split()[0] for n, a in instructions if n == "COPY" and a.startswith("--from=")]
    assert {c.removeprefix("--from=") for c in copied} <= set(stages)
