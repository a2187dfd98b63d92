"""Run the server under uvicorn with TLS."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from medview.server.app import ServerSettings, create_app

__all__ = ["default_state_dir", "serve"]


def default_state_dir() -> Path:
    """``$MEDVIEW_DATA_DIR/server`` or the user data folder's ``server``."""
    from medview.remote.config import data_dir

    return data_dir() / "server"


def serve(settings: ServerSettings, *, host: str, port: int, cert: str | Path,
          key: str | Path) -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop it cleanly).

    Raises
    ------
    FileNotFoundError
        If the certificate or key does not exist.
    """
    import uvicorn

    for what, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"TLS {what} {path} does not exist (make a test pair with "
                                    "'medview serve make-cert DIR')")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, ssl_certfile=str(cert), ssl_keyfile=str(key),
                access_log=False, log_level="info", timeout_graceful_shutdown=5)
