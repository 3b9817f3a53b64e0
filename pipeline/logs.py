"""Structured logs: one JSON object per line (or a readable console form).

Fields passed with ``extra={...}`` become top-level keys.  Message text of
chats and news is never logged; it lives only in the store.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger import json as jsonlogger

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(jsonlogger.JsonFormatter):
    """One JSON object per line: time, level, logger, message, the extras, then exception.

    ``time`` is ISO-8601 UTC with milliseconds and ``level`` is lower case;
    non-ASCII text is written as is and values JSON cannot encode as ``str()``.
    """

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message"],
            rename_fields={
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
                "exc_info": "exception",
            },
            # The library's own encoder writes datetimes, bytes, dataclasses
            # and enums its way; str() is what these logs have always had.
            json_default=str,
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO-8601 UTC with milliseconds, whatever ``datefmt`` says."""
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Lower-case the level, put the exception last and leave out stack_info."""
        # The library has no option for a lower-case level name, puts the
        # traceback before the extras and adds stack_info when the caller
        # asks for it: keep the shape readers of these logs already parse.
        log_data["level"] = str(log_data["level"]).lower()
        log_data.pop("stack_info", None)
        if "exception" in log_data:
            log_data["exception"] = log_data.pop("exception")
        return log_data


class ConsoleFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """Format one record."""
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        time = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        line = f"{time} {record.levelname:<7} {record.name}: {record.getMessage()} {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line.rstrip()


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route all logging to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python is chatty at INFO (every connection); keep its warnings.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))
