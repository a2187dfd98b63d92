"""The HTTP client of ``medview serve`` (httpx): TLS verified, retries with backoff.

TLS verification is always on: the system's CAs, or the endpoint's CA bundle (a self-signed
server's certificate). There is no switch to turn it off. Network errors (refused, reset,
timed out) are retried with exponential backoff and end in :class:`RemoteUnavailable` with
what was tried; a job submission is safe to retry because it carries an idempotency key.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from medview.remote.errors import RemoteAuthError, RemoteError, RemoteUnavailable
from medview.remote.schemas import API, JobStatus, ServerInfo

__all__ = ["RemoteAuthError", "RemoteClient", "RemoteError", "RemoteUnavailable"]


class RemoteClient:
    """One endpoint: ``url``, bearer ``token``, optional ``ca_bundle`` (PEM file).

    Parameters
    ----------
    retries : int
        Attempts after the first on a network error (backoff 0.5 s, doubling, ≤ 8 s).
    timeout_s : float
        Connect/read timeout of one request.
    http : httpx.Client, optional
        A ready client to send through instead (tests pass FastAPI's TestClient).
    """

    def __init__(self, url: str, token: str, *, ca_bundle: str | None = None,
                 name: str = "", retries: int = 4, timeout_s: float = 60.0,
                 backoff_s: float = 0.5, http=None):
        import ssl

        import httpx

        self.url = url.rstrip("/")
        self.name = name or self.url
        self.retries = retries
        self.backoff_s = backoff_s
        #: result bodies over http.client (:mod:`medview.remote.direct`), or None: httpx
        self._direct = None
        if http is not None:
            self._http = http
            self._http.headers["Authorization"] = f"Bearer {token}"
            return
        ctx = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else \
            ssl.create_default_context()
        auth = {"Authorization": f"Bearer {token}"}
        self._http = httpx.Client(base_url=self.url, verify=ctx, headers=auth,
                                  timeout=httpx.Timeout(timeout_s, connect=10.0))
        from medview.remote.direct import DirectGet, direct_usable

        if direct_usable(self.url):
            self._direct = DirectGet(self.url, context=ctx, headers=auth, timeout_s=timeout_s)

    @classmethod
    def for_endpoint(cls, name: str, **kw) -> RemoteClient:
        """A client for a configured endpoint (URL, CA bundle, token from the keyring)."""
        from medview.remote.config import get_endpoint, get_token

        ep = get_endpoint(name)
        return cls(ep.url, get_token(name), ca_bundle=ep.ca_bundle, name=name, **kw)

    def close(self) -> None:
        self._http.close()
        if self._direct is not None:
            self._direct.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, content_factory: Callable[[], Any] | None
                 = None, headers: dict | None = None, ok: tuple[int, ...] = (200,),
                 parts: list | None = None):
        """``method path`` with retries; the body is ``parts`` (an upload: over http.client
        when this client made its own connection, else streamed by httpx) or what
        ``content_factory()`` gives."""
        import httpx

        delay = self.backoff_s
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                if parts is not None and self._direct is not None:
                    r = self._direct.post(path, parts, headers or {})
                else:
                    if parts is not None:
                        from medview.remote.wire import iter_chunks

                        content_factory = lambda: iter_chunks(parts)  # noqa: E731
                    content = content_factory() if content_factory else None
                    r = self._http.request(method, path, content=content, headers=headers)
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in \
                        str(exc):
                    raise RemoteError(f"{self.name}: the server's TLS certificate is not "
                                      f"trusted ({exc}); give its CA with --ca-bundle") from None
                last = exc
            else:
                if r.status_code in ok:
                    return r
                if r.status_code in (502, 503, 504):
                    last = RemoteError(f"HTTP {r.status_code}", status=r.status_code)
                else:
                    self._raise_for(r)
            if attempt < self.retries:
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise RemoteUnavailable(
            f"{self.name} ({self.url}) did not answer {method} {path} after "
            f"{self.retries + 1} attempts: {type(last).__name__}: {last}")

    def _raise_for(self, r) -> None:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        if r.status_code == 401:
            raise RemoteAuthError(f"{self.name}: the token was refused (401: {detail}); store "
                                  "a valid one with 'medview remote add'", status=401)
        if r.status_code == 403:
            raise RemoteAuthError(f"{self.name}: {detail} (403); ask the server's "
                                  "administrator for a token with that scope", status=403)
        if r.status_code == 413:
            raise RemoteError(f"{self.name}: the upload is too large for this server (413): "
                              f"{detail}", status=413)
        raise RemoteError(f"{self.name}: HTTP {r.status_code}: {detail}", status=r.status_code)

    # -- API -------------------------------------------------------------------------------
    def health(self) -> bool:
        return self._request("GET", "/health").json().get("status") == "ok"

    def info(self) -> ServerInfo:
        return ServerInfo.model_validate(self._request("GET", f"{API}/info").json())

    def submit(self, parts: Iterable[bytes | memoryview], *, idempotency_key: str) -> JobStatus:
        """Upload a job bundle (streamed: the parts as they are, no copy of the whole); the
        same key never makes a second job."""
        parts = list(parts)
        size = sum(len(p) for p in parts)
        headers = {"Idempotency-Key": idempotency_key, "Content-Length": str(size),
                   "Content-Type": "application/octet-stream"}
        r = self._request("POST", f"{API}/jobs", parts=parts, headers=headers, ok=(200, 201))
        return JobStatus.model_validate(r.json())

    def status(self, job_id: str, *, wait_s: float = 0.0, streaming: bool = False,
               ready_above: int | None = None) -> JobStatus:
        """The job's status; with ``wait_s`` the server answers as soon as the job ends or
        after ``wait_s`` seconds (a server without the feature answers at once); with
        ``streaming`` also as soon as its result can be downloaded while it is written, with
        ``ready_above`` as soon as more than that many bytes of it can."""
        path = f"{API}/jobs/{job_id}" + (f"?wait={wait_s:g}" if wait_s > 0 else "")
        if streaming and wait_s > 0:
            path += "&stream=true"
        if ready_above is not None and wait_s > 0:
            path += f"&ready_above={int(ready_above)}"
        return JobStatus.model_validate(self._request("GET", path).json())

    def jobs(self) -> list[JobStatus]:
        """Every job of this token, oldest first (one request for a whole batch)."""
        r = self._request("GET", f"{API}/jobs")
        return [JobStatus.model_validate(j) for j in r.json()]

    def cancel(self, job_id: str) -> JobStatus:
        r = self._request("POST", f"{API}/jobs/{job_id}/cancel")
        return JobStatus.model_validate(r.json())

    def download(self, job_id: str) -> bytes:
        """The whole result in memory (small results; big ones: :meth:`download_to`)."""
        return self._request("GET", f"{API}/jobs/{job_id}/result").content

    def download_to(self, job_id: str, path: Path, *, chunk_bytes: int = 1 << 20) -> int:
        """Stream the result into ``path``; returns its size (see :meth:`download_result`)."""
        return self.download_result(job_id, path, chunk_bytes=chunk_bytes)

    @contextlib.contextmanager
    def _get_body(self, path: str, headers: dict, chunk_bytes: int):
        """``GET path`` → ``(response, pieces)``: the response's ``status_code`` and
        ``headers``, and an iterator over its body in pieces of at most ``chunk_bytes``
        (each valid until the next is taken). Over http.client when this client made its own
        connection (no proxy): the body is read into one reused buffer."""
        if self._direct is not None:
            with self._direct.stream(path, headers) as r:
                yield r, r.iter_into(bytearray(chunk_bytes))
        else:
            with self._http.stream("GET", path, headers=headers) as r:
                yield r, r.iter_bytes(chunk_bytes)

    def _error_from(self, r) -> None:
        """Raise the RemoteError for a result response that is not 200/206."""
        import httpx

        body = r.read()
        if r.status_code in (502, 503, 504):
            raise RemoteError(f"HTTP {r.status_code}", status=r.status_code)
        self._raise_for(httpx.Response(r.status_code, content=body,
                                       headers={"content-type":
                                                r.headers.get("content-type", "")}))

    def download_result(self, job_id: str, path: Path, *, chunk_bytes: int = 1 << 20) -> int:
        """Stream the result into ``path`` as it arrives; returns its size.

        Also while the server still writes it (``JobStatus.streaming``): the response has the
        full length and the bytes come as they are written. A connection that drops mid-way
        is resumed where it stopped (HTTP ``Range`` with ``If-Range``: the rest of the same
        attempt's bytes, or all of them anew when the job was run again meanwhile), with the
        same retries and backoff as every request, counted afresh after each advance. Bytes
        already in ``path`` (an earlier interrupted call) are kept and only the rest is
        fetched; the attempt they belong to is kept beside it (``path.etag``). Called again
        on a complete file it costs one request that confirms it is still the job's result.

        Raises
        ------
        RemoteUnavailable
            When the server stops answering for all the retries.
        RemoteError
            When the result is gone (410), not there (409: the attempt being written ended
            without a result; the job may go on) or longer than announced.
        """
        size = self._download(job_id, path, chunk_bytes, partial=False)
        assert size is not None
        return size

    def download_ready(self, job_id: str, path: Path, *, chunk_bytes: int = 1 << 20
                       ) -> int | None:
        """Like :meth:`download_result`, also while the chain still runs and the result's
        size is not known yet (``JobStatus.result_ready``: the outputs of the steps done so
        far): fetches what can be fetched now and returns the result's size once ``path``
        holds all of it, or None when more is still to come (wait for ``result_ready`` to
        grow, then call again)."""
        return self._download(job_id, path, chunk_bytes, partial=True)

    def _download(self, job_id: str, path: Path, chunk_bytes: int, *, partial: bool
                  ) -> int | None:
        import httpx

        url = f"{API}/jobs/{job_id}/result"
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tag_file = path.with_name(path.name + ".etag")
        etag = tag_file.read_text() if tag_file.is_file() else None
        delay = self.backoff_s
        last: Exception | None = None
        total: int | None = None
        failures = 0
        with open(path, "ab") as f:
            while True:
                have = f.tell()
                if total is not None and have >= total:
                    break
                # partial: always a range (a result of unknown size comes in ranges only)
                headers = {"Range": f"bytes={have}-"} if have or partial else {}
                if have and etag:
                    headers["If-Range"] = etag
                try:
                    with self._get_body(url, headers, chunk_bytes) as (r, pieces):
                        if r.status_code == 416:
                            r.read()
                            total = _range_total(r.headers.get("content-range"))
                            if total is None:  # its size is not known: nothing past here yet
                                if not partial:
                                    raise RemoteError(f"{self.name}: the result of job "
                                                      f"{job_id} is not finished", status=409)
                                if r.headers.get("etag") not in (etag, None):
                                    # another attempt, nothing of it yet: these bytes go
                                    etag = r.headers["etag"]
                                    tag_file.write_text(etag)
                                    if f.tell():
                                        f.seek(0)
                                        f.truncate()
                                return None
                            if total == have:
                                break
                            f.seek(0)
                            f.truncate()
                            total = None
                            continue
                        if r.status_code not in (200, 206):
                            self._error_from(r)
                        if r.headers.get("etag") != etag:
                            etag = r.headers.get("etag")
                            if etag:
                                tag_file.write_text(etag)
                            else:
                                tag_file.unlink(missing_ok=True)
                        end = None  # where this response ends
                        if r.status_code == 200:  # the whole file: start over
                            start = 0
                            total = int(r.headers.get("content-length", -1))
                        else:
                            start, end = _range_span(r.headers.get("content-range"))
                            total = _range_total(r.headers.get("content-range"))
                        if start != f.tell():
                            if start:  # never sent by the server: a range it was not asked
                                raise RemoteError(f"{self.name}: the server sent bytes from "
                                                  f"{start} of job {job_id}'s result; "
                                                  f"{f.tell()} were there")
                            # another attempt's bytes from the start (or the whole file):
                            # never truncate an empty file: ext4 then writes the whole
                            # download to disk when it is closed (its auto_da_alloc for a
                            # file rewritten after a truncate), 0.1-0.3 s for 300 MB
                            f.seek(0)
                            f.truncate()
                        # in pieces of chunk_bytes: TLS hands over 16 KiB at a time, and as
                        # many small writes cost more than joining them
                        pos = f.tell()
                        limit = total if total is not None and total >= 0 else end
                        for chunk in pieces:
                            f.write(chunk)
                            pos += len(chunk)
                            failures, delay = 0, self.backoff_s  # it advances
                            if limit is not None and 0 <= limit < pos:
                                raise RemoteError(f"{self.name}: the result of job {job_id} "
                                                  f"is longer than the {limit} bytes announced")
                        f.flush()
                        if total is None and end is not None:  # its size is not known yet
                            if f.tell() < end:  # the server closed early: resume
                                raise httpx.RemoteProtocolError("the download ended early")
                            continue  # the next range, or "nothing more yet" (416)
                        if total is None or total < 0:
                            total = f.tell()
                        if f.tell() < total:  # the server closed early: resume
                            raise httpx.RemoteProtocolError("the download ended early")
                except (httpx.TransportError, RemoteError) as exc:
                    if isinstance(exc, RemoteError) and exc.status not in (502, 503, 504):
                        raise
                    last = exc
                    failures += 1
                    if failures > self.retries:
                        raise RemoteUnavailable(
                            f"{self.name} ({self.url}): the download of job {job_id}'s result "
                            f"stopped at {f.tell()} of {total} bytes after {failures} "
                            f"attempts: {type(last).__name__}: {last}") from None
                    time.sleep(delay)
                    delay = min(delay * 2, 8.0)
            return f.tell()

    def acknowledge(self, job_id: str) -> JobStatus:
        r = self._request("DELETE", f"{API}/jobs/{job_id}/result")
        return JobStatus.model_validate(r.json())

    def wait(self, job_id: str, *, on_status: Callable[[JobStatus], None] | None = None,
             cancelled: Callable[[], bool] = lambda: False, poll_s: float = 0.1,
             max_poll_s: float = 0.5, streaming: bool = False,
             ready_above: int | None = None) -> JobStatus:
        """Poll until the job ends (with ``streaming``: or its result can be downloaded while
        it is written, or more than ``ready_above`` bytes of it); cancels it on the server
        when ``cancelled()`` turns true."""
        delay = poll_s
        sent_cancel = False
        while True:
            t0 = time.monotonic()
            # the server holds the answer until the job ends (at most max_poll_s): the end
            # is seen at once; progress and a cancel request every max_poll_s
            st = self.status(job_id, wait_s=max_poll_s, streaming=streaming,
                             ready_above=ready_above)
            if on_status is not None:
                on_status(st)
            if st.done or (streaming and st.streaming) or \
                    (ready_above is not None and st.result_ready > ready_above):
                return st
            if cancelled() and not sent_cancel:
                self.cancel(job_id)
                sent_cancel = True
            if time.monotonic() - t0 < poll_s:  # answered at once: an older server
                time.sleep(delay)
                delay = min(delay * 1.5, max_poll_s)


def _range_span(content_range: str | None) -> tuple[int, int | None]:
    """``(a, b + 1)`` of a ``Content-Range: bytes a-b/N`` (or ``/*``) header; ``(0, None)``
    for none."""
    if not content_range:
        return 0, None
    span = content_range.removeprefix("bytes").strip().split("/", 1)[0]
    first, _, last = span.partition("-")
    if not first.strip().isdigit():
        return 0, None
    return int(first), (int(last) + 1 if last.strip().isdigit() else None)


def _range_total(content_range: str | None) -> int | None:
    """The full size in a ``Content-Range: bytes a-b/N`` (or ``*/N``) header."""
    if not content_range or "/" not in content_range:
        return None
    tail = content_range.rsplit("/", 1)[1].strip()
    return int(tail) if tail.isdigit() else None
