import json
import logging
import re
import sys
from datetime import UTC, datetime

import pytest

from pipeline.logs import ConsoleFormatter, JsonFormatter, configure_logging

#: 2025-11-25T10:00:00.123456Z
CREATED = 1764064800.123456


def record(msg="dead letter on %s", args=("chat",), level=logging.WARNING, exc_info=None, **extra):
    made = logging.getLogger("attnwatch.run").makeRecord(
        "attnwatch.run", level, __file__, 12, msg, args, exc_info, extra=extra or None
    )
    made.created = CREATED
    return made


def failure():
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        return sys.exc_info()


class Unencodable:
    def __str__(self):
        return "<unencodable #7>"


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    kafka_level = logging.getLogger("kafka").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("kafka").setLevel(kafka_level)


def test_json_line_has_time_level_logger_message_in_that_order():
    line = JsonFormatter().format(record())
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2025-11-25T10:00:00.123+00:00",
        "level": "warning",
        "logger": "attnwatch.run",
        "message": "dead letter on chat",
    }
    assert list(json.loads(line)) == ["time", "level", "logger", "message"]


@pytest.mark.parametrize("created", [0.0, 1.9999, 1764064800.0005, 4102444799.999])
def test_time_is_iso_utc_with_milliseconds(created):
    made = record()
    made.created = created
    time = json.loads(JsonFormatter().format(made))["time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", time)
    parsed = datetime.fromisoformat(time)
    assert parsed.utcoffset().total_seconds() == 0
    assert abs(parsed.timestamp() - created) < 0.001


@pytest.mark.parametrize(
    ("level", "name"),
    [
        (logging.DEBUG, "debug"),
        (logging.INFO, "info"),
        (logging.WARNING, "warning"),
        (logging.ERROR, "error"),
        (logging.CRITICAL, "critical"),
    ],
)
def test_level_is_lower_case(level, name):
    assert json.loads(JsonFormatter().format(record(level=level)))["level"] == name


def test_extras_are_top_level_keys_after_the_message():
    line = JsonFormatter().format(record(reason="invalid_json", topic="chat", offset=1841))
    payload = json.loads(line)
    assert list(payload) == ["time", "level", "logger", "message", "reason", "topic", "offset"]
    assert payload["offset"] == 1841
    assert payload["reason"] == "invalid_json"


def test_exception_is_the_traceback_text_and_the_last_key():
    line = JsonFormatter().format(record(exc_info=failure(), reason="sink failed"))
    assert "\n" not in line
    payload = json.loads(line)
    assert list(payload)[-2:] == ["reason", "exception"]
    assert payload["exception"].startswith("Traceback (most recent call last):\n")
    assert payload["exception"].endswith("ZeroDivisionError: division by zero")
    assert "exc_info" not in payload


def test_no_exception_key_without_one_and_no_stack_info():
    made = record()
    made.stack_info = "Stack (most recent call last):\n  File x"
    payload = json.loads(JsonFormatter().format(made))
    assert "exception" not in payload
    assert "stack_info" not in payload


def test_non_ascii_is_written_as_is():
    line = JsonFormatter().format(record("überweisung %s", ("fehlgeschlagen 😀",), store="café"))
    assert "überweisung fehlgeschlagen 😀" in line
    assert '"store": "café"' in line
    assert "\\u" not in line


def test_values_json_cannot_encode_are_written_with_str():
    when = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    payload = json.loads(
        JsonFormatter().format(
            record(model=Unencodable(), when=when, raw=b"\xff", ids={3}, none=None, ok=[1, "a"])
        )
    )
    assert payload["model"] == "<unencodable #7>"
    assert payload["when"] == str(when)
    assert payload["raw"] == str(b"\xff")
    assert payload["ids"] == "{3}"
    assert payload["none"] is None
    assert payload["ok"] == [1, "a"]


def test_configure_logging_json_writes_one_object_per_line_to_stderr(capsys, restore_root):
    configure_logging("INFO", "json")
    log = logging.getLogger("attnwatch.test")
    log.info("started", extra={"partitions": 3})
    log.debug("hidden")
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        log.exception("batch failed", extra={"size": 32})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert (first["level"], first["message"], first["partitions"]) == ("info", "started", 3)
    assert (second["level"], second["size"]) == ("error", 32)
    assert "ZeroDivisionError" in second["exception"]
    assert logging.getLogger("kafka").level == logging.WARNING


def test_console_format_is_a_readable_line():
    formatter = ConsoleFormatter()
    line = formatter.format(record(reason="invalid_json", offset=3))
    assert (
        line == "10:00:00 WARNING attnwatch.run: dead letter on chat reason=invalid_json offset=3"
    )
    assert formatter.format(record("started", (), level=logging.INFO)) == (
        "10:00:00 INFO    attnwatch.run: started"
    )
    with_exception = formatter.format(record(exc_info=failure()))
    head, *trace = with_exception.splitlines()
    # (the empty extras leave a space before the traceback: harmless, kept as it was)
    assert head.rstrip() == "10:00:00 WARNING attnwatch.run: dead letter on chat"
    assert trace[0] == "Traceback (most recent call last):"
    assert trace[-1] == "ZeroDivisionError: division by zero"


def test_configure_logging_console_is_not_json(capsys, restore_root):
    configure_logging("WARNING", "console")
    logging.getLogger("attnwatch.test").warning("slow batch", extra={"size": 5})
    err = capsys.readouterr().err
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING attnwatch\.test: slow batch size=5\n", err)
