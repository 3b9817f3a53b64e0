"""Model rollout through the real broker: a model promoted mid-run is swapped in between batches.

``attnwatch run`` runs as a child process, as an operator runs it, with ``model_dir`` a link.
While chats stream through it, a broken model is linked in by hand (refused: the old model
keeps serving) and then a good one is promoted with ``attnwatch model promote`` and SIGHUP.
Nothing may be lost or stored twice, every event names the model that classified it, and in
every partition the old model's offsets all come before the new model's (the swap happens
between batches, never inside one).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from consumers.broker import EmbeddedBroker
from models.fast.loading import open_classifier
from models.fast.onnx_export import export_onnx
from models.rollout import promote
from models.saving import read_info
from pipeline.store import read_events
from tests.integration.processes import ROOT, Worker, store_counts, worker_env
from tests.integration.test_crash_recovery import (
    START_S,
    produce_chats,
    settings_for,
    stop_gracefully,
    wait_until_stored,
)

# slow: starts `attnwatch run` processes or runs a minute or more (issue 26 timings).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAVE = 600


def attnwatch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attnwatch", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def chats(prefix: str, n: int) -> list[tuple[str, str]]:
    lines = [
        "my card payment was declined twice today",
        "thanks, the refund arrived and everything is fine now",
        "why is my transfer still pending after three days?",
    ]
    return [(f"{prefix}{i}", lines[i % len(lines)]) for i in range(n)]


def test_promote_mid_run_swaps_between_batches_and_refuses_a_broken_model(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path
) -> None:
    new_model = export_onnx(tiny_model, tmp_path / "tiny-onnx")
    old_version, new_version = read_info(tiny_model).version, read_info(new_model).version
    assert old_version != new_version
    link = tmp_path / "models" / "current"
    promote(tiny_model, link, lambda path: open_classifier(path, "cpu"))
    # An hour between checks: only SIGHUP makes the loop look, so each step is deterministic.
    settings = settings_for(
        broker, tmp_path, link, model_watch_interval_s=3600.0, batch_max_size=16
    )
    env = worker_env(settings)
    connection = broker.connection

    with Worker(["attnwatch", "run"], env, tmp_path / "logs") as worker:
        worker.wait_for_log("partitions assigned", START_S)
        first = produce_chats(settings, connection, chats("a", WAVE))
        wait_until_stored(worker, settings.store_url, (WAVE // 4, 0), 60.0)

        # 1. A broken model linked in by hand (no `promote` to stop it): refused, still serving.
        broken = tmp_path / "models" / "broken"
        broken.mkdir()
        (broken / "config.json").write_bytes((tiny_model / "config.json").read_bytes())
        os.replace(_symlink_beside(link, broken), link)
        worker.signal(signal.SIGHUP)
        refusal = worker.wait_for_log("new model refused; the serving model keeps running", 60.0)
        assert refusal["model_dir"] == str(broken)
        before = sum(store_counts(settings.store_url))
        worker.until(
            lambda: sum(store_counts(settings.store_url)) > before, 30.0, "more rows stored"
        )

        # 2. `promote` refuses the broken directory too, and then promotes the good one.
        refused = attnwatch("--model-dir", str(link), "model", "promote", str(broken), env=env)
        assert refused.returncode == 2, refused.stderr
        done = attnwatch("--model-dir", str(link), "model", "promote", str(new_model), env=env)
        assert done.returncode == 0, done.stderr
        assert os.path.realpath(link) == str(new_model.resolve())
        worker.signal(signal.SIGHUP)
        swapped = worker.wait_for_log("model swapped", 60.0)
        assert (swapped["old_version"], swapped["model_version"]) == (old_version, new_version)
        second = produce_chats(settings, connection, chats("b", WAVE))

        counts = wait_until_stored(worker, settings.store_url, (2 * WAVE, 0), 120.0)
        assert counts == (2 * WAVE, 0), worker.tail()
        code, _ = stop_gracefully(worker, settings)
        assert code == 0, worker.tail()

    events = read_events(settings.store_url)
    assert len(events) == 2 * WAVE
    assert set(events["input_id"]) == set(first) | set(second)
    versions = dict(zip(events["input_id"], events["model_version"], strict=True))
    assert set(versions.values()) == {old_version, new_version}
    assert all(versions[i] == new_version for i in second)
    assert sum(versions[i] == old_version for i in first) >= WAVE // 4
    # Never interleaved within a partition: the swap falls between batches.
    for topic_partition in {(t, p) for t, p, _ in first.values()}:
        offsets = {
            version: [
                o
                for i, (t, p, o) in first.items()
                if (t, p) == topic_partition and versions[i] == version
            ]
            for version in (old_version, new_version)
        }
        if offsets[old_version] and offsets[new_version]:
            assert max(offsets[old_version]) < min(offsets[new_version]), topic_partition


def _symlink_beside(link: Path, target: Path) -> Path:
    temporary = link.with_name(".hand-made")
    os.symlink(target, temporary)
    return temporary
