"""Who may do what on the server: the token check and the scope checks, as FastAPI dependencies.

The tokens file is reread when it changes (``add-token`` or ``revoke-token`` on a running
server), and expiry is checked on every request, so an expired or revoked token gets 401 at
its next request, with no restart. A file that turns invalid while the server runs refuses
every token (it fails closed) and says why in the server's log.

- a missing, unknown, expired or revoked token: 401 (the detail names an expired or revoked
  token's state — only its holder can see that);
- a valid token without the scope a route needs: 403;
- a job that is not the token's own (and the token is not ``admin``): 404, exactly as for a
  job that does not exist, so job ids of others do not leak.
"""

# no "from __future__ import annotations": FastAPI reads the dependencies' annotations
import logging
import threading
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from medview.server.auth import Principal, TokenBook

__all__ = ["Access", "TokenFile"]

log = logging.getLogger("medview.server")


class TokenFile:
    """The token book, reloaded when its file changes (size, inode or mtime in ns)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp: tuple | None = None
        self._book = TokenBook({})
        self._lock = threading.Lock()

    def book(self) -> TokenBook:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._book = TokenBook.load(self.path) if stamp else TokenBook({})
                except (ValueError, OSError) as exc:
                    log.error("%s; every token is refused until it is fixed", exc)
                    self._book = TokenBook({})
                self._stamp = stamp
            return self._book


class Access:
    """The dependencies the routes declare: ``Access(tokens).any`` etc.

    Each sets ``request.state.who`` (the token's name, for the request and audit logs) and,
    when it refuses, ``request.state.refusal`` (why, for the audit log).
    """

    def __init__(self, tokens: TokenFile):
        self.tokens = tokens

        def principal(request: Request,
                      authorization: Annotated[str | None, Header()] = None) -> Principal:
            token = None
            if authorization and authorization[:7].lower() == "bearer ":
                token = authorization[7:].strip()
            who, name, why = self.tokens.book().check(token)
            request.state.who = name
            if who is None:
                request.state.refusal = why
                detail = why if name != "-" else "missing or invalid token"
                raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})
            return who

        def scoped(*allowed: str):
            def check(request: Request,
                      who: Annotated[Principal, Depends(principal)]) -> Principal:
                if not any(who.can(s) for s in allowed):
                    why = (f"token {who.name!r} may not do this (it needs the scope "
                           f"{' or '.join(allowed)}; it has {', '.join(who.scopes)})")
                    request.state.refusal = why
                    raise HTTPException(403, why)
                return who
            return check

        #: any valid token
        self.any = Annotated[Principal, Depends(principal)]
        self.submit = Annotated[Principal, Depends(scoped("submit"))]
        #: its own jobs (``read``), or every job (``admin``)
        self.see = Annotated[Principal, Depends(scoped("read", "admin"))]
        #: its own jobs only (download, acknowledge)
        self.read = Annotated[Principal, Depends(scoped("read"))]
        self.admin = Annotated[Principal, Depends(scoped("admin"))]


def owner_filter(who: Principal) -> str | None:
    """The owner a job must have for ``who`` to see it (None: any, for ``admin``)."""
    return None if who.can("admin") else who.name
