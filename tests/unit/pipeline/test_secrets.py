"""No secret is shown: not by `attnwatch config`, not by a repr, not in kafka-python's logs."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from attnwatch.cli import app
from attnwatch.cli.settings import mask_receiver_url, mask_store_url
from attnwatch.settings import Settings, load_settings
from consumers.connection import KafkaConnection
from pipeline.logs import configure_logging

SASL_PASSWORD = "sasl-s3cret-pw"
DB_PASSWORD = "hunter2"
RAW_DB_PASSWORD = "raw-db-pw-77"
TOKEN = "dash-token-0123456789"
SLACK_SECRET = "T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"
SECRETS = (SASL_PASSWORD, DB_PASSWORD, RAW_DB_PASSWORD, TOKEN, SLACK_SECRET)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTNWATCH_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ATTNWATCH_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("ATTNWATCH_KAFKA__SASL_USERNAME", "svc-attnwatch")
    monkeypatch.setenv("ATTNWATCH_KAFKA__SASL_PASSWORD", SASL_PASSWORD)
    monkeypatch.setenv("ATTNWATCH_STORE__URL", f"postgresql://u:{DB_PASSWORD}@db/x")
    monkeypatch.setenv("ATTNWATCH_STORE__RAW_URL", f"postgresql://raw:{RAW_DB_PASSWORD}@vault/raw")
    monkeypatch.setenv("ATTNWATCH_DASHBOARD__TOKEN", TOKEN)
    receivers = [
        {"name": "slack", "url": f"https://hooks.slack.com/services/{SLACK_SECRET}"},
        {"name": "am", "url": "http://alertmanager:9093/api/v2/alerts", "format": "alertmanager"},
    ]
    monkeypatch.setenv("ATTNWATCH_ALERTS__RECEIVERS", json.dumps(receivers))


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} shown in:\n{text}"


def test_config_never_prints_a_secret(secret_env):
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert_no_secret(result.stdout + result.stderr)
    shown = json.loads(result.stdout)
    # Masked, not dropped: the operator still sees that each one is set, and where to.
    assert shown["kafka"]["sasl_password"] == "**********"
    assert shown["dashboard"]["token"] == "**********"
    assert shown["kafka"]["sasl_username"] == "svc-attnwatch"
    assert shown["store"]["url"] == "postgresql://u:***@db/x"
    assert shown["store"]["raw_url"] == "postgresql://raw:***@vault/raw"
    receivers = shown["alerts"]["receivers"]
    assert [r["url"] for r in receivers] == [
        "https://hooks.slack.com/**********",
        "http://alertmanager:9093/**********",
    ]
    assert [r["name"] for r in receivers] == ["slack", "am"]


def test_config_shows_unset_secrets_as_unset():
    shown = json.loads(CliRunner().invoke(app, ["config"]).stdout)
    assert shown["kafka"]["sasl_password"] is None and shown["dashboard"]["token"] is None
    assert shown["dashboard"]["host"] == "127.0.0.1" and shown["dashboard"]["port"] == 8050


def test_settings_repr_and_str_hide_the_secrets(secret_env):
    settings = load_settings()
    for text in (repr(settings), str(settings)):
        assert SASL_PASSWORD not in text and TOKEN not in text
    # The values are still there for the code that needs them.
    assert settings.kafka("k1:9093").client_kwargs()["sasl_plain_password"] == SASL_PASSWORD
    assert settings.dashboard.token is not None
    assert settings.dashboard.token.get_secret_value() == TOKEN


def test_kafka_connection_repr_hides_the_password():
    connection = Settings(
        bootstrap_servers="k1:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password=SASL_PASSWORD,
    ).kafka()
    assert isinstance(connection, KafkaConnection)
    for text in (repr(connection), str(connection), f"{connection}"):
        assert SASL_PASSWORD not in text
        assert "svc" in text  # the rest is still there to debug with
    assert connection.sasl_password == SASL_PASSWORD


def test_kafka_python_debug_logs_stay_off_even_at_debug(secret_env):
    # kafka-python logs its whole configuration, password included, at DEBUG when a client
    # starts ("Starting KafkaAdminClient with configuration: ..."); attnwatch's logging
    # keeps the kafka loggers at WARNING whatever ATTNWATCH_LOG_LEVEL says.
    configure_logging("DEBUG", "json")
    assert not logging.getLogger("kafka.admin.client").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("kafka.conn").isEnabledFor(logging.INFO)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("postgresql+psycopg://u:p%40ss@db/x", "postgresql+psycopg://u:***@db/x"),
        ("sqlite:///var/attnwatch.db", "sqlite:///var/attnwatch.db"),
        ("postgresql://u@db/x", "postgresql://u@db/x"),
    ],
)
def test_store_urls_are_masked(url, shown):
    assert mask_store_url(url) == shown


def test_an_unparseable_store_url_is_masked_too():
    masked = mask_store_url("not a url://u:pw@db/x")
    assert "pw" not in masked


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T/B/X", "https://hooks.slack.com/**********"),
        ("https://user:pw@am.example:9443/api?token=abc", "https://am.example:9443/**********"),
        ("http://am.example", "http://am.example"),
        ("not a url", "**********"),
    ],
)
def test_receiver_urls_keep_only_scheme_host_and_port(url, shown):
    assert mask_receiver_url(url) == shown


@pytest.mark.parametrize(
    "value",
    [
        f'[{{"url": "https://x/{SLACK_SECRET}"',  # not JSON
        f'[{{"name": "x", "url": "https://x/{SLACK_SECRET}", "format": "teams"}}]',  # invalid
    ],
)
def test_unparseable_receivers_are_hidden_whole(monkeypatch, value):
    # Receivers are typed now: a bad value is refused at start-up (status 2), and the
    # error names the setting without repeating its value.
    monkeypatch.setenv("ATTNWATCH_ALERTS__RECEIVERS", value)
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2
    assert "alerts" in result.stdout + result.stderr
    assert SLACK_SECRET not in result.stdout + result.stderr
