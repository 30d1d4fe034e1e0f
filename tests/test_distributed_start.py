"""``distributed.initialize`` against a peer that is not a JAX coordinator: a clear error in time.

No JAX needed: the address is checked with plain sockets before JAX is asked.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from backprop import distributed


def _server(reply: bytes | None):
    """A TCP server on 127.0.0.1 that answers every connection with ``reply`` (None: silence)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    stop = threading.Event()
    conns = []

    def serve():
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(conn)
            if reply is not None:
                conn.sendall(reply)
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join()
        for c in conns:
            c.close()
        sock.close()

    return sock.getsockname()[1], close


@pytest.mark.parametrize(
    ("reply", "fragment"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n", "answered b'SSH-2.0-O'"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "answered b'HTTP/1.1 '"),
        (b"", "closed the connection|connection failed"),
    ],
    ids=["ssh", "http1", "hangs-up"],
)
def test_a_peer_that_is_not_a_coordinator_is_named_at_once(reply, fragment):
    port, close = _server(reply)
    try:
        t0 = time.monotonic()
        with pytest.raises(ConnectionError) as info:
            distributed.initialize(f"127.0.0.1:{port}", 2, 1, timeout=30)
        assert time.monotonic() - t0 < 10
    finally:
        close()
    message = str(info.value)
    assert f"127.0.0.1:{port} is not a JAX coordinator" in message
    assert any(f in message for f in fragment.split("|")), message
    assert "process 1 of 2" in message


def test_a_silent_peer_is_a_timeout_within_the_timeout():
    port, close = _server(None)
    try:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="did not answer as a JAX coordinator within 1 s"):
            distributed.initialize(f"127.0.0.1:{port}", 2, 1, timeout=1)
        assert time.monotonic() - t0 < 5
    finally:
        close()


def test_a_closed_port_is_a_timeout_within_the_timeout():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=f"could not reach the coordinator 127.0.0.1:{port}"):
        distributed.initialize(f"127.0.0.1:{port}", 2, 1, timeout=1)
    assert time.monotonic() - t0 < 5


def test_a_grpc_greeting_passes_the_check():
    """What a gRPC server opens with (an HTTP/2 SETTINGS frame on stream 0) is accepted."""
    port, close = _server(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    try:
        distributed._probe_coordinator("127.0.0.1", port, f"127.0.0.1:{port}", 5, 1, 2)
    finally:
        close()
