"""Run a seeded corpus through the tools and classify every run.

Classes, per tool and folder (the worst of the tool's runs on that folder):

- **crash**: the process was killed by a signal (SIGSEGV, SIGABRT, …), or an exception
  escaped that is not the tool's way of reporting bad input (for medview: anything but a
  ``DicomError`` from ``medview.load``, anything escaping ``medview.cli.main``; an exit
  status with a message is clean), or the child ended without a result.
- **hang**: over the wall-time limit.
- **over 2 GiB**: ``MemoryError`` (the address space is limited to the parent's plus 2 GiB),
  a C++ ``bad_alloc``, or a peak RSS over 2 GiB.
- **clean**: everything else, including a clear refusal.

**Intact slices lost**: a folder holding intact (unmutated) slices where the tool delivered
fewer of them than it delivers from a clean copy of the same slices (so a tool is never
blamed for what it does not do on clean data, e.g. resampling a tilted stack). For medview,
slices that landed in another stack of the series (medview lists the split) or that a
warning names are "reported", not lost. A crash, hang or refusal loses every intact slice
the clean copy gives.
"""

from __future__ import annotations

import shutil
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fuzz import tools
from fuzz.bases import BaseSlice
from fuzz.isolate import GIB, Job, Outcome, run_jobs
from fuzz.mutate import make_case, write_case

TOOLS = ("medview", "dcm2niix", "simpleitk", "pydicom")
MEDVIEW_OPS = ("index", "series", "convert", "load")
CLASSES = ("crash", "hang", "over_2gib", "clean")
_RANK = {c: i for i, c in enumerate(CLASSES)}
WAIT = object()
#: what C++ libraries say when an allocation fails under the address-space limit
_OUT_OF_MEMORY = ("bad_alloc", "Failed to allocate memory", "Cannot allocate memory",
                  "out of memory")


@dataclass
class ToolResult:
    """One tool on one folder."""

    cls: str = "clean"
    runs: dict = field(default_factory=dict)  # op → (class, detail)
    found: list | None = None  # per intact slice, from the load-like run
    reported: list | None = None
    baseline: list | None = None  # per intact slice, on the clean copy
    lost: int = 0


@dataclass
class FolderResult:
    case: dict
    intact: int
    tools: dict[str, ToolResult] = field(default_factory=dict)


def classify(out: Outcome) -> tuple[str, str]:
    """The class of one run and a one-line detail."""
    log = out.log_tail
    if out.status == "timeout":
        return "hang", f"over {out.seconds:.0f} s"
    if out.peak_rss_mb > 2048:
        return "over_2gib", f"peak RSS {out.peak_rss_mb:.0f} MB"
    if out.status == "signal":
        if any(m in log for m in _OUT_OF_MEMORY):
            return "over_2gib", f"signal {out.signal} after std::bad_alloc"
        return "crash", f"signal {out.signal} ({_signame(out.signal)}); log: {log[-300:]!r}"
    if out.status == "died":
        return "crash", f"exit {out.exit_code} without a result; log: {log[-300:]!r}"
    if out.status == "raised":
        r = out.result
        if "MemoryError" in r.get("mro", []) or any(
                m in r.get("message", "") for m in _OUT_OF_MEMORY):
            return "over_2gib", f"{r['type']}: {r['message'][:200]}"
        tb = r.get("traceback", "").strip().splitlines()
        where = " | ".join(line.strip() for line in tb[-5:-1])
        return "crash", f"{r['type']}: {r['message'][:300]} @ {where[-600:]}"
    r = out.result
    if r.get("tool_timeout"):
        return "hang", "dcm2niix over the time limit"
    if r.get("signal"):
        if any(m in r.get("stderr", "") for m in _OUT_OF_MEMORY):
            return "over_2gib", "dcm2niix std::bad_alloc"
        return "crash", f"signal {r['signal']} ({_signame(r['signal'])}): " \
                        f"{r.get('stderr', '')[-300:]!r}"
    if r.get("tool_rss_mb", 0) > 2048:
        return "over_2gib", f"peak RSS {r['tool_rss_mb']:.0f} MB"
    if "rejected" in r:
        return "clean", r["rejected"][:300]
    if "exit" in r and r["exit"] != 0:
        return "clean", f"exit {r['exit']}: {log.strip()[-300:]}"
    return "clean", ""


def _signame(n: int | None) -> str:
    import signal

    try:
        return signal.Signals(n).name
    except (TypeError, ValueError):
        return "?"


def intact_refs(case: dict, bases: dict[str, list[BaseSlice]], folder: Path) -> list[dict]:
    """The reference of each intact slice of ``case`` written into ``folder``."""
    refs = []
    for f in case["files"]:
        if f["intact"] and "slice" in f:
            s = bases[f["base"]][f["slice"]]
            refs.append({"path": str(folder / f["name"]), "name": f["name"], "ref": s.ref,
                         "position": s.position, "orientation": s.orientation,
                         "spacing": s.spacing})
    return refs


def tool_jobs(tool: str, key: tuple, folder: Path, out: Path, refs: list[dict],
              timeout_s: float, mem_bytes: int, *, load_only: bool = False) -> list[Job]:
    """The runs of ``tool`` on ``folder`` (``load_only``: just the one that loads)."""
    f = str(folder)

    def job(op: str, fn: Callable, *args) -> Job:
        return Job((*key, tool, op), fn, args, timeout_s, mem_bytes)

    if tool == "medview":
        jobs = [job("load", tools.medview_load, f, refs)]
        if not load_only:
            jobs += [
                job("index", tools.medview_cli, ["index", f, "--db", str(out / "cat.sqlite")]),
                job("series", tools.medview_cli, ["series", f, "--json"]),
                job("convert", tools.medview_cli, ["convert", f, str(out / "vol.nii")]),
            ]
        return jobs
    if tool == "dcm2niix":
        return [job("load", tools.dcm2niix, f, str(out / "nii"), refs, timeout_s, mem_bytes)]
    if tool == "simpleitk":
        return [job("load", tools.simpleitk, f, refs)]
    if tool == "pydicom":
        return [job("load", tools.pydicom_loop, f, refs)]
    raise ValueError(f"tool: expected one of {TOOLS}, got {tool!r}")


def run_corpus(bases: dict[str, list[BaseSlice]], data: Path, work: Path, *, seed: int,
               indices, tools_: tuple[str, ...] = TOOLS, timeout_s: float = 15.0,
               mem_bytes: int = 2 * GIB, parallel: int = 2, keep: bool = False,
               on_folder: Callable[[FolderResult], None] | None = None) -> list[FolderResult]:
    """Every folder of ``indices`` through every tool; results in index order.

    An item of ``indices`` is a folder index of corpus ``seed`` or a ``(seed, index)`` pair.
    """
    work = Path(work)
    extra: deque[Job] = deque()
    pending: dict[tuple, int] = {}  # (seed, index) → runs not finished yet
    results: dict[tuple, FolderResult] = {}
    folders = iter(indices)

    def source():
        while True:
            if extra:
                yield extra.popleft()
                continue
            item = next(folders, None)
            if item is None:
                if not pending:
                    return
                yield WAIT
                continue
            ck = item if isinstance(item, tuple) else (seed, item)
            case = make_case(bases, *ck)
            root = work / f"{ck[0]}_{ck[1]:05d}"
            if root.exists():
                shutil.rmtree(root)
            mut = write_case(case, bases, root / "mut", data)
            refs = intact_refs(case, bases, mut)
            results[ck] = FolderResult(case, len(refs), {t: ToolResult() for t in tools_})
            jobs = []
            for t in tools_:
                out = root / f"out_{t}"
                out.mkdir()
                jobs += tool_jobs(t, (ck, "mut"), mut, out, refs, timeout_s, mem_bytes)
            pending[ck] = len(jobs)
            yield from jobs

    for outcome in run_jobs(source(), work / "scratch", parallel=parallel, wait=WAIT):
        ck, phase, tool, op = outcome.key
        res = results[ck]
        root = work / f"{ck[0]}_{ck[1]:05d}"
        tr = res.tools[tool]
        cls, detail = classify(outcome)
        if phase == "mut":
            tr.runs[op] = (cls, detail)
            if _RANK[cls] < _RANK[tr.cls]:
                tr.cls = cls
            if op == "load" and outcome.status == "returned" and "found" in outcome.result:
                tr.found = outcome.result["found"]
                tr.reported = outcome.result.get("reported")
        elif outcome.status == "returned":
            tr.baseline = outcome.result.get("found")
        pending[ck] -= 1
        if pending[ck] == 0 and phase == "mut":
            need = [t for t, r in res.tools.items() if res.intact and _may_lose(r)]
            if need:
                clean = write_case(res.case, bases, root / "clean", data, clean=True)
                refs = intact_refs(res.case, bases, clean)
                for t in need:
                    out = root / f"clean_{t}"
                    out.mkdir()
                    extra.extend(tool_jobs(t, (ck, "clean"), clean, out, refs, timeout_s,
                                           mem_bytes, load_only=True))
                    pending[ck] += 1
        if pending[ck] == 0:
            del pending[ck]
            for r in res.tools.values():
                r.lost = _lost(r)
            if not keep:
                shutil.rmtree(root, ignore_errors=True)
            if on_folder:
                on_folder(res)
    return [results[k] for k in sorted(results)]


def _may_lose(r: ToolResult) -> bool:
    if r.found is None:
        return True
    reported = r.reported or [False] * len(r.found)
    return not all(f or rep for f, rep in zip(r.found, reported, strict=True))


def _lost(r: ToolResult) -> int:
    if r.baseline is None:
        return 0
    found = r.found or [False] * len(r.baseline)
    reported = r.reported or [False] * len(r.baseline)
    return sum(b and not f and not rep
               for b, f, rep in zip(r.baseline, found, reported, strict=True))


# ---------------------------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------------------------
def summarize(results: list[FolderResult], tools_: tuple[str, ...]) -> dict:
    """Per tool: folders per class, folders with intact slices, folders/slices lost."""
    out = {}
    with_intact = [r for r in results if r.intact]
    for t in tools_:
        c = Counter(r.tools[t].cls for r in results)
        lost = [r for r in with_intact if r.tools[t].lost]
        out[t] = {**{k: c.get(k, 0) for k in CLASSES}, "folders": len(results),
                  "with_intact": len(with_intact), "intact_lost_folders": len(lost),
                  "intact_lost_slices": sum(r.tools[t].lost for r in lost),
                  "intact_slices": sum(r.intact for r in with_intact)}
    return out


def failures(results: list[FolderResult]) -> list[dict]:
    """Every non-clean run and every folder that lost intact slices, one dict each."""
    rows = []
    for r in results:
        for t, tr in r.tools.items():
            for op, (cls, detail) in tr.runs.items():
                if cls != "clean":
                    rows.append({"seed": r.case["seed"], "index": r.case["index"], "tool": t,
                                 "op": op, "class": cls, "detail": detail})
            if tr.lost:
                rows.append({"seed": r.case["seed"], "index": r.case["index"], "tool": t,
                             "op": "load", "class": "intact_lost",
                             "detail": f"{tr.lost} of {r.intact} intact slice(s) not delivered"
                                       f" ({tr.runs.get('load', ('', ''))[1][:300]})"})
    return rows


def describe_case(case: dict) -> str:
    """One line per file: name, intact or the mutations applied."""
    lines = [f"seed {case['seed']} index {case['index']}: base {case['base']}"]
    for f in case["files"]:
        what = "intact" if f["intact"] else ", ".join(
            m["kind"] + (f" {m.get('element')}={m.get('value')!r}" if "element" in m else "")
            + (f" depth={m['depth']}" if "depth" in m else "") for m in f["mutations"]) \
            or "extra (unmutated)"
        src = f"{f['base']}[{f['slice']}]" if "slice" in f else f.get("extra", "garbage")
        lines.append(f"  {f['name']}: {src}: {what}")
    return "\n".join(lines)
