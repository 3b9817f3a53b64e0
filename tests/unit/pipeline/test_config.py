import pytest

from pipeline.config import load_settings
from pipeline.errors import ConfigError


def test_flags_beat_env_beat_file(tmp_path, monkeypatch):
    config = tmp_path / "attnwatch.toml"
    config.write_text('batch_max_size = 7\ngroup_id = "from-file"\npartitions = 5\n')
    monkeypatch.delenv("ATTNWATCH_CONFIG", raising=False)
    monkeypatch.setenv("ATTNWATCH_GROUP_ID", "from-env")
    monkeypatch.setenv("ATTNWATCH_PARTITIONS", "6")
    settings = load_settings(config, partitions=9, store_url=None)
    assert settings.batch_max_size == 7
    assert settings.group_id == "from-env"
    assert settings.partitions == 9
    assert settings.store_url.startswith("sqlite:///")


def test_invalid_values_fail_with_a_config_error(monkeypatch):
    monkeypatch.delenv("ATTNWATCH_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="batch_max_size"):
        load_settings(batch_max_size=0)
    with pytest.raises(ConfigError, match="host:port"):
        load_settings(bootstrap_servers="localhost")
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(__import__("pathlib").Path("/nonexistent.toml"))


def test_kafka_connection_passes_sasl_and_tls(monkeypatch):
    monkeypatch.delenv("ATTNWATCH_CONFIG", raising=False)
    settings = load_settings(
        bootstrap_servers="k1:9093,k2:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password="secret",
    )
    kwargs = settings.kafka().client_kwargs()
    assert kwargs["bootstrap_servers"] == ["k1:9093", "k2:9093"]
    assert kwargs["sasl_plain_password"] == "secret"
    assert kwargs["security_protocol"] == "SASL_SSL"
    with pytest.raises(ConfigError, match="bootstrap"):
        load_settings().kafka()
