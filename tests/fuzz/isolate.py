"""One case per forked child, under a wall-time and a memory limit; at most N at a time.

The parent imports the tools once; each case forks (copy-on-write, a few ms), sets
``RLIMIT_AS`` to the parent's address space plus the memory limit, redirects its output to a
log file, runs a function and writes what it returns (or the exception that escaped it) as
JSON. The parent waits on a pidfd with the case's deadline, kills the child's process group
when it passes, and keeps the child's own peak RSS from ``os.wait4``.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

GIB = 1 << 30


@dataclass
class Job:
    """A function to run in a child: ``fn(*args)`` returns a JSON-able dict."""

    key: tuple
    fn: Callable[..., dict]
    args: tuple = ()
    timeout_s: float = 15.0
    mem_bytes: int = 2 * GIB
    workdir: Path | None = None


@dataclass
class Outcome:
    """What happened to a job's child."""

    key: tuple
    status: str  # "returned", "raised", "signal", "timeout", "died" (exit without a result)
    seconds: float
    peak_rss_mb: float
    signal: int | None = None
    exit_code: int | None = None
    result: dict = field(default_factory=dict)
    log_tail: str = ""


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _child(job: Job, result_path: Path, log_path: Path, parent: int) -> None:
    code = 3
    try:
        os.setpgid(0, 0)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
        import faulthandler  # a crash's stack goes to the run's log, not pytest's stderr

        faulthandler.enable(file=sys.stderr)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        limit = _address_space() + job.mem_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        import warnings

        from medview.children import die_with_parent

        warnings.resetwarnings()
        warnings.simplefilter("ignore")  # as in production: warnings are not errors there
        die_with_parent(parent)
        try:
            out = {"returned": job.fn(*job.args)}
            code = 0
        except BaseException as exc:  # the point of the child: report whatever escaped
            kind = type(exc)
            out = {"raised": {"type": f"{kind.__module__}.{kind.__qualname__}",
                              "mro": [c.__name__ for c in kind.__mro__],
                              "message": str(exc)[:2000],
                              "traceback": traceback.format_exc()[-6000:]}}
        try:
            text = json.dumps(out, default=str)
        except (TypeError, ValueError) as exc:
            text = json.dumps({"raised": {"type": "harness.unserialisable", "mro": [],
                                          "message": str(exc), "traceback": ""}})
        result_path.write_text(text)
    except BaseException:
        code = 4
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _start(job: Job, n: int, scratch: Path):
    result_path = scratch / f"r{n}.json"
    log_path = scratch / f"r{n}.log"
    for p in (result_path, log_path):
        p.unlink(missing_ok=True)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _child(job, result_path, log_path, parent)
    return pid, os.pidfd_open(pid), time.monotonic(), result_path, log_path


def _finish(job: Job, pid: int, started: float, result_path: Path, log_path: Path,
            timed_out: bool) -> Outcome:
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - started
    rss = usage.ru_maxrss / 1024.0
    tail = log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""
    if not timed_out:  # the child's own children (dcm2niix) left with it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    out = Outcome(job.key, "died", seconds, rss, log_tail=tail)
    if timed_out:
        out.status = "timeout"
    elif os.WIFSIGNALED(status):
        out.status, out.signal = "signal", os.WTERMSIG(status)
    else:
        out.exit_code = os.WEXITSTATUS(status)
        if result_path.exists():
            data = json.loads(result_path.read_text())
            if "returned" in data:
                out.status, out.result = "returned", data["returned"] or {}
            else:
                out.status, out.result = "raised", data["raised"]
    return out


def run_jobs(jobs: Iterable, scratch: Path, *, parallel: int = 2,
             wait: object = None) -> Iterator[Outcome]:
    """Run ``jobs`` in forked children, ``parallel`` at a time; yield outcomes as they end.

    ``jobs`` may yield ``wait`` (when given): nothing to start until a running job ends
    (the source is waiting for results before it can make more jobs).
    """
    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    pending = iter(jobs)
    running: dict[int, tuple] = {}  # pidfd → (job, slot, pid, started, result, log)
    free = list(range(max(1, parallel)))
    exhausted = False
    while running or not exhausted:
        while free and not exhausted:
            job = next(pending, None)
            if job is None:
                exhausted = True
                break
            if wait is not None and job is wait:
                if not running:
                    raise RuntimeError("the job source waits while nothing runs")
                break
            slot = free.pop()
            pid, pidfd, started, rp, lp = _start(job, slot, scratch)
            running[pidfd] = (job, slot, pid, started, rp, lp)
        if not running:
            break
        now = time.monotonic()
        pause = max(0.0, min(r[3] + r[0].timeout_s for r in running.values()) - now)
        ready, _, _ = select.select(list(running), [], [], pause)
        now = time.monotonic()
        for pidfd in list(running):
            job, slot, pid, started, rp, lp = running[pidfd]
            late = now >= started + job.timeout_s
            if pidfd in ready or late:
                del running[pidfd]
                os.close(pidfd)
                free.append(slot)
                yield _finish(job, pid, started, rp, lp, timed_out=late and pidfd not in ready)
