"""An answer to an upload cut short is a network error (retried with the same idempotency
key), never a status read from half a body: a real HTTP server on 127.0.0.1 that dies
mid-answer once, as a killed ``medview serve`` does."""

from __future__ import annotations

import json
import socket
import threading

from medview.remote.client import RemoteClient

STATUS = {"id": "0" * 32, "state": "queued", "progress": 0.0, "message": "", "error": "",
          "created": 0.0, "updated": 0.0, "steps": 1, "step": 0, "attempts": 0}


class DyingServer:
    """Answers each POST after reading its body; the first answer stops mid-body."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.posts: list[tuple[str, int]] = []  # (idempotency key, body bytes)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as f:  # both closed: the connection ends
                head = {}
                f.readline()
                while (line := f.readline().strip()):
                    k, _, v = line.decode().partition(":")
                    head[k.strip().lower()] = v.strip()
                body = f.read(int(head["content-length"]))
                self.posts.append((head["idempotency-key"], len(body)))
                answer = json.dumps(STATUS).encode()
                if len(self.posts) == 1:  # killed after half the answer
                    conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n" % len(answer) + answer[:20])
                    continue
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(answer)
                             + answer)

    def close(self) -> None:
        self.listener.close()


def test_an_answer_cut_short_is_retried_with_the_same_key():
    server = DyingServer()
    try:
        with RemoteClient(f"http://127.0.0.1:{server.port}", "t", retries=2,
                          backoff_s=0.01) as c:
            assert c._direct is not None  # the upload goes over http.client
            st = c.submit([b"x" * 1000, memoryview(b"y" * 500)], idempotency_key="key-1")
    finally:
        server.close()
    assert st.id == STATUS["id"]
    assert server.posts == [("key-1", 1500), ("key-1", 1500)]
