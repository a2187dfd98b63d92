"""DICOMweb clients (dicomweb-client on a requests session) with errors that say what failed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from medview.pacs.errors import AuthenticationFailed, NodeUnreachable, PacsError
from medview.pacs.nodes import WebNode

__all__ = ["web_client", "web_errors"]

# requests percent-encodes every query value, and some servers (Orthanc 1.10) compare the
# encoded text, so a DICOM wildcard '*' or '?' would match nothing; these stay literal.
_LITERAL = {"%2A": "*", "%3F": "?", "%2a": "*", "%3f": "?"}


def _session(node: WebNode):
    import requests

    class _Session(requests.Session):
        def send(self, request, **kwargs):
            if request.url and "?" in request.url:
                base, _, query = request.url.partition("?")
                for enc, lit in _LITERAL.items():
                    query = query.replace(enc, lit)
                request.url = f"{base}?{query}"
            kwargs.setdefault("timeout", node.timeout_s)
            return super().send(request, **kwargs)

    s = _Session()
    s.verify = node.ca_bundle or True  # True = the system CAs (certifi)
    if node.auth == "basic":
        s.auth = (node.username, node.secret())
    elif node.auth == "bearer":
        s.headers["Authorization"] = f"Bearer {node.secret()}"
    return s


def web_client(node: WebNode, *, chunk_size: int | None = None):
    """A ``dicomweb_client.DICOMwebClient`` for ``node`` (TLS verified, credentials set).

    ``chunk_size``: a STOW-RS body larger than this goes with chunked transfer encoding in
    chunks of this size (dicomweb-client's default, 1 MB, makes Orthanc take about twice as
    long for a body of many instances as for the same bytes sent whole).
    """
    import weakref

    from dicomweb_client.api import DICOMwebClient

    session = _session(node)
    extra = {"chunk_size": chunk_size} if chunk_size else {}
    client = DICOMwebClient(node.url, session=session, timeout=node.timeout_s, **extra)
    # its pooled connections close with the client (the moment the last reference goes),
    # not whenever the garbage collector meets an open socket
    weakref.finalize(client, session.close)
    # its default retries every failure (a refused connection too) with back-off for ~30 s;
    # medview reports at once and resumes on the user's request instead
    client.set_http_retry_params(retry=False)
    return client


@contextlib.contextmanager
def web_errors(node: WebNode, what: str) -> Iterator[None]:
    """Turn requests' exceptions into PacsErrors naming ``node``, its URL and ``what``."""
    import requests

    where = f"{node.name} ({node.url})"
    try:
        yield
    except requests.HTTPError as exc:
        if exc.response is not None:
            exc.response.close()  # a streamed response keeps its socket until closed
        code = exc.response.status_code if exc.response is not None else 0
        if code in (401, 403):
            raise AuthenticationFailed(
                f"{where}: {what}: HTTP {code} "
                + ("unauthorized: wrong or missing user name/password or token (run 'medview "
                   f"pacs add {node.name} ...' again)" if code == 401 else "forbidden")) from None
        reason = exc.response.reason if exc.response is not None else ""
        raise PacsError(f"{where}: {what}: HTTP {code} {reason}".rstrip()) from None
    except requests.exceptions.SSLError as exc:
        raise NodeUnreachable(f"{where}: TLS failed ({exc}); give the server's CA with "
                              "--ca-bundle") from None
    except requests.exceptions.ConnectTimeout:
        raise NodeUnreachable(f"{where}: no answer within {node.timeout_s:g} s (timeout)") \
            from None
    except requests.exceptions.ConnectionError as exc:
        text = str(exc)
        why = "connection refused" if "refused" in text.lower() else f"cannot connect ({text})"
        raise NodeUnreachable(f"{where}: {why}") from None
    except requests.exceptions.Timeout:
        raise NodeUnreachable(f"{where}: {what}: no answer within {node.timeout_s:g} s") \
            from None
    except requests.exceptions.RequestException as exc:  # e.g. a response cut off
        raise NodeUnreachable(f"{where}: {what}: the transfer broke ({exc})") from None
