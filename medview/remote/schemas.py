"""Job and server models as they travel in JSON (pydantic; the server's OpenAPI uses them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["API", "TERMINAL", "JobState", "JobStatus", "ServerInfo"]

API = "/api/v1"
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled", "delivered",
                   "expired"]
#: states after which the job never changes again (except succeeded → delivered/expired)
TERMINAL = ("succeeded", "failed", "cancelled", "delivered", "expired")


class ServerInfo(BaseModel):
    """``GET /api/v1/info``: what a client needs to know before it uploads."""

    version: str
    encodings: list[str] = Field(description="array encodings the server reads and writes")
    max_upload_bytes: int
    max_decoded_bytes: int | None = Field(
        None, description="largest total size the uploaded arrays may decode to (shape × "
                          "dtype); None from servers older than this field")
    retention_seconds: float
    executor: str = Field(description="'process pool (N workers)' or 'dask tcp://…'")
    steps: dict[str, int] = Field(description="step id → version this server runs")
    slots: int | None = Field(
        None, description="jobs the server runs at once (pool processes, Dask worker "
                          "threads); a batch client keeps this many plus one submitted")


class JobStatus(BaseModel):
    """One job as the client sees it; no patient data (the server never had any)."""

    id: str
    state: JobState
    created: float = Field(description="seconds since the epoch (UTC)")
    updated: float
    progress: float = Field(0.0, ge=0.0, le=1.0)
    message: str = ""
    step: int = Field(0, description="1-based index of the running step, 0 before the first")
    steps: int = Field(0, description="enabled steps in the chain")
    attempts: int = 0
    error: str = ""
    input_bytes: int = 0
    result_bytes: int = 0
    worker: str = Field("", description="where the job runs (host:pid or the Dask worker)")
    streaming: bool = Field(
        False, description="the result is being written and can already be downloaded "
                           "(GET …/result sends it as it grows; result_bytes is its size)")
    result_ready: int = Field(
        0, description="bytes of the result that can be downloaded already while the chain "
                       "still runs and its size is not known (GET …/result with Range: "
                       "bytes=N- sends N up to there); its size once streaming")

    @property
    def done(self) -> bool:
        return self.state in TERMINAL
