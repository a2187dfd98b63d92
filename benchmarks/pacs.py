"""PACS speed, side by side: medview against DCMTK and a plain dicomweb-client loop.

    .venv/bin/python benchmarks/pacs.py [--slices 300] [--size 512] [--studies 1000]
                                        [--repeat 3] [--dir DIR] [--keep]
                                        [--only retrieve|query|send]
                                        [--link RATE [--delay-ms MS]]

Starts its own Orthanc (with the DICOMweb plugin, on free loopback ports) and DCMTK storescp,
and measures, medians of --repeat runs each:

1. retrieving a phantom CT series (300 × 512²) from Orthanc: DCMTK ``getscu``, DCMTK
   ``movescu`` (its own storage SCP as the destination) and a plain dicomweb-client loop
   (``iter_series`` + ``save_as``) as references; medview C-GET (over 1, 2, 3, 4
   associations: ``--associations``), C-MOVE and WADO-RS (``medview.pacs.retrieve``, files
   only, then with catalog indexing), each against the reference of its kind and the
   fastest, plus medview's time to the first instance; with ``--link RATE --only
   retrieve`` Orthanc runs behind that shaped link;
2. a study-level query of a PACS holding --studies generated studies: ``findscu`` (mostly
   Orthanc's own time) against ``medview.pacs.query.find`` over C-FIND and QIDO-RS;
3. sending the series to DCMTK storescp: ``storescu`` against ``medview.pacs.send`` over
   one association and over its default (several instances in flight); on loopback the same
   again to Orthanc (16 KiB PDUs, a PACS that indexes what it stores). With ``--link RATE``
   (a ``tc`` rate: 1gbit, 100mbit) storescp runs in its own network namespace reached over a
   veth pair shaped to RATE (``tc tbf``; ``--delay-ms`` adds that latency in each direction),
   and storescu and medview send through that same link, as to a PACS on a network.

The time to the first image in the window during a retrieve is measured by
benchmarks/pacs_first_image.py (it needs Qt).

Ratios: reference time / medview time (≥ 1 = medview as fast or faster). DCMTK's tools run
with ``TCP_NODELAY=1`` in their environment, their fastest: without it DCMTK leaves Nagle's
algorithm on (on this machine's loopback 93 against 444 MiB/s); both figures are printed for
storescu.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, median_seconds, series_folder

sys.path.insert(0, str(REPO / "tests" / "pacs"))  # the Orthanc process helper of the tests
from orthanc_proc import PASSWORD, USER, Orthanc, free_port

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def interleaved(fns: dict, repeat: int) -> dict:
    """Median seconds and last result of each callable, run in turn ``repeat`` times after
    one untimed round: these machines are shared, and load that comes and goes then hits
    every contender alike instead of whichever ran at that moment."""
    import gc
    import statistics

    times: dict = {k: [] for k in fns}
    last: dict = {}
    for k, fn in fns.items():
        last[k] = fn()
    for _ in range(max(1, repeat)):
        for k, fn in fns.items():
            last[k] = None
            gc.collect()
            t0 = time.perf_counter()
            last[k] = fn()
            times[k].append(time.perf_counter() - t0)
    return {k: (statistics.median(v), last[k]) for k, v in times.items()}


def _fresh(base: Path, name: str) -> Path:
    d = base / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def _wait_port(port: int, proc, host: str = "127.0.0.1") -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("storescp did not start")


def _fill_studies(orthanc: Orthanc, n: int) -> float:
    """POST ``n`` one-instance studies (8×8 CT headers) to Orthanc; seconds taken."""
    import numpy as np
    import requests
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    t0 = time.perf_counter()
    with requests.Session() as s:
        s.auth = (USER, PASSWORD)
        for k in range(n):
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
            ds.PatientName, ds.PatientID = f"BENCH^P{k // 3:04d}", f"B{k // 3:04d}"
            ds.PatientBirthDate = f"19{50 + k % 50:02d}0101"
            ds.StudyDate, ds.StudyTime = f"2024{1 + k % 12:02d}{1 + k % 28:02d}", "120000"
            ds.AccessionNumber, ds.StudyDescription = f"A{k:06d}", f"Bench study {k}"
            ds.Modality, ds.SeriesNumber, ds.InstanceNumber = ("CT", "MR")[k % 2], 1, 1
            ds.Rows = ds.Columns = 8
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            ds.PixelData = np.zeros((8, 8), np.uint16).tobytes()
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            s.post(f"{orthanc.url}/instances", data=buf.getvalue(), timeout=30) \
                .raise_for_status()
    return time.perf_counter() - t0


def _send_to_orthanc(orthanc: Orthanc, node, folder: Path, files: list, mb: float,
                     repeat: int, rows: list) -> None:
    """storescu against medview's send, both to Orthanc (a PACS that offers 16 KiB PDUs and
    indexes what it stores) over loopback; it holds these instances already, so each
    C-STORE replaces one."""
    from medview.pacs.send import DEFAULT_ASSOCIATIONS, send

    print(f"\n3b. send {len(files)} files to Orthanc (loopback)")

    def storescu():
        subprocess.run(["storescu", "-aet", "STORESCU", "-aec", orthanc.aet, "-nh",
                        "127.0.0.1", str(orthanc.dicom_port), *map(str, files)], check=True,
                       capture_output=True, env=DCMTK_ENV)

    def medview_send(n):
        def run():
            report = send(node, [folder], associations=n)
            assert report.complete, report.summary()
        return run

    counts = (1, DEFAULT_ASSOCIATIONS)
    got = interleaved({"storescu": storescu, **{n: medview_send(n) for n in counts}}, repeat)
    t_scu = got["storescu"][0]
    print(f"  {'DCMTK storescu, TCP_NODELAY=1':38s} {t_scu:7.2f} s  {mb / t_scu:6.0f} MiB/s")
    for n in counts:
        t_send = got[n][0]
        label = f"medview send, {n} association{'s' if n > 1 else ''}"
        print(f"  {label:38s} {t_send:7.2f} s  {mb / t_send:6.0f} MiB/s  ×{t_scu / t_send:.2f}")
        rows.append((f"send to Orthanc: {label} vs storescu", t_scu / t_send, "≥ 1.0"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--studies", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", help="a folder holding (or to receive) the phantom series")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only", choices=["retrieve", "query", "send"],
                    help="measure only this part")
    ap.add_argument("--associations", default="1,2,3,4", metavar="N,N,...",
                    help="medview C-GET over each of these numbers of associations "
                         "(and the default); C-MOVE over 1, the default and the largest")
    ap.add_argument("--link", metavar="RATE",
                    help="send (part 3) to storescp over a veth link shaped to RATE "
                         "(a tc rate: 1gbit, 100mbit) instead of loopback; with --only "
                         "retrieve, Orthanc behind that link; needs root, ip, tc")
    ap.add_argument("--delay-ms", type=float, default=0.0,
                    help="with --link: latency added in each direction (ms)")
    args = ap.parse_args()
    if args.delay_ms and not args.link:
        ap.error("--delay-ms needs --link")
    if args.link:
        from _netns import rate_bits
        try:
            rate_bits(args.link)
        except ValueError as e:
            ap.error(str(e))

    from dicomweb_client.api import DICOMwebClient

    from medview.dicom.catalog.db import Catalog
    from medview.pacs.nodes import DEFAULT_RETRIEVE_ASSOCIATIONS, DimseNode, WebNode
    from medview.pacs.query import Query, find, list_instances
    from medview.pacs.retrieve import retrieve
    from medview.pacs.send import send

    work = Path(tempfile.mkdtemp(prefix="medview-pacs-bench-"))
    # the sends' audit lines and any configuration go here, not to the user's folders
    os.environ["MEDVIEW_DATA_DIR"] = str(work / "data")
    os.environ["MEDVIEW_CONFIG_DIR"] = str(work / "config")
    move_port = free_port()
    storescp = None
    link = None
    if args.link and args.only == "retrieve":
        # the PACS on the shaped link: every retrieve (and its C-MOVE back to us) crosses it
        from _netns import ShapedLink

        link = ShapedLink(args.link, args.delay_ms)
        orthanc = Orthanc(work / "orthanc", {"MEDVIEW": (link.local_address, move_port)},
                          host=link.peer_address, command=link.command)
    else:
        orthanc = Orthanc(work / "orthanc", {"MEDVIEW": ("127.0.0.1", move_port)})
    try:
        orthanc.start()
    except BaseException:
        if link is not None:
            link.close()
        raise
    rows: list[tuple[str, float, str]] = []
    try:
        with series_folder(args.dir, slices=args.slices, size=args.size,
                           keep=args.keep) as folder:
            files = sorted(folder.glob("*.dcm"))
            mb = sum(f.stat().st_size for f in files) / 2**20
            t0 = time.perf_counter()
            orthanc.upload(files)
            print(f"uploaded {len(files)} files ({mb:.0f} MiB) to Orthanc in "
                  f"{time.perf_counter() - t0:.1f} s")
            dimse = DimseNode("bench", orthanc.aet, orthanc.host, orthanc.dicom_port,
                              "MEDVIEW", move_port, timeout_s=60)
            # the secret comes from this object, not the keyring: a subclass answering it
            web = type("BenchWeb", (WebNode,), {"secret": lambda self: PASSWORD})(
                "bench-web", orthanc.dicomweb, "basic", USER, timeout_s=60)
            [patient] = find(dimse, Query(patient_name="PHANTOM*"))
            study_uid, series_uid = patient.studies[0].uid, patient.studies[0].series[0].uid
            assert len(list_instances(dimse, study_uid, series_uid)) == len(files)

            # -- 1. retrieve ----------------------------------------------------------------
            def getscu():
                out = _fresh(work, "getscu")
                subprocess.run(["getscu", "-S", "-aet", "GETSCU", "-aec", orthanc.aet,
                                "-k", "QueryRetrieveLevel=SERIES",
                                "-k", f"StudyInstanceUID={study_uid}",
                                "-k", f"SeriesInstanceUID={series_uid}", "-od", str(out),
                                orthanc.host, str(orthanc.dicom_port)], check=True,
                               capture_output=True, env=DCMTK_ENV)
                return len(list(out.iterdir()))

            def movescu():
                # the destination is movescu's own storage SCP, under the AE title and port
                # Orthanc knows as MEDVIEW (medview's C-MOVE destination is not listening now)
                out = _fresh(work, "movescu")
                subprocess.run(["movescu", "-S", "-aet", "MEDVIEW", "-aec", orthanc.aet,
                                "-aem", "MEDVIEW", "--port", str(move_port),
                                "-k", "QueryRetrieveLevel=SERIES",
                                "-k", f"StudyInstanceUID={study_uid}",
                                "-k", f"SeriesInstanceUID={series_uid}", "-od", str(out),
                                orthanc.host, str(orthanc.dicom_port)], check=True,
                               capture_output=True, env=DCMTK_ENV)
                return len(list(out.iterdir()))

            def dicomweb_loop():
                import requests

                out = _fresh(work, "dwc")
                session = requests.Session()
                session.auth = (USER, PASSWORD)
                client = DICOMwebClient(orthanc.dicomweb, session=session)
                n = 0
                for ds in client.iter_series(study_uid, series_uid):
                    ds.save_as(out / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
                    n += 1
                return n

            first: list[float] = []

            def medview(method, node, with_catalog=False, associations=None):
                def run():
                    root = _fresh(work, f"mv-{method}")
                    t0 = time.perf_counter()
                    first.clear()

                    def on_instance(path, uids):
                        if not first:
                            first.append(time.perf_counter() - t0)

                    if with_catalog:
                        with Catalog(root / "c.sqlite") as cat:
                            r = retrieve(node, study_uid, series_uid, method=method,
                                         root=root / "store", catalog=cat,
                                         on_instance=on_instance, associations=associations)
                    else:
                        r = retrieve(node, study_uid, series_uid, method=method,
                                     root=root / "store", on_instance=on_instance,
                                     associations=associations)
                    assert r.complete, r.summary()
                    return len(r.received)
                return run

            if args.only in (None, "retrieve"):
                print(f"\n1. retrieve {len(files)} × {args.size}² ({mb:.0f} MiB) from Orthanc "
                      f"({link.describe() if link else 'loopback'}; median of {args.repeat})")
                if link:
                    line = rate_bits(args.link) / 8 / 2**20
                    print(f"  {'line rate':38s} {mb / line:7.2f} s  {line:6.0f} MiB/s "
                          "(payload only, before DICOM and TCP overhead)")
                counts = sorted({int(c) for c in args.associations.split(",")}
                                | {DEFAULT_RETRIEVE_ASSOCIATIONS})
                default = DEFAULT_RETRIEVE_ASSOCIATIONS

                def assoc_label(n):
                    return f"{n} assoc.{' (default)' if n == default else ''}"

                variants = [(f"medview C-GET, {assoc_label(n)}", "get", dimse, False, n)
                            for n in counts]
                variants += [(f"medview C-MOVE, {assoc_label(n)}", "move", dimse, False, n)
                             for n in sorted({1, default, max(counts)})]
                variants += [
                    ("medview WADO-RS", "wado", web, False, None),
                    (f"medview C-GET, {default} assoc. + catalog", "get", dimse, True, default),
                    ("medview WADO-RS + catalog index", "wado", web, True, None),
                ]
                fns = {"getscu": getscu, "movescu": movescu, "dwc": dicomweb_loop}
                firsts: dict[str, list[float]] = {}

                def timed_first(label, run):
                    def go():
                        n = run()
                        firsts.setdefault(label, []).append(first[0])
                        return n
                    return go

                for label, method, node, cat, n in variants:
                    fns[label] = timed_first(label, medview(method, node, cat, n))
                print("  load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
                got = interleaved(fns, args.repeat)
                print("  load average after:  {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
                assert all(n == len(files) for _t, n in got.values())
                t_get, t_move, t_dwc = got["getscu"][0], got["movescu"][0], got["dwc"][0]
                ref = min(t_get, t_dwc)
                refs = {"get": (t_get, "getscu"), "move": (t_move, "movescu"),
                        "wado": (t_dwc, "dicomweb-client")}
                print(f"  {'DCMTK getscu':38s} {t_get:7.2f} s  {mb / t_get:6.0f} MiB/s")
                print(f"  {'DCMTK movescu':38s} {t_move:7.2f} s  {mb / t_move:6.0f} MiB/s")
                print(f"  {'dicomweb-client iter_series + save':38s} {t_dwc:7.2f} s  "
                      f"{mb / t_dwc:6.0f} MiB/s")
                for label, method, _node, cat, _n in variants:
                    t = got[label][0]
                    same_kind, name = refs[method]
                    t_first = sorted(firsts[label])[len(firsts[label]) // 2]
                    print(f"  {label:38s} {t:7.2f} s  {mb / t:6.0f} MiB/s  ×{same_kind / t:.2f} of "
                          f"{name}, ×{ref / t:.2f} of the faster of getscu and dicomweb-client; "
                          f"first instance after {t_first * 1000:.0f} ms")
                    rows.append((f"retrieve: {label} vs {name}", same_kind / t, "≥ 1.0"))
                    if not cat and method != "move":
                        rows.append((f"retrieve: {label} vs the faster", ref / t, "≥ 1.0"))

            if args.only in (None, "query"):
                # -- 2. query -------------------------------------------------------------------
                print(f"\n2. study-level query of a PACS holding {args.studies} more studies")
                t_fill = _fill_studies(orthanc, args.studies)
                print(f"  (filled in {t_fill:.1f} s)")

                def findscu():
                    out = subprocess.run(
                        ["findscu", "-S", "-aet", "FINDSCU", "-aec", orthanc.aet,
                         "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName", "-k", "PatientID",
                         "-k", "StudyDate", "-k", "StudyInstanceUID", "-k", "AccessionNumber",
                         "-k", "StudyDescription", "-k", "ModalitiesInStudy",
                         "-k", "NumberOfStudyRelatedInstances", "127.0.0.1",
                         str(orthanc.dicom_port)], capture_output=True, text=True, check=True,
                        env=DCMTK_ENV)
                    return out.stderr.count("(0020,000d)")

                def raw_qido():
                    import requests

                    r = requests.get(f"{orthanc.dicomweb}/studies", auth=(USER, PASSWORD),
                                     timeout=60)
                    r.raise_for_status()
                    return len(r.content)

                t_find, n_find = median_seconds(findscu, args.repeat)
                t_raw, _ = median_seconds(raw_qido, args.repeat)
                print(f"  {'DCMTK findscu (mostly Orthanc)':38s} {t_find:7.3f} s  {n_find} studies")
                print(f"  {'one QIDO-RS GET, JSON not parsed':38s} {t_raw:7.3f} s  (Orthanc's own)")
                for label, node, base, what in [
                    ("medview find, C-FIND", dimse, t_find, "findscu"),
                    ("medview find, QIDO-RS", web, t_raw, "the bare GET"),
                ]:
                    t, result = median_seconds(lambda node=node: find(node, level="study"),
                                               args.repeat)
                    n = sum(len(p.studies) for p in result)
                    print(f"  {label:38s} {t:7.3f} s  {n} studies; {t - base:+.3f} s beyond "
                          f"{what}")
                    rows.append((f"query: {label} − {what} (s)", t - base, "≤ 0.5"))

            if args.only in (None, "send"):
                # -- 3. send --------------------------------------------------------------------
                port = free_port()
                recv = work / "storescp"
                recv.mkdir()
                # --fork: one process per association, so parallel associations are served
                scp = ["storescp", "--fork", "-aet", "DCMTKSCP", "-od", str(recv), "-uf",
                       "--max-pdu", "131072", str(port)]
                host = "127.0.0.1"
                if args.link:
                    from _netns import ShapedLink

                    link = ShapedLink(args.link, args.delay_ms)
                    scp, host = link.command(scp), link.peer_address
                where = link.describe() if link else "loopback"
                print(f"\n3. send {len(files)} files to DCMTK storescp ({where})")
                if link:
                    line = rate_bits(args.link) / 8 / 2**20
                    print(f"  {'line rate':38s} {mb / line:7.2f} s  {line:6.0f} MiB/s "
                          "(payload only, before DICOM and TCP overhead)")
                # `ip netns exec` execs storescp: this process id is storescp's
                storescp = subprocess.Popen(scp, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, env=DCMTK_ENV)
                _wait_port(port, storescp, host)

                def storescu(env):
                    def run():
                        subprocess.run(["storescu", "-aet", "STORESCU", "-aec", "DCMTKSCP", "-nh",
                                        host, str(port), *map(str, files)], check=True,
                                       capture_output=True, env=env)
                    return run

                from medview.pacs.send import DEFAULT_ASSOCIATIONS

                target = DimseNode("dcmtk", "DCMTKSCP", host, port, timeout_s=60)

                def medview_send(n):
                    def run():
                        report = send(target, [folder], associations=n)
                        assert report.complete, report.summary()
                        return report
                    return run

                counts = (1, DEFAULT_ASSOCIATIONS)
                got = interleaved({"storescu": storescu(DCMTK_ENV),
                                   **{n: medview_send(n) for n in counts}}, args.repeat)
                t_scu = got["storescu"][0]
                t_scu_default, _ = median_seconds(storescu(dict(os.environ)), 1, warmup=0)
                print(f"  {'DCMTK storescu, TCP_NODELAY=1':38s} {t_scu:7.2f} s  "
                      f"{mb / t_scu:6.0f} MiB/s")
                print(f"  {'DCMTK storescu, default (Nagle on)':38s} {t_scu_default:7.2f} s  "
                      f"{mb / t_scu_default:6.0f} MiB/s")
                for n in counts:
                    t_send = got[n][0]
                    label = f"medview send, {n} association{'s' if n > 1 else ''}"
                    print(f"  {label:38s} {t_send:7.2f} s  {mb / t_send:6.0f} MiB/s  "
                          f"×{t_scu / t_send:.2f} (×{t_scu_default / t_send:.2f} of the default)")
                    over = f" ({args.link})" if link else ""
                    rows.append((f"send{over}: {label} vs storescu", t_scu / t_send, "≥ 1.0"))
                if not link:
                    _send_to_orthanc(orthanc, dimse, folder, files, mb, args.repeat, rows)
    finally:
        if storescp is not None:
            storescp.kill()
            storescp.wait()
        orthanc.stop()
        if link is not None:
            link.close()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print("\ntargets")
    for label, value, target in rows:
        op, bound = target.split()
        ok = value >= float(bound) if op == "≥" else value <= float(bound)
        print(f"  {label:48s} {value:7.2f}  target {target:6s} {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
