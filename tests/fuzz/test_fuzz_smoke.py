"""A small seeded fuzz corpus through medview's index, series, convert and load.

Each of the ``SMOKE_FOLDERS`` folders of corpus ``SMOKE_SEED`` (3–12 real slices, some
mutated: see ``mutate.py``) runs through the four entry points, each in a forked child with a
wall-time limit and 2 GiB of address space. A folder passes when no run crashed, hung or went
over 2 GiB and every intact slice medview delivers from a clean copy it also delivers from
the mutated folder (or says why: another stack, a warning naming it, a resampled gap).
Reproduce one folder with ``python benchmarks/fuzz.py --seed 13 --only INDEX --keep``.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from realparts import DATA, REPO, require

from fuzz import harness, tools
from fuzz.bases import SERIES_FOLDERS, prepare_bases
from fuzz.isolate import GIB, Job, run_jobs
from fuzz.mutate import make_case, write_case

SMOKE_SEED = 13
SMOKE_FOLDERS = 16
#: folders of the seed-1 corpus that found distinct failures on the first run (FUZZ_FINDINGS)
PINNED = [(1, 35), (1, 119), (1, 317), (1, 596)]
CASES = [(SMOKE_SEED, i) for i in range(SMOKE_FOLDERS)] + PINNED
TIMEOUT_S = 8.0


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    for rel in SERIES_FOLDERS.values():
        require((DATA / rel).is_dir(), f"test data {DATA / rel}")
    cache = tmp_path_factory.mktemp("fuzz-bases")
    yield prepare_bases(DATA, cache)
    shutil.rmtree(cache, ignore_errors=True)  # ~160 MB of copies and references


@pytest.fixture(scope="module")
def corpus(bases, tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz-runs")
    results = harness.run_corpus(bases, DATA, work, seed=SMOKE_SEED,
                                 indices=CASES, tools_=("medview",), timeout_s=TIMEOUT_S,
                                 parallel=2)
    return {(r.case["seed"], r.case["index"]): r for r in results}


@pytest.mark.parametrize("case", CASES, ids=[f"seed{s}-{i}" for s, i in CASES])
def test_fuzzed_folder(corpus, case):
    res = corpus[case]
    mv = res.tools["medview"]
    bad = {op: f"{cls}: {detail}" for op, (cls, detail) in mv.runs.items() if cls != "clean"}
    assert set(mv.runs) == set(harness.MEDVIEW_OPS)
    assert not bad, f"{harness.describe_case(res.case)}\n{bad}"
    assert mv.lost == 0, (
        f"{harness.describe_case(res.case)}\n{mv.lost} of {res.intact} intact slice(s) not "
        f"delivered; load: {mv.runs['load'][1]}"
    )


def test_corpus_exercises_the_mutations(bases):
    """The seeded corpus holds intact slices and every kind of mutation, deterministically."""
    cases = [make_case(bases, SMOKE_SEED, i) for i in range(SMOKE_FOLDERS)]
    assert cases == [make_case(bases, SMOKE_SEED, i) for i in range(SMOKE_FOLDERS)]
    kinds = {m["kind"] for c in cases for f in c["files"] for m in f["mutations"]}
    assert {"text", "ushort", "flip", "truncate", "fragments", "tsuid"} <= kinds
    assert sum(f["intact"] for c in cases for f in c["files"]) >= SMOKE_FOLDERS
    assert len({c["base"] for c in cases}) >= 5


def test_written_folders_are_reproducible(bases, tmp_path):
    case = make_case(bases, SMOKE_SEED, 3)
    a = write_case(case, bases, tmp_path / "a", DATA)
    b = write_case(case, bases, tmp_path / "b", DATA)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(f["name"] for f in case["files"])
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    intact = [f for f in case["files"] if f["intact"] and "slice" in f]
    for f in intact:  # intact means byte-identical to the clean slice
        clean = Path(bases[f["base"]][f["slice"]].file).read_bytes()
        assert (a / f["name"]).read_bytes() == clean


def test_intact_check_finds_clean_slices_and_not_shifted_ones(bases, tmp_path):
    """The checker accepts medview's volume of a clean folder and rejects a moved slice."""
    import medview

    case = make_case(bases, SMOKE_SEED, 0)
    case["files"] = [dict(f, intact=True, mutations=[]) for f in case["files"] if "slice" in f]
    folder = write_case(case, bases, tmp_path / "clean", DATA)
    refs = harness.intact_refs(case, bases, folder)
    vol = medview.load(folder)
    assert tools.find_intact(refs, [(vol.array, vol.affine)]) == [True] * len(refs)
    moved = [dict(r, position=list(np.add(r["position"], [0.0, 0.0, 0.5]))) for r in refs]
    shifted = vol.affine.copy()
    shifted[:3, 3] += vol.direction[:, 0] * vol.spacing[0]  # one voxel along x
    assert not any(tools.find_intact(refs, [(vol.array, shifted)]))
    assert not any(tools.find_intact(moved, [(vol.array, vol.affine)]))


def _segfault() -> dict:
    os.kill(os.getpid(), signal.SIGSEGV)
    return {}


def _sleep() -> dict:
    time.sleep(30)
    return {}


def _allocate() -> dict:
    return {"n": int(np.ones(3 * GIB, dtype=np.uint8).sum())}


def _raise() -> dict:
    raise IndexError("list index out of range")


def test_isolation_classifies_crash_hang_memory(tmp_path):
    jobs = [Job(("segv",), _segfault), Job(("hang",), _sleep, timeout_s=1.0),
            Job(("mem",), _allocate), Job(("raise",), _raise),
            Job(("refused",), tools.medview_cli, (["series", str(tmp_path / "none")],))]
    out = {o.key[0]: o for o in run_jobs(jobs, tmp_path, parallel=2)}
    assert harness.classify(out["segv"])[0] == "crash"
    assert "SIGSEGV" in harness.classify(out["segv"])[1]
    assert harness.classify(out["hang"])[0] == "hang"
    assert out["hang"].seconds < 10
    assert harness.classify(out["mem"])[0] == "over_2gib"
    cls, detail = harness.classify(out["raise"])
    assert cls == "crash" and "IndexError" in detail
    assert out["refused"].result == {"exit": 1}
    assert harness.classify(out["refused"])[0] == "clean"
    assert "no such file or folder" in out["refused"].log_tail


def _limited(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


@pytest.mark.parametrize("index", [1, 7])
@pytest.mark.parametrize("command", ["series", "convert", "index"])
def test_real_cli_processes(bases, tmp_path, index, command):
    """The ``medview`` command in a real process: an exit status and a message, no traceback."""
    folder = write_case(make_case(bases, SMOKE_SEED, index), bases, tmp_path / "in", DATA)
    argv = {"series": ["series", str(folder)],
            "convert": ["convert", str(folder), str(tmp_path / "out.nii.gz")],
            "index": ["index", str(folder), "--db", str(tmp_path / "cat.sqlite")]}[command]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # 2 GiB for the work plus ~0.5 GiB the interpreter and its libraries map at start
    proc = subprocess.run([sys.executable, "-m", "medview.cli", *argv], capture_output=True,
                          text=True, timeout=60, env=env, preexec_fn=_limited(int(2.5 * GIB)),
                          check=False)
    assert proc.returncode in (0, 1), f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if proc.returncode == 1:
        assert f"medview {command}:" in proc.stderr or "unreadable" in proc.stderr, proc.stderr
    elif command == "convert":
        assert (tmp_path / "out.nii.gz").stat().st_size > 0
