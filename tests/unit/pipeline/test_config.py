import pytest

from attnwatch.settings import load_settings
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


def test_nested_names_from_file_env_and_flags(tmp_path, monkeypatch):
    config = tmp_path / "attnwatch.toml"
    config.write_text(
        "[stream]\nbatch_max_size = 7\n[kafka]\ngroup_id = 'from-file'\npartitions = 5\n"
        "[privacy]\nkinds = ['email', 'iban']\n"
        "[[alerts.receivers]]\nname = 'oncall'\nurl = 'https://am.example/api'\n"
    )
    monkeypatch.delenv("ATTNWATCH_CONFIG", raising=False)
    monkeypatch.setenv("ATTNWATCH_KAFKA__GROUP_ID", "from-env")
    monkeypatch.setenv("ATTNWATCH_PRIVACY__PHONE_REGIONS", "gb,de")
    settings = load_settings(config, kafka={"partitions": 9})
    assert settings.stream.batch_max_size == 7
    assert settings.kafka.group_id == "from-env"
    assert settings.kafka.partitions == 9
    assert settings.privacy.kinds == ["EMAIL", "IBAN"]
    assert settings.privacy.phone_regions == ["GB", "DE"]
    assert [(r.name, r.format) for r in settings.alerts.receivers] == [("oncall", "alertmanager")]


def test_flat_names_still_work_with_a_deprecation_warning(tmp_path, monkeypatch):
    config = tmp_path / "attnwatch.toml"
    config.write_text('redact_kinds = "EMAIL,CARD"\n')
    monkeypatch.delenv("ATTNWATCH_CONFIG", raising=False)
    monkeypatch.setenv("ATTNWATCH_ALERT_RECEIVERS", '[{"name": "a", "url": "https://x.example/"}]')
    with pytest.warns(DeprecationWarning) as caught:
        settings = load_settings(config)
    said = " ".join(str(w.message) for w in caught)
    assert "'privacy.kinds'" in said and "'alerts.receivers'" in said
    assert settings.privacy.kinds == ["EMAIL", "CARD"]
    assert settings.alerts.receivers[0].name == "a"
    # The nested environment variable beats the flat name in the file.
    monkeypatch.setenv("ATTNWATCH_PRIVACY__KINDS", "IBAN")
    with pytest.warns(DeprecationWarning):
        assert load_settings(config).privacy.kinds == ["IBAN"]


def test_replace_validates_and_keeps_the_rest(monkeypatch):
    monkeypatch.delenv("ATTNWATCH_CONFIG", raising=False)
    settings = load_settings(kafka={"group_id": "g"})
    changed = settings.replace(alert_history="record", stream={"batch_max_size": 3})
    assert changed.alerts.history == "record" and changed.stream.batch_max_size == 3
    assert changed.kafka.group_id == "g" and settings.alerts.history == "notify"
    with pytest.raises(ValueError, match="batch_max_size"):
        settings.replace(batch_max_size=0)


def test_config_markdown_lists_every_nested_setting_with_its_env_name():
    from attnwatch.settings import settings_markdown

    table = settings_markdown()
    assert "| `stream.batch_max_size` | `ATTNWATCH_STREAM__BATCH_MAX_SIZE` | `64` |" in table
    assert "`ATTNWATCH_KAFKA__TOPICS__CHAT`" in table
