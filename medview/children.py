"""Child processes that die with their parent.

medview starts worker processes (the index pool, the server's job pool, decoder sandboxes).
When the parent is killed with SIGKILL it has no chance to stop them, and a spawn-context
pool worker or a resource tracker then lives on forever. Every such child calls
:func:`die_with_parent` first thing (as the pool's ``initializer``): a daemon thread watches
the parent's pid and ends the child when the parent is gone.

Linux's ``PR_SET_PDEATHSIG`` is not used on purpose: it fires when the *thread* that started
the child exits, and pools are started from short-lived worker threads (QThreadPool, the
server's request threads), which would kill healthy workers.
"""

from __future__ import annotations

import os
import threading
import time


def die_with_parent(parent_pid: int | None = None, *, poll_s: float = 0.5) -> None:
    """Make this process exit (status 1) within `poll_s` seconds of its parent's death.

    Parameters
    ----------
    parent_pid
        The pid that must stay alive (default: the current parent). If it is already gone
        when this is called (the parent died between the start and this call), exit at once.
    poll_s
        How often the parent is checked, in seconds.
    """
    expected = os.getppid() if parent_pid is None else parent_pid
    if os.getppid() != expected:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != expected:
                os._exit(1)

    threading.Thread(target=watch, name="medview-parent-watch", daemon=True).start()
