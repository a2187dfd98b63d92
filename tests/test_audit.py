"""The disclosure audit log: one whole line per series, append-only, private, from any process."""

from __future__ import annotations

import json
import multiprocessing as mp
import stat

from medview.audit import read_audit, record


def _writer(path, n, tag):
    for i in range(n):
        record(action="share", series=[(f"1.2.{tag}.{i}", 1000 * i)], destination="/tmp/x",
               profile="basic", path=path)


def test_each_series_is_one_line_with_who_when_what_where(tmp_path):
    log = tmp_path / "audit.log"
    record(action="send", series=[("1.2.3", 10), "1.2.4"], destination="PACS 127.0.0.1:104",
           detail={"sop_instances": 3}, path=log)
    a, b = read_audit(log)
    assert (a.series_uid, a.bytes, b.series_uid, b.bytes) == ("1.2.3", 10, "1.2.4", 0)
    assert a.action == "send" and a.destination == "PACS 127.0.0.1:104"
    assert a.user and a.time[:2] == "20" and a.detail == {"sop_instances": 3}
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_lines_are_appended_never_rewritten_and_stay_whole_across_processes(tmp_path):
    log = tmp_path / "audit.log"
    record(action="backup", series=["first"], destination="archive", path=log)
    before = log.read_bytes()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(log, 200, t)) for t in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    data = log.read_bytes()
    assert data.startswith(before)  # nothing before was rewritten
    lines = data.decode().splitlines()
    assert len(lines) == 601
    assert all(json.loads(x)["action"] in ("backup", "share") for x in lines)
    assert len({e.series_uid for e in read_audit(log)}) == 601


def test_a_torn_or_foreign_line_does_not_hide_the_rest(tmp_path):
    log = tmp_path / "audit.log"
    record(action="share", series=["a"], destination="d", path=log)
    with open(log, "a") as f:
        f.write('{"time": "2026-01-01", "act\n[1, 2]\nnot json\n')
    record(action="share", series=["b"], destination="d", path=log)
    assert [e.series_uid for e in read_audit(log)] == ["a", "b"]
    assert read_audit(tmp_path / "missing.log") == []


def test_an_entry_after_a_torn_last_line_is_not_lost(tmp_path):
    log = tmp_path / "audit.log"
    record(action="send", series=["1.2.1"], destination="pacs", path=log)
    with open(log, "ab") as f:
        f.write(b'{"time": "2026-12-05T10:00:00+0000", "action": "sha')  # a crash mid-write
    record(action="backup", series=["1.2.2"], destination="archive", path=log)
    assert [e.series_uid for e in read_audit(log)] == ["1.2.1", "1.2.2"]
    assert log.read_bytes().endswith(b"\n")


def test_medview_audit_lists_newest_first_and_as_json(tmp_path, monkeypatch, capsys):
    from medview.cli import main

    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path))
    assert main(["audit"]) == 0
    assert "no disclosures recorded" in capsys.readouterr().out
    record(action="offload", series=[("1.2.10", 2048)], destination="cluster")
    record(action="send", series=[("1.2.20", 10)], destination="orthanc", profile="basic")
    assert main(["audit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TIME", "USER", "ACTION", "SERIES", "DESTINATION", "PROFILE",
                                "BYTES"]
    assert "send" in lines[1] and "1.2.20" in lines[1] and "orthanc" in lines[1]
    assert "offload" in lines[2] and "2.0 KiB" in lines[2]
    assert main(["audit", "--json", "--action", "offload"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["series_uid"], r["bytes"], r["destination"]) for r in rows] == [
        ("1.2.10", 2048, "cluster")]
