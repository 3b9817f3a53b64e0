"""The Grafana dashboards in ``dashboards/grafana``: every query selects metrics attnwatch exports.

How an expression is parsed.  No Python PromQL parser is installed, so Prometheus parses
it: a module fixture starts the ``prometheus`` server (Debian package ``prometheus``, the
one that ships ``promtool``; ``make promtool`` installs both) on a free local port, with
an empty TSDB and one ``remote_read`` endpoint that this module serves.  Prometheus's
PromQL engine parses each query and, for every vector or matrix selector in the syntax
tree, sends that selector's label matchers to the remote-read endpoint (snappy-compressed
protobuf ``ReadRequest``), which records them and answers "no series".  The metric names
a panel selects are the ``__name__`` equality matchers Prometheus itself extracted, never
a regex over the query text.  A syntax error is the server's 400 ``bad_data``; in
addition ``promtool check rules`` validates every expression, written out as a recording
rule named after its panel.

Grafana variables (``$__rate_interval``, ``${job}``, ...) are replaced by sample values
first, as Grafana does before it sends a query.  The exported names are the sample names
prometheus_client serves for a fresh ``pipeline.metrics.Metrics`` (``_total``,
``_bucket``, ``_sum``, ``_count``, ``_created``), every labelled metric given one child.

Without ``prometheus`` or ``promtool`` on PATH these tests fail rather than skip, so a
missing tool cannot pass CI silently.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import cramjam
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from pipeline.metrics import Metrics
from tests.support.network import free_port
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"
DASHBOARDS = sorted(GRAFANA.rglob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
INSTALL_HINT = (
    "{tool} is not on PATH: run `make promtool` "
    "(apt-get install --no-install-recommends prometheus ships promtool and the server)"
)

#: Grafana's built-in variables, as Grafana would expand them for a query.
BUILTIN_VARIABLES = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
#: Grafana's variable syntax: ``$name``, ``${name}``, ``${name:format}``, ``[[name]]``.
GRAFANA_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")

#: Okabe and Ito's colour-blind-safe palette, with the grey of the R Cookbook's variant.
COLOUR_BLIND_SAFE = {
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#999999",
}


# --------------------------------------------------------------------------- dashboards


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dashboard


def all_panels(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included; a collapsed row keeps its panels inside itself."""
    for panel in container.get("panels", []):
        yield panel
        yield from all_panels(panel)


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``(panel, target)`` for every PromQL target of every panel."""
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield panel, target


def variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    values = dict(BUILTIN_VARIABLES)
    for variable in dashboard["templating"]["list"]:
        current = variable.get("current") or {}
        values[variable["name"]] = str(current.get("value") or "sample")
    return values


def expand(expr: str, values: dict[str, str]) -> str:
    """``expr`` with Grafana's variables replaced; an undefined variable raises KeyError."""
    return GRAFANA_VARIABLE.sub(lambda m: values[next(g for g in m.groups() if g)], expr)


def panel_queries() -> list[Any]:
    """One pytest param per panel target: (dashboard file, panel title, expr as written)."""
    return [
        pytest.param(
            path, panel["title"], target["expr"], id=f"{path.stem}:{panel['id']}:{target['refId']}"
        )
        for path in DASHBOARDS
        for panel, target in queries(load(path))
    ]


# --------------------------------------------------------------------------- exported names


def exported_sample_names() -> set[str]:
    """The sample names a fresh ``Metrics`` serves, with one child per labelled metric."""
    metrics = Metrics()
    for metric in vars(metrics).values():
        # prometheus_client has no public accessor for a wrapper's label names.
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*("sample" for _ in metric._labelnames))
    families = list(metrics.registry.collect())
    assert all(family.samples for family in families), "a labelled metric has no child"
    return {sample.name for family in families for sample in family.samples}


@pytest.fixture(scope="module")
def exported() -> set[str]:
    return exported_sample_names()


# --------------------------------------------------------------------------- Prometheus as parser


class Matcher(NamedTuple):
    """One label matcher of a selector, as Prometheus's remote-read protocol carries it."""

    op: str
    name: str
    value: str


class PromQLError(Exception):
    """Prometheus rejected a query (the message is its error)."""


MATCH_OPS = {0: "=", 1: "!=", 2: "=~", 3: "!~"}


def uvarint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


# Snappy (block format) through cramjam; protobuf is decoded by hand, only the parts remote
# read uses (varint and length-delimited fields), since protobuf's generated classes for
# Prometheus' messages are not a dependency.
def snappy_decompress(data: bytes) -> bytes:
    return bytes(cramjam.snappy.decompress_raw(data))


def snappy_compress(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


def protobuf_fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    i = 0
    while i < len(data):
        key, i = uvarint(data, i)
        wire = key & 7
        value: int | bytes
        if wire == 0:
            value, i = uvarint(data, i)
        elif wire == 2:
            length, i = uvarint(data, i)
            value, i = data[i : i + length], i + length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, i = data[i : i + width], i + width
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")  # noqa: EM102
        yield key >> 3, value


def read_request_selectors(body: bytes) -> list[list[Matcher]]:
    """The matchers of each query in a remote-read ``ReadRequest``.

    ``ReadRequest.queries = 1``; ``Query.matchers = 3``; ``LabelMatcher`` is
    ``type = 1`` (EQ, NEQ, RE, NRE), ``name = 2``, ``value = 3``.
    """
    selectors = []
    for number, query in protobuf_fields(snappy_decompress(body)):
        if number != 1 or not isinstance(query, bytes):
            continue
        matchers = []
        for field, raw in protobuf_fields(query):
            if field == 3 and isinstance(raw, bytes):
                parts: dict[int, int | bytes] = {1: 0, 2: b"", 3: b""}
                parts.update(protobuf_fields(raw))
                op, name, value = parts[1], parts[2], parts[3]
                assert isinstance(op, int) and isinstance(name, bytes)
                assert isinstance(value, bytes)
                matchers.append(Matcher(MATCH_OPS[op], name.decode(), value.decode()))
        selectors.append(matchers)
    return selectors


class RemoteRead(http.server.ThreadingHTTPServer):
    """A remote-read endpoint that records every selector it is asked for."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RemoteReadHandler)
        self.lock = threading.Lock()
        self.selectors: list[list[Matcher]] = []


class RemoteReadHandler(http.server.BaseHTTPRequestHandler):
    server: RemoteRead

    def do_POST(self) -> None:
        selectors = read_request_selectors(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.selectors.extend(selectors)
        # ReadResponse: one empty QueryResult (field 1, length 0) per query.
        body = snappy_compress(b"\x0a\x00" * len(selectors))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Encoding", "snappy")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""


class SelectorProbe:
    """Asks a Prometheus server which selectors a PromQL expression contains."""

    def __init__(self, url: str, remote: RemoteRead) -> None:
        self.url = url
        self.remote = remote

    def selectors(self, expr: str) -> list[list[Matcher]]:
        with self.remote.lock:
            self.remote.selectors.clear()
        data = urllib.parse.urlencode({"query": expr}).encode()
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query", data, timeout=30) as resp:
                answer = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise PromQLError(json.load(exc).get("error", str(exc))) from exc
        # A warning means remote read failed, and then the recorded selectors may be short.
        assert answer["status"] == "success" and not answer.get("warnings"), answer
        with self.remote.lock:
            return list(self.remote.selectors)

    def problems(self, expr: str, exported: set[str]) -> list[str]:
        """Why ``expr`` does not only select exported metrics (empty when it does)."""
        found = []
        for matchers in self.selectors(expr):
            names = [m.value for m in matchers if m.name == "__name__" and m.op == "="]
            selector = "{" + ", ".join(f'{m.name}{m.op}"{m.value}"' for m in matchers) + "}"
            if not names:
                found.append(f"selector without a metric name: {selector}")
            elif names[0] not in exported:
                found.append(f"{names[0]} is not a metric attnwatch exports: {selector}")
        return found


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(INSTALL_HINT.format(tool=name))
    return path


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SelectorProbe]:
    server = tool("prometheus")
    remote = RemoteRead()
    threading.Thread(target=remote.serve_forever, daemon=True).start()
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    # read_recent: ask the remote for every time range, not only what the TSDB lacks.
    config.write_text(
        f"remote_read:\n  - url: http://127.0.0.1:{remote.server_port}/read\n"
        "    read_recent: true\n",
        encoding="utf-8",
    )
    url = f"http://127.0.0.1:{free_port()}"
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                server,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={url.removeprefix('http://')}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                return True
        except OSError:
            return False

    try:
        try:
            wait_for(ready, 30, "prometheus to answer /-/ready")
        except AssertionError as exc:
            pytest.fail(f"{exc}:\n{log.read_text(errors='replace')}")
        yield SelectorProbe(url, remote)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        remote.shutdown()
        remote.server_close()


# --------------------------------------------------------------------------- tests


def test_the_operations_dashboard_is_found():
    assert GRAFANA / "attnwatch-operations.json" in DASHBOARDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_the_dashboard_has_its_variables(path):
    dashboard = load(path)
    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"] and dashboard["title"] and dashboard["id"] is None
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["type"] == "query"
    assert variables["job"]["datasource"] == DATASOURCE


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_has_a_title_a_description_a_unique_id_and_the_datasource(path):
    panels = list(all_panels(load(path)))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for panel in panels:
        assert panel.get("title", "").strip(), panel["id"]
        if panel["type"] == "row":
            continue
        assert len(panel.get("description", "").split()) >= 8, panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE) == DATASOURCE, panel["title"]
            assert target["expr"].strip() and target["refId"], panel["title"]


def test_every_expression_passes_promtool_check_rules(tmp_path):
    promtool = tool("promtool")
    rules = []
    for path in DASHBOARDS:
        dashboard = load(path)
        values = variable_values(dashboard)
        for panel, target in queries(dashboard):
            stem = re.sub(r"\W", "_", path.stem)
            record = f"grafana_{stem}_panel_{panel['id']}_{target['refId']}"
            rules.append({"record": record, "expr": expand(target["expr"], values)})
    rule_file = tmp_path / "panels.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.parametrize(("path", "title", "expr"), panel_queries())
@pytest.mark.slow
def test_every_panel_query_selects_only_metrics_attnwatch_exports(
    probe, exported, path, title, expr
):
    expr = expand(expr, variable_values(load(path)))
    assert probe.selectors(expr), f"{title}: selects no metric"
    assert not probe.problems(expr, exported), f"{path.name} {title}: {expr}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_the_job_variable_lists_an_exported_metric(probe, exported, path):
    query = {v["name"]: v for v in load(path)["templating"]["list"]}["job"]["query"]
    assert query["query"] == f"label_values({query['metric']},{query['label']})"
    assert not probe.problems(query["metric"], exported)


def test_the_exported_names_are_the_samples_prometheus_client_serves(exported):
    assert {
        "attnwatch_messages_total",
        "attnwatch_messages_created",
        "attnwatch_end_to_end_latency_seconds_bucket",
        "attnwatch_end_to_end_latency_seconds_sum",
        "attnwatch_end_to_end_latency_seconds_count",
        "attnwatch_consumer_lag",
        "attnwatch_ready",
    } <= exported
    # Family names of counters and histograms are not series Prometheus stores.
    assert "attnwatch_messages" not in exported
    assert "attnwatch_end_to_end_latency_seconds" not in exported


def test_the_check_fails_on_a_metric_attnwatch_does_not_export(probe, exported):
    good = (
        "sum(rate(attnwatch_messages_total[5m])) / on () group_left ()"
        ' sum(attnwatch_consumer_lag{job="attnwatch"} offset 1h)'
    )
    assert [
        {(m.name, m.value) for m in matchers if m.name == "__name__"}
        for matchers in probe.selectors(good)
    ] == [{("__name__", "attnwatch_messages_total")}, {("__name__", "attnwatch_consumer_lag")}]
    assert probe.problems(good, exported) == []
    wrong = {
        # A typo inside a nested call.
        "sum(rate(attnwatch_message_total[5m])) / sum(rate(attnwatch_messages_total[5m]))": (
            "attnwatch_message_total"
        ),
        # A histogram's family name is not a series: only _bucket, _sum and _count are.
        "histogram_quantile(0.9, rate(attnwatch_model_latency_seconds[5m]))": (
            "attnwatch_model_latency_seconds"
        ),
        # Prometheus's own series are not attnwatch's.
        'up{job="attnwatch"} == 0': "up",
        '{__name__=~"attnwatch_.+"}': "without a metric name",
        'sum by (job) ({job="attnwatch"})': "without a metric name",
    }
    for expr, reason in wrong.items():
        problems = probe.problems(expr, exported)
        assert len(problems) == 1 and reason in problems[0], (expr, problems)
    with pytest.raises(PromQLError, match="parse error"):
        probe.selectors("sum(rate(attnwatch_messages_total[5m])")


def test_queries_inside_a_collapsed_row_are_collected():
    dashboard = {
        "panels": [
            {"type": "row", "id": 1, "panels": [{"id": 2, "targets": [{"expr": "a"}]}]},
            {"id": 3, "targets": [{"expr": "b"}, {"refId": "C"}]},
        ]
    }
    assert [target["expr"] for _, target in queries(dashboard)] == ["a", "b"]


def test_grafana_variables_are_expanded_and_an_unknown_one_is_an_error():
    values = {**BUILTIN_VARIABLES, "job": "attnwatch"}
    expr = 'rate(x{job="$job", a="${job}", b="${job:raw}", c="[[job]]"}[$__rate_interval])'
    assert expand(expr, values) == (
        'rate(x{job="attnwatch", a="attnwatch", b="attnwatch", c="attnwatch"}[5m])'
    )
    with pytest.raises(KeyError, match="instance"):
        expand('x{instance="$instance"}', values)


def colours(node: Any) -> Iterator[str]:
    """Every colour a dashboard sets: fixed colours, threshold steps, value mappings."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("color", "fixedColor") and isinstance(value, str):
                yield value
            else:
                yield from colours(value)
    elif isinstance(node, list):
        for item in node:
            yield from colours(item)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_colour_is_from_a_colour_blind_safe_palette(path):
    used = set(colours(load(path)["panels"]))
    assert used, "no colours set"
    assert used <= COLOUR_BLIND_SAFE, sorted(used - COLOUR_BLIND_SAFE)


def test_sentiment_labels_have_three_distinct_colours():
    sentiment = {}
    for panel in all_panels(load(GRAFANA / "attnwatch-operations.json")):
        for override in panel.get("fieldConfig", {}).get("overrides", []):
            for label in ("negative", "neutral", "positive"):
                if re.fullmatch(override["matcher"]["options"], f"chat {label}"):
                    sentiment[label] = next(
                        p["value"]["fixedColor"]
                        for p in override["properties"]
                        if p["id"] == "color"
                    )
    assert set(sentiment) == {"negative", "neutral", "positive"}
    assert len(set(sentiment.values())) == 3


def test_the_provisioning_files_point_at_prometheus_and_the_dashboards():
    provisioning = GRAFANA / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources.yaml").read_text(encoding="utf-8"))
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    dashboards = yaml.safe_load((provisioning / "dashboards.yaml").read_text(encoding="utf-8"))
    [provider] = dashboards["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")


def test_the_readme_describes_every_row():
    readme = (GRAFANA / "README.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#+ (.+)$", readme, flags=re.MULTILINE))
    for path in DASHBOARDS:
        for panel in all_panels(load(path)):
            if panel["type"] == "row":
                assert panel["title"] in headings, panel["title"]
