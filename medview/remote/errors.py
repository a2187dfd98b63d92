"""The offload client's errors (a module of their own: the CLI imports them cheaply)."""

from __future__ import annotations

__all__ = ["RemoteAuthError", "RemoteError", "RemoteUnavailable"]


class RemoteError(RuntimeError):
    """The endpoint answered with an error (bad input, job failed, result gone …)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class RemoteAuthError(RemoteError):
    """401: the token is missing or wrong."""


class RemoteUnavailable(RemoteError):
    """The endpoint could not be reached after the retries."""
