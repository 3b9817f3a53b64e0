"""The Prometheus alert rules in ``deploy/prometheus``: valid, unit-tested by promtool, documented.

``promtool`` is a system dependency (Debian package ``prometheus``, installed by
``make promtool``); without it these tests fail rather than skip, so a missing tool cannot
pass CI silently.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULE_TESTS = RULES_DIR / "alerts_test.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
INSTALL_HINT = (
    "promtool is not on PATH: run `make promtool` "
    "(apt-get install --no-install-recommends prometheus)"
)


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(INSTALL_HINT)
    return path


def run_promtool(
    promtool: str, *args: str | Path, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_the_rules_file_passes_promtool_check(promtool):
    result = run_promtool(promtool, "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@pytest.mark.slow
def test_the_rule_unit_tests_pass(promtool):
    # From the repository root: rule_files in the test file resolve against its own folder.
    result = run_promtool(promtool, "test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # Without the traffic guard, dead letters over a flat messages counter give +Inf.
        ("and on () sum(increase(attnwatch_messages_total[10m])) > 0", ""),
        # `and ... == 0` misses a topic that has never handled a message.
        (
            "unless on (topic) sum by (topic) (rate(attnwatch_messages_total[5m])) > 0",
            "and on (topic) sum by (topic) (rate(attnwatch_messages_total[5m])) == 0",
        ),
        ("for: 30m", "for: 15m"),
    ],
    ids=["dead-letter-guard", "stalled-without-counter", "confidence-for"],
)
@pytest.mark.slow
def test_the_rule_unit_tests_catch_a_broken_rule(promtool, tmp_path, old, new):
    rules = RULES.read_text(encoding="utf-8")
    assert old in rules
    (tmp_path / RULES.name).write_text(rules.replace(old, new, 1), encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = run_promtool(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0, result.stdout


def test_every_rule_has_a_for_a_severity_and_the_annotations():
    rules = alert_rules()
    assert len(rules) == 9
    for rule in rules:
        assert re.fullmatch(r"\d+[mhd]", rule.get("for", "")), rule["alert"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, rule["alert"]


def test_every_rule_is_tested_firing_and_not_firing():
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for rule in alert_rules():
        name = rule["alert"]
        outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == name}
        assert outcomes == {True, False}, f"{name}: needs a firing and a non-firing case"


def test_the_rules_use_only_metrics_attnwatch_exports():
    exported = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in Metrics().registry.collect()
    }
    used: set[str] = set()
    for rule in alert_rules():
        for text in [rule["expr"], *rule["annotations"].values()]:
            used.update(re.findall(r"\battnwatch_\w+", text))
    assert "attnwatch_shift_active" in used
    assert used <= exported, sorted(used - exported)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading (before de-duplication)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def markdown_anchors(markdown: str) -> set[str]:
    """Every heading anchor of ``markdown`` as GitHub renders it.

    A repeated heading gets ``-1``, ``-2``, ... on GitHub, so a link to the plain anchor
    reaches only the first one.  Code blocks hold shell comments, not headings.
    """
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE):
        anchor = github_anchor(heading)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(f"{anchor}-{count}" if count else anchor)
    return anchors


def test_runbook_urls_point_at_their_own_runbook_in_the_operations_guide():
    anchors = markdown_anchors(OPERATIONS.read_text(encoding="utf-8"))
    prefix = "https://github.com/attnwatch/attnwatch/blob/main/docs/operations.md#"
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(prefix), url
        anchor = url.removeprefix(prefix)
        assert anchor in anchors, f"{rule['alert']}: no heading in docs/operations.md for {url}"
        # Each alert's own section (`### AttnwatchStoreDown`), not a shared one.
        assert anchor == github_anchor(rule["alert"]), f"{rule['alert']}: links to #{anchor}"


def test_markdown_anchors_follow_github():
    markdown = "# Runbooks\n```\n# not a heading\n```\n## Upgrades and rollback\n## Runbooks\n"
    assert markdown_anchors(markdown) == {"runbooks", "upgrades-and-rollback", "runbooks-1"}


def test_the_operations_guide_links_only_to_headings_it_has():
    # The runbooks send the reader between sections; a renamed heading must not strand them.
    guide = OPERATIONS.read_text(encoding="utf-8")
    anchors = markdown_anchors(guide)
    links = set(re.findall(r"\]\(#([^)]+)\)", guide))
    assert links, "no in-page links found"
    assert links <= anchors, sorted(links - anchors)
