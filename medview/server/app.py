"""The FastAPI application of ``medview serve``: thin routes over :class:`JobManager`.

Every route but ``/health`` needs ``Authorization: Bearer <token>``; a missing, unknown, expired
or revoked token gets 401, a token without the route's scope 403, another token's job 404
(:mod:`medview.server.access`). The API documentation (``/docs``, ``/redoc``,
``/openapi.json``) too, unless the server was started with ``public_docs``. Every request is
logged (who, method, path, bytes received and sent, status, time) as a JSON line in
``<state>/requests.log`` and on the ``medview.server.access`` logger
(:mod:`medview.server.requestlog`); every job action and refusal also in ``<state>/audit.log``
(:mod:`medview.server.audit_log`). The server never receives patient data, and the logs hold
none.

Uploads are bounded twice: by the bytes on the wire (``max_upload_bytes``) and by what their
arrays decode to (``max_decoded_bytes``, from the shapes and dtypes the bundle header declares,
checked before anything is decompressed); the header's JSON by size (:data:`MAX_JSON_BYTES`)
and depth (:data:`~medview.remote.wire.MAX_JSON_DEPTH`). Over a limit → 413, malformed → 422.
"""

# no "from __future__ import annotations": FastAPI reads the routes' annotations at run time
import asyncio
import json
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from medview import __version__
from medview.remote.schemas import API, JobStatus, ServerInfo
from medview.remote.wire import WireError, available_encodings, declared_nbytes, read_header
from medview.server.access import Access, TokenFile, owner_filter
from medview.server.audit_log import AuditLog
from medview.server.auth import Principal
from medview.server.jobs import JobManager
from medview.server.requestlog import RequestLog
from medview.server.store import JobStore
from medview.server.streams import ResultStream, parse_range, read_growing
from medview.server.uploads import receive_upload
from medview.server.waiters import Waiters
from medview.server.worker import unsent_file_params

__all__ = ["MAX_JSON_BYTES", "MAX_WAIT_S", "ServerSettings", "create_app"]

#: the longest a status request waits for its job to end (``?wait=``)
MAX_WAIT_S = 10.0
#: the largest bundle header (JSON: the chain, geometry, de-identified metadata) accepted
MAX_JSON_BYTES = 8 << 20


@dataclass
class ServerSettings:
    """What ``medview serve`` was started with."""

    state_dir: Path
    tokens_path: Path
    max_upload_bytes: int = 2 << 30
    #: the most the uploaded arrays may decode to (shape × dtype); None = max_upload_bytes
    max_decoded_bytes: int | None = None
    #: serve /docs, /redoc and /openapi.json without a token
    public_docs: bool = False
    retention_s: float = 24 * 3600.0
    workers: int = 1
    dask: str | None = None
    #: fetch every result from the Dask worker in chunks, even one that sees the job folder
    dask_fetch: bool = False


def _make_executor(settings: ServerSettings):
    from medview.server.executors import DaskExecutor, PoolExecutor

    if settings.dask:
        return DaskExecutor(settings.dask, fetch_always=settings.dask_fetch)
    return PoolExecutor(settings.workers)


def create_app(settings: ServerSettings, *, executor=None) -> FastAPI:
    """The application; jobs start running when its lifespan starts."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(settings.state_dir)
    manager = JobManager(store, executor or _make_executor(settings),
                         retention_s=settings.retention_s, owns_executor=executor is None)
    access = Access(TokenFile(Path(settings.tokens_path)))
    request_log = settings.state_dir / "requests.log"
    uploads = settings.state_dir / "uploads"
    uploads.mkdir(exist_ok=True)
    for stale in uploads.glob("*.part"):  # cut off when a previous server was killed
        stale.unlink(missing_ok=True)

    waiters = Waiters()
    store.on_change = waiters.notify

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        waiters.bind(asyncio.get_running_loop())
        # the step registry (SimpleITK, OpenCV, scikit-learn …) loads now, behind the start:
        # the first job's upload check and /info needed it, 0.17 s of a first job on Dask
        threading.Thread(target=_load_registry, name="medview-registry", daemon=True).start()
        manager.start()
        try:
            yield
        finally:
            waiters.bind(None)
            manager.shutdown()
            store.close()

    decoded_limit = settings.max_decoded_bytes or settings.max_upload_bytes
    docs = {} if settings.public_docs else {"docs_url": None, "redoc_url": None,
                                             "openapi_url": None}
    app = FastAPI(title="medview offload server", version=__version__, lifespan=lifespan,
                  description="Runs medview processing chains on de-identified volumes.",
                  **docs)
    app.state.manager = manager
    app.state.settings = settings
    app.add_middleware(AuditLog, path=settings.state_dir / "audit.log")
    app.add_middleware(RequestLog, path=request_log)
    Who, CanSubmit, CanSee, CanRead, Admin = (access.any, access.submit, access.see,
                                              access.read, access.admin)

    def owned(job_id: str, who: Principal, *, admin_too: bool = True) -> JobStatus:
        """The job if ``who`` may see it (its own; any for an admin when ``admin_too``);
        404 otherwise, the same answer as for a job that does not exist."""
        status = store.get(job_id, owner=owner_filter(who) if admin_too else who.name)
        if status is None:
            raise HTTPException(404, f"no job {job_id}")
        return with_stream(status)

    def owned_result(job_id: str, who: Principal) -> JobStatus:
        # a result is for the token that submitted the job, not for an admin
        return owned(job_id, who, admin_too=False)

    def with_stream(status: JobStatus) -> JobStatus:
        s = manager.stream(status.id)
        if s is not None and s.state != "failed" and not status.done:
            if s.size is None:  # outputs written as the chain runs: the size comes at its end
                return status.model_copy(update={"result_ready": s.ready})
            return status.model_copy(update={"streaming": True, "result_bytes": s.size,
                                             "result_ready": s.size})
        return status

    if not settings.public_docs:
        @app.get("/openapi.json", include_in_schema=False)
        def openapi(who: Who) -> JSONResponse:
            return JSONResponse(app.openapi())

        @app.get("/docs", include_in_schema=False)
        def swagger(who: Who):
            return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

        @app.get("/redoc", include_in_schema=False)
        def redoc(who: Who):
            return get_redoc_html(openapi_url="/openapi.json", title=app.title)

    @app.get("/health", tags=["server"])
    def health() -> dict:
        """Liveness: 200 when the server answers (no token needed, no details)."""
        return {"status": "ok"}

    @app.get(f"{API}/info", tags=["server"])
    def info(who: Who) -> ServerInfo:
        from medview.pipeline.registry import all_steps

        return ServerInfo(version=__version__, encodings=available_encodings(),
                          max_upload_bytes=settings.max_upload_bytes,
                          max_decoded_bytes=decoded_limit,
                          retention_seconds=settings.retention_s,
                          executor=manager.executor.name,
                          slots=getattr(manager.executor, "slots", None),
                          steps={s.id: s.version for s in all_steps()})

    @app.get(f"{API}/steps", tags=["server"])
    def steps(who: Who) -> list[dict]:
        """Every step this server runs, with the JSON schema of its parameters."""
        from medview.pipeline.registry import all_steps

        return [s.describe() for s in all_steps()]

    @app.post(f"{API}/jobs", status_code=201, tags=["jobs"],
              responses={200: {"description": "a job with this idempotency key exists"},
                         413: {"description": "the upload is larger than the server accepts"},
                         422: {"description": "the bundle or the chain is invalid"}})
    async def submit(request: Request, who: CanSubmit,
                     idempotency_key: Annotated[str | None, Header()] = None):
        """Submit a job: the body is a medview bundle (chain + de-identified volumes)."""
        limit = settings.max_upload_bytes
        declared = int(request.headers.get("content-length") or 0)
        if declared > limit:
            raise HTTPException(413, f"upload of {declared} bytes exceeds the limit of "
                                     f"{limit} bytes")
        fd, tmp_name = await run_in_threadpool(tempfile.mkstemp, dir=uploads, suffix=".part")
        tmp = Path(tmp_name)
        try:
            await receive_upload(request, fd, limit)
            steps_n = await run_in_threadpool(_check_upload, tmp, decoded_limit)
            status, created = await run_in_threadpool(
                manager.submit, owner=who.name, idem_key=idempotency_key, upload=tmp,
                steps=steps_n)
        finally:
            tmp.unlink(missing_ok=True)
        request.state.job_id = status.id  # for the audit log
        return JSONResponse(status.model_dump(), status_code=201 if created else 200)

    @app.get(f"{API}/jobs", tags=["jobs"])
    def list_jobs(who: CanSee) -> list[JobStatus]:
        """The token's own jobs; every job for an ``admin`` token."""
        return [with_stream(s) for s in (store.get(j) for j in store.list(owner=owner_filter(who)))
                if s is not None]

    @app.get(f"{API}/jobs/{{job_id}}", tags=["jobs"])
    async def job_status(job_id: str, who: CanSee, wait: float = 0.0,
                         stream: bool = False, ready_above: int = -1) -> JobStatus:
        """State, progress of the running step, error. With ``wait`` (seconds, at most
        :data:`MAX_WAIT_S`) the answer comes as soon as the job ends, or after ``wait``: a
        client learns at once that its result is ready without polling fast. With ``stream``
        also as soon as the result can be downloaded while it is written (``streaming``), and
        with ``ready_above`` as soon as more than that many bytes of it can (``result_ready``:
        the outputs of the steps done so far)."""
        end = time.monotonic() + min(max(wait, 0.0), MAX_WAIT_S)
        with waiters.watch(job_id) as changed:  # woken by the job's changes
            while True:
                changed.clear()
                status = await run_in_threadpool(owned, job_id, who)
                left = end - time.monotonic()
                if status.done or (stream and status.streaming) or left <= 0 or \
                        (ready_above >= 0 and status.result_ready > ready_above):
                    return status
                await waiters.wait(changed, left)

    @app.post(f"{API}/jobs/{{job_id}}/cancel", tags=["jobs"])
    def cancel(job_id: str, who: CanSee) -> JobStatus:
        owned(job_id, who)
        return manager.cancel(job_id)

    @app.get(f"{API}/jobs/{{job_id}}/result", tags=["jobs"],
             responses={200: {"content": {"application/octet-stream": {}},
                              "description": "the result bundle"},
                        206: {"description": "the part asked for with Range"},
                        409: {"description": "not finished, and not being written"},
                        410: {"description": "already delivered or expired"}})
    async def result(job_id: str, who: CanRead, request: Request):
        """The result bundle, also while it is being written (``streaming``): the response
        announces its full length and sends the bytes as they are written. ``Range:
        bytes=N-`` with ``If-Range: <ETag>`` resumes a cut download of the same attempt."""
        status = await run_in_threadpool(owned_result, job_id, who)
        if status.state in ("delivered", "expired"):
            raise HTTPException(410, f"the result of job {job_id} was {status.state} and "
                                     "deleted")
        s = manager.stream(job_id) if not status.done else None
        if s is None or s.state == "failed":
            if status.state != "succeeded":  # it may have just succeeded: look once more
                status = await run_in_threadpool(owned_result, job_id, who)
            if status.state != "succeeded":
                raise HTTPException(409, f"job {job_id} is {status.state}"
                                    + (f": {status.error}" if status.error else ""))
            path = manager.result_path(job_id)
            try:
                size = (await run_in_threadpool(path.stat)).st_size
            except FileNotFoundError:
                raise HTTPException(410, f"the result of job {job_id} was delivered and "
                                         "deleted") from None
            s = ResultStream(job_id, path, size, status.attempts)
            s.state = "complete"
        return _range_response(s, request)

    @app.delete(f"{API}/jobs/{{job_id}}/result", tags=["jobs"])
    def acknowledge(job_id: str, who: CanRead) -> JobStatus:
        """The client has the result: the server deletes it."""
        owned(job_id, who, admin_too=False)
        return manager.acknowledge(job_id)

    @app.get(f"{API}/admin/status", tags=["server"])
    def admin_status(who: Admin) -> dict:
        """The server's state for an ``admin`` token: executor, jobs by state and by token,
        the tokens (names, scopes, expiry; never a hash)."""
        from medview.server.admin import server_status

        return server_status(store, manager.executor, settings)

    return app


def _load_registry() -> None:
    import logging

    from medview.pipeline.registry import all_steps

    try:
        all_steps()
    except Exception:  # the first request that needs it says so again, to its client
        logging.getLogger("medview.server").exception("the step registry did not load")


def _range_response(s: ResultStream, request: Request) -> Response:
    """``s`` whole (200), the range asked for (206) or 416; the bytes as they are written."""
    headers = {"ETag": s.etag, "Accept-Ranges": "bytes"}
    if s.size is None:
        return _ready_response(s, request, headers)
    span = parse_range(request.headers.get("range"), s.size)
    if span is not None and request.headers.get("if-range", s.etag) != s.etag:
        span = None  # another attempt's bytes: all of this one's
    if span is None:
        start, end, code = 0, s.size, 200
    elif span[0] >= s.size:
        return Response(status_code=416, headers={**headers,
                                                  "Content-Range": f"bytes */{s.size}"})
    else:
        (start, end), code = span, 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{s.size}"
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(read_growing(s, start, end), status_code=code, headers=headers,
                             media_type="application/octet-stream")


def _ready_response(s: ResultStream, request: Request, headers: dict) -> Response:
    """The part of a result of unknown size that is written or being written: ``Range:
    bytes=N-`` gets ``N`` up to ``s.ready`` (206, ``Content-Range: bytes N-M/*``), or 416
    (``bytes */*``) when nothing past ``N`` is there yet; without a range, 409 (the whole
    result needs its size). Another attempt's ``If-Range`` gets this attempt's from 0."""
    ready = s.ready
    asked = request.headers.get("range") or ""
    first, _, last = asked[6:].partition("-") if asked.startswith("bytes=") else ("", "", "")
    first, last = first.strip(), last.strip()
    if not first.isdigit() or (last and not last.isdigit()):
        raise HTTPException(409, f"the result of job {s.job_id} is being written and its size "
                                 f"is not known yet ({ready} bytes so far): ask with Range: "
                                 "bytes=N-")
    same = request.headers.get("if-range", s.etag) == s.etag
    start = int(first) if same else 0
    end = min(ready, int(last) + 1) if last and same else ready
    if start >= end:
        return Response(status_code=416, headers={**headers, "Content-Range": "bytes */*"})
    headers["Content-Range"] = f"bytes {start}-{end - 1}/*"
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(read_growing(s, start, end), status_code=206, headers=headers,
                             media_type="application/octet-stream")


def _check_upload(path: Path, decoded_limit: int) -> int:
    """The number of enabled steps of the chain in the uploaded bundle.

    413 when the header or the arrays it declares (shape × dtype) exceed the limits, 422 when
    the bundle or the chain is invalid. Only the header is read: nothing is decompressed.
    """
    import struct

    from medview.pipeline.chain import Chain, ChainError

    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) != 12:
            raise HTTPException(422, "invalid job: not a medview bundle: too short")
        magic, hlen = struct.unpack("<4sQ", head)
        if magic == b"MVB1" and hlen > MAX_JSON_BYTES:
            raise HTTPException(413, f"bundle header of {hlen} bytes exceeds the limit of "
                                     f"{MAX_JSON_BYTES} bytes")
        try:
            header, _ = read_header(head + f.read(min(hlen, MAX_JSON_BYTES)),
                                    max_bytes=MAX_JSON_BYTES)
            decoded = declared_nbytes(header)
            if decoded > decoded_limit:
                raise HTTPException(413, f"the job's arrays decode to {decoded} bytes, more "
                                         f"than the limit of {decoded_limit} bytes "
                                         "(--max-decoded-mb)")
            meta = header.get("meta") or {}
            if not isinstance(meta, dict):
                raise WireError("the bundle's meta must be an object")
            chain = meta.get("chain")
            unsent = unsent_file_params(chain if isinstance(chain, dict) else {},
                                        list(meta.get("file_params") or []))
            if unsent:
                raise HTTPException(422, f"invalid job: {'; '.join(unsent)} names a file that "
                                         "was not sent with the job (the server opens no path "
                                         "a client names)")
            steps = [s for s in Chain.from_dict(_with_placeholder_files(header, chain)).steps
                     if s.enabled]
        except (WireError, ChainError) as exc:
            raise HTTPException(422, f"invalid job: {exc}") from None
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # a header of the right shape with values of the wrong types
            raise HTTPException(422, f"invalid job: malformed header "
                                     f"({type(exc).__name__}: {exc})") from None
    return len(steps)


def _with_placeholder_files(header: dict, chain):
    """The chain with file parameters pointing at a placeholder, for validation only."""
    meta = header.get("meta") or {}
    rewrites = meta.get("file_params") or []
    if not rewrites or not isinstance(chain, dict):
        return chain
    chain = json.loads(json.dumps(chain))
    for rw in rewrites:
        try:
            chain["steps"][int(rw["step"])]["params"][str(rw["param"])] = "uploaded-file"
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    return chain
