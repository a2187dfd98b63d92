"""A shaped network link for the benchmarks: a peer in its own network namespace (needs root).

:class:`ShapedLink` makes one namespace and one veth pair between it and this machine's
namespace, on a random /30 in 10.0.0.0/8, and shapes both directions with ``tc`` (``tbf`` to
the rate, with ``netem`` in front for a delay): what a process started with
:meth:`ShapedLink.command` listens on is reached from here only through that link, like a
PACS on a network instead of loopback. tests/netns.py's ``Hosts`` puts every host in a
namespace; here the benchmark itself (medview's in-process send) stays in this namespace, so
the few ``ip`` lines are copied rather than shared. :meth:`close` deletes the namespace,
which deletes both ends of the veth pair.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess

_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


def rate_bits(rate: str) -> float:
    """Bits per second of a ``tc`` rate such as ``1gbit`` or ``100mbit``."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg]?)bit", rate.strip().lower())
    if m is None:
        raise ValueError(f"link rate {rate!r}: expected a number and kbit, mbit or gbit "
                         "(e.g. 1gbit, 100mbit)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def can_create() -> str | None:
    """None when this process can shape a link; else what is missing."""
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"the '{tool}' command (Debian package iproute2)"
    if os.geteuid() != 0:
        return "root (network namespaces, tc)"
    return None


def _run(*cmd: str) -> None:
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {run.stderr.strip()}")


def _need_netem(prefix: list[str], dev: str) -> None:
    """A clear error when this kernel has no netem (some VM kernels are built without it)."""
    run = subprocess.run([*prefix, "qdisc", "add", "dev", dev, "root", "handle", "1:", "netem",
                          "delay", "1ms"], capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        raise RuntimeError(f"--delay-ms needs the kernel's netem qdisc (sch_netem), which "
                           f"this kernel lacks: {run.stderr.strip()}; --link alone uses tbf")
    _run(*prefix, "qdisc", "del", "dev", dev, "root")


class ShapedLink:
    """Namespace ``ns`` at ``peer_address``, reached from here over a link shaped to ``rate``
    (a ``tc`` rate) with ``delay_ms`` added in each direction (round trip twice that)."""

    def __init__(self, rate: str, delay_ms: float = 0.0):
        missing = can_create()
        if missing is not None:
            raise RuntimeError(f"--link needs {missing}")
        bits = rate_bits(rate)
        tag = secrets.token_hex(3)
        self.ns = f"mvlink-{tag}"
        self.rate, self.delay_ms = rate, delay_ms
        a, b, c = 100 + secrets.randbelow(100), secrets.randbelow(256), secrets.randbelow(64)
        self.local_address = f"10.{a}.{b}.{4 * c + 1}"
        self.peer_address = f"10.{a}.{b}.{4 * c + 2}"
        here = f"mvl{tag}"
        self._made = False
        try:
            _run("ip", "netns", "add", self.ns)
            self._made = True
            _run("ip", "-n", self.ns, "link", "set", "lo", "up")
            _run("ip", "link", "add", here, "type", "veth", "peer", "name", "eth0",
                 "netns", self.ns)
            _run("ip", "addr", "add", f"{self.local_address}/30", "dev", here)
            _run("ip", "link", "set", here, "up")
            _run("ip", "-n", self.ns, "addr", "add", f"{self.peer_address}/30", "dev", "eth0")
            _run("ip", "-n", self.ns, "link", "set", "eth0", "up")
            # the bucket holds at least 10 ms at the rate and a whole 64 KiB GSO segment
            # (veth hands tbf segments up to that size); the queue ~100 ms at the rate
            burst = max(int(bits / 8 / 100), 128 * 1024)
            limit = max(int(bits / 8 / 10), 4 * burst)
            for prefix in (["tc"], ["ip", "netns", "exec", self.ns, "tc"]):
                dev = here if len(prefix) == 1 else "eth0"
                tbf = ["tbf", "rate", rate, "burst", str(burst), "limit", str(limit)]
                if delay_ms > 0:
                    _need_netem(prefix, dev)
                    _run(*prefix, "qdisc", "add", "dev", dev, "root", "handle", "1:", "netem",
                         "delay", f"{delay_ms}ms", "limit", "100000")
                    _run(*prefix, "qdisc", "add", "dev", dev, "parent", "1:1", "handle",
                         "10:", *tbf)
                else:
                    _run(*prefix, "qdisc", "add", "dev", dev, "root", *tbf)
        except BaseException:
            self.close()
            raise

    def describe(self) -> str:
        delay = f", +{self.delay_ms:g} ms each way" if self.delay_ms > 0 else ""
        return f"veth shaped to {self.rate} (tc tbf{delay})"

    def command(self, cmd: list) -> list[str]:
        """``cmd`` run inside the peer's namespace."""
        return ["ip", "netns", "exec", self.ns, *map(str, cmd)]

    def close(self) -> None:
        if self._made:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=30)
            self._made = False
