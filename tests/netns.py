"""Several "machines" on this one: Linux network namespaces on a private bridge (needs root).

:class:`Hosts` creates one namespace per host name, each with its own loopback and one veth
whose other end sits on a bridge inside a hub namespace, all with addresses in a /24 the test
picks at random in 10.0.0.0/8. Nothing is added to this machine's own network namespace: the
hosts reach each other and nothing else. Processes started with :meth:`Hosts.popen` run inside
their host (``ip netns exec``); :meth:`Hosts.close` stops them by their process ids and
deletes every namespace, also after a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from offload_procs import stop


def can_create() -> str | None:
    """None when this process can create namespaces; else what is missing."""
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2)"
    if os.geteuid() != 0:
        return "root (network namespaces)"
    return None


def _ip(*args: str) -> None:
    run = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {run.stderr.strip()}")


class Hosts:
    """Network namespaces ``names`` on one bridge; ``address[name]`` is each one's IPv4."""

    def __init__(self, names: list[str]):
        tag = secrets.token_hex(3)
        self.tag = tag
        b = secrets.randbelow(256)
        a = 100 + secrets.randbelow(100)
        self.hub = f"mvhub-{tag}"
        self.ns = {n: f"mv-{tag}-{n}" for n in names}
        self.address = {n: f"10.{a}.{b}.{i + 1}" for i, n in enumerate(names)}
        self.procs: list[subprocess.Popen] = []
        self._made: list[str] = []
        try:
            self._add(self.hub)
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "link", "set", "br0", "up")
            for i, name in enumerate(names):
                ns = self.ns[name]
                self._add(ns)
                # both ends are created inside their namespaces: none appears on this machine
                _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name",
                    f"p{i}", "netns", self.hub)
                _ip("-n", ns, "addr", "add", f"{self.address[name]}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", self.hub, "link", "set", f"p{i}", "master", "br0", "up")
        except BaseException:
            self.close()
            raise

    def _add(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._made.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def command(self, host: str, cmd: list, *, hide: Path | None = None) -> list[str]:
        """``cmd`` run inside ``host``; with ``hide`` that folder looks empty there (a tmpfs
        over it in the process's own mount namespace: another machine's disk)."""
        cmd = [str(c) for c in cmd]
        if hide is not None:
            # `ip netns exec` gives the process its own mount namespace already
            script = 'mount -t tmpfs -o size=1m medview-hidden "$0" && exec "$@"'
            cmd = ["sh", "-c", script, str(hide), *cmd]
        return ["ip", "netns", "exec", self.ns[host], *cmd]

    def popen(self, host: str, cmd: list, *, log: Path, env: dict,
              hide: Path | None = None) -> subprocess.Popen:
        with open(log, "w") as out:
            proc = subprocess.Popen(self.command(host, cmd, hide=hide), stdout=out,
                                    stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def run(self, host: str, cmd: list, *, env: dict, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(host, cmd), env=env, capture_output=True,
                              text=True, timeout=timeout, input=input)

    def wait_port(self, host: str, address: str, port: int, *, env: dict,
                  timeout_s: float = 60.0) -> None:
        """Wait until ``address:port`` accepts a connection from ``host``."""
        probe = ("import socket, sys, time\n"
                 "end = time.monotonic() + float(sys.argv[3])\n"
                 "while True:\n"
                 "    try:\n"
                 "        socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()\n"
                 "        break\n"
                 "    except OSError:\n"
                 "        if time.monotonic() > end: sys.exit(1)\n"
                 "        time.sleep(0.1)\n")
        run = self.run(host, [sys.executable, "-c", probe, address, port, timeout_s],
                       env=env, timeout=timeout_s + 30)
        if run.returncode != 0:
            raise RuntimeError(f"{address}:{port} did not answer {host} within {timeout_s} s")

    def vanish(self, host: str) -> None:
        """``host`` drops off the network (its link goes down; its processes keep running)."""
        _ip("-n", self.ns[host], "link", "set", "eth0", "down")

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self._made.clear()


def wait_for(predicate, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"{what} within {timeout_s} s")
        time.sleep(0.1)
