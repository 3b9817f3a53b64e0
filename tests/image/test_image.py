"""The image `make image` built, run as the compose file runs it, against real parts.

An embedded Tansu broker and a PostgreSQL cluster run on the host; the containers share the
host's network. ``topics`` and ``migrate`` run to completion, ``run`` becomes ready on
``/readyz``, stores the 200 messages replayed from the host and exits 0 on SIGTERM within
compose's stop grace period; ``dashboard`` serves its page behind its token. The settings
are compose's own (``x-attnwatch-env``), with only the addresses changed to the host's, and
the model is the one the image carries (``MODEL=train``, as compose builds it).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from consumers.broker import EmbeddedBroker
from pipeline.store.engine import create_engine, normalise_url
from tests.image.commands import COMMANDS
from tests.image.podman import ROOT, Container, podman, run_to_completion
from tests.support.network import free_port
from tests.support.waiting import wait_for

COMPOSE = ROOT / "deploy" / "compose.yaml"
REPLAYED = 200
#: Bounds, generous for 2 shared cores: a one-shot command, and `run` loading torch + model.
ONE_SHOT_S = 180.0
READY_S = 300.0
STORED_S = 180.0


def compose_service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"][name]
    return service


def container_env(service: str, broker: EmbeddedBroker, store_url: str) -> dict[str, str]:
    """Compose's environment for ``service``, pointed at the host's broker and database."""
    env = {k: str(v) for k, v in compose_service(service)["environment"].items()}
    env["ATTNWATCH_KAFKA__BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
    env["ATTNWATCH_STORE__URL"] = store_url
    # Host network: a free port instead of compose's fixed one.
    env["ATTNWATCH_STREAM__METRICS_PORT"] = str(free_port())
    return env


def get(url: str, token: str | None = None) -> tuple[int, str] | None:
    """``(status, body)`` of a GET, ``None`` while nothing answers."""
    request = urllib.request.Request(url)  # noqa: S310 (http on loopback)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310
            return reply.status, reply.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError:
        return None


def stored_events(store_url: str) -> int:
    """Rows in the store's events table (0 before the table exists)."""
    engine = create_engine(normalise_url(store_url))
    try:
        with engine.connect() as conn:
            if "events" not in sa.inspect(conn).get_table_names():
                return 0
            return int(conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one())
    finally:
        engine.dispose()


def replay(broker: EmbeddedBroker, count: int) -> None:
    """Replay ``count`` seed messages from the host, as fast as possible, none malformed."""
    args = ["--bootstrap-servers", broker.bootstrap_servers, "replay", "--rate", "0",
            "--count", str(count), "--bad-rate", "0", "--no-shift"]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "attnwatch", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


#: What the build borrowed from the host and must not leave behind, not even as an empty
#: mount point: deploy/image.sh mounts it all under /dev/attnwatch-build.
BUILD_ONLY = ("etc/pip.conf", "etc/xdg/pip", "opt/wheels", "opt/pypi", "opt/pypi-more",
              "root/.config/pip", "root/.cache/pip", "dev/attnwatch-build")  # fmt: skip


def test_image_carries_no_build_time_pip_settings(image: str) -> None:
    """The host's pip.conf, CA bundle, wheel directory and indexes were volumes, not layers."""
    mounted = podman("image", "mount", image)
    assert mounted.returncode == 0, mounted.stderr
    try:
        rootfs = Path(mounted.stdout.strip())
        assert (rootfs / "opt/attnwatch/bin/attnwatch").is_file()
        assert [p for p in BUILD_ONLY if (rootfs / p).exists() or (rootfs / p).is_symlink()] == []
        host_ca = Path("/etc/ssl/certs/ca-certificates.crt")
        image_ca = rootfs / "etc/ssl/certs/ca-certificates.crt"
        if host_ca.exists() and image_ca.exists():
            # The host's bundle (with this network's own CA) was mounted for pip, never copied.
            assert image_ca.read_bytes() != host_ca.read_bytes()
    finally:
        podman("image", "unmount", image)
    probe = "import os, sys; print(sorted(k for k in os.environ if k.startswith('PIP_')))"
    result = podman("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c",
                    f"python -m pip config list; python -c \"{probe}\"")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", "pip in the image has settings: " + result.stdout


def test_run_stores_replayed_messages_and_exits_0_on_sigterm(
    image: str, broker: EmbeddedBroker, empty_postgres_url: str
) -> None:
    env = container_env("run", broker, empty_postgres_url)
    run_to_completion(image, COMMANDS["topic-init"], env, ONE_SHOT_S)
    run_to_completion(image, COMMANDS["migrate"], env, ONE_SHOT_S)
    assert stored_events(empty_postgres_url) == 0
    readyz = f"http://127.0.0.1:{env['ATTNWATCH_STREAM__METRICS_PORT']}/readyz"
    with Container(image, COMMANDS["run"], env) as container:

        def readiness(component: str) -> bool:
            """Whether /readyz says ``component`` is ok (``ready`` for the whole answer)."""
            if not container.running():
                pytest.fail(f"run exited:\n{container.logs()[-3000:]}")
            answer = get(readyz)
            if answer is None or answer[0] not in (200, 503):
                return False
            body = json.loads(answer[1])
            return bool(body["ready"] if component == "ready" else
                        body["components"][component]["ok"])  # fmt: skip

        def wait(component: str, timeout_s: float) -> None:
            try:
                wait_for(lambda: readiness(component), timeout_s, f"{readyz}: {component}",
                         max_interval_s=1.0)  # fmt: skip
            except AssertionError as exc:
                pytest.fail(f"{exc}; last answer {get(readyz)}:\n{container.logs()[-3000:]}")

        # Model loaded and partitions assigned; store and broker report ok with the first
        # commit, so /readyz answers 200 once a batch has gone through.
        wait("assignment", READY_S)
        replay(broker, REPLAYED)
        wait_for(
            lambda: stored_events(empty_postgres_url) >= REPLAYED,
            STORED_S,
            f"{REPLAYED} replayed messages stored",
            max_interval_s=1.0,
        )
        assert stored_events(empty_postgres_url) == REPLAYED
        wait("ready", ONE_SHOT_S)
        final = get(readyz)
        assert final is not None and final[0] == 200, final
        grace_s = float(compose_service("run")["stop_grace_period"].removesuffix("s"))
        container.signal("TERM")
        code = container.wait(grace_s)
        assert code == 0, container.logs()[-3000:]
    assert stored_events(empty_postgres_url) == REPLAYED


def test_dashboard_serves_its_page_behind_its_token(
    image: str, broker: EmbeddedBroker, empty_postgres_url: str
) -> None:
    env = container_env("dashboard", broker, empty_postgres_url)
    token = secrets.token_urlsafe(24)
    port = free_port()
    env |= {"ATTNWATCH_DASHBOARD__PORT": str(port), "ATTNWATCH_DASHBOARD__TOKEN": token}
    assert env["ATTNWATCH_DASHBOARD__HOST"] == "0.0.0.0"  # noqa: S104 (compose's bind)
    run_to_completion(image, COMMANDS["migrate"], env, ONE_SHOT_S)
    with Container(image, COMMANDS["dashboard"], env) as container:

        def healthy() -> bool:
            if not container.running():
                pytest.fail(f"dashboard exited:\n{container.logs()[-3000:]}")
            answer = get(f"http://127.0.0.1:{port}/healthz")
            return answer is not None and answer[0] == 200

        wait_for(healthy, READY_S, "the dashboard's /healthz answers 200", max_interval_s=1.0)
        page = get(f"http://127.0.0.1:{port}/", token)
        assert page is not None and page[0] == 200, page
        assert "<title>Live feed · attnwatch</title>" in page[1]
        refused = get(f"http://127.0.0.1:{port}/")
        assert refused is not None and refused[0] == 401, refused
        container.signal("TERM")
        assert container.wait(30) == 0, container.logs()[-3000:]
