"""Errors of the PACS client: each message names the node and what failed."""

from __future__ import annotations

__all__ = ["AssociationRejected", "AuthenticationFailed", "NodeUnreachable", "PacsError"]


class PacsError(Exception):
    """A PACS operation failed; ``str(exc)`` is a message for the user."""


class NodeUnreachable(PacsError):
    """No connection: refused, timed out, unknown host, TLS failure."""


class AssociationRejected(PacsError):
    """The peer rejected the DICOM association (``reason`` says why) or aborted it."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


class AuthenticationFailed(PacsError):
    """The DICOMweb server answered 401/403."""
