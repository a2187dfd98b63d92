"""``medview pacs``: nodes, echo, find, get, send, listen (the PACS part of the command line).

Exit status: 0 done, 1 error (nothing or not everything done; the message says what), 3 a
partial result (some instances not retrieved or not stored; they are listed).
"""

from __future__ import annotations

import sys

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 3


def _read_secret(args, what: str) -> str:
    if args.secret_file:
        from pathlib import Path

        return Path(args.secret_file).read_text().strip()
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    import getpass

    return getpass.getpass(f"{what} for {args.name}: ").strip()


def parse_address(address: str):
    """``AET@HOST:PORT`` → (aet, host, port); ValueError naming the format otherwise."""
    aet, sep, rest = address.rpartition("@")
    host, sep2, port = rest.rpartition(":")
    if not sep or not sep2 or not aet or not host or not port.isdigit():
        raise ValueError(f"address {address!r}: use AET@HOST:PORT for DICOM or "
                         "https://HOST[:PORT]/PATH for DICOMweb")
    return aet, host.strip("[]"), int(port)


def association_count(text: str) -> int:
    """``--associations N``: a whole number from 1 to
    :data:`~medview.pacs.nodes.MAX_RETRIEVE_ASSOCIATIONS`, checked while the arguments are
    read (before any node is contacted)."""
    import argparse

    from medview.pacs.nodes import MAX_RETRIEVE_ASSOCIATIONS

    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_RETRIEVE_ASSOCIATIONS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a whole number from 1 to {MAX_RETRIEVE_ASSOCIATIONS}")
    return n


def cmd_pacs_add(args) -> int:
    from medview.pacs import nodes

    if args.address.startswith(("http://", "https://")):
        auth = "bearer" if args.bearer else ("basic" if args.user else "none")
        secret = None
        if auth != "none":
            secret = _read_secret(args, "token" if auth == "bearer" else "password")
        node = nodes.add_node(nodes.WebNode(args.name, args.address, auth, args.user,
                                            args.ca_bundle, args.timeout), secret)
        extra = f"; secret in {nodes.secret_storage()}" if auth != "none" else ""
    else:
        aet, host, port = parse_address(args.address)
        node = nodes.add_node(nodes.DimseNode(args.name, aet, host, port, args.our_aet,
                                              args.our_port, args.retrieve, args.timeout,
                                              args.associations))
        extra = ""
    print(f"added {node.describe()}{extra}")
    return EXIT_OK


def cmd_pacs_list(args) -> int:
    from medview.pacs import nodes

    found = nodes.list_nodes()
    if not found:
        print("no PACS nodes (add one with 'medview pacs add NAME AET@HOST:PORT' or "
              "'medview pacs add NAME https://HOST/dicom-web')")
    for node in found:
        print(node.describe())
    return EXIT_OK


def cmd_pacs_remove(args) -> int:
    from medview.pacs import nodes

    nodes.remove_node(args.name)
    print(f"PACS node {args.name} removed")
    return EXIT_OK


def cmd_pacs_echo(args) -> int:
    from medview.pacs.echo import echo
    from medview.pacs.nodes import get_node

    print(echo(get_node(args.name)))
    return EXIT_OK


def add_parser(sub, common) -> None:
    """The ``pacs`` subcommand and its own subcommands, on ``sub`` (argparse subparsers)."""
    from medview.pacs.nodes import DEFAULT_RETRIEVE_ASSOCIATIONS

    s = sub.add_parser(
        "pacs", parents=[common], help="PACS: nodes, echo, find, get, send, listen",
        description="Query, retrieve from and send to a PACS over DICOM (C-FIND, C-GET, "
                    "C-MOVE, C-STORE) or DICOMweb (QIDO-RS, WADO-RS, STOW-RS). Exit status 0 "
                    "done, 1 error, 3 partly done (what is missing is listed).")
    psub = s.add_subparsers(dest="pacs_command", metavar="SUBCOMMAND")
    s.set_defaults(func=cmd_pacs_list, pacs_command="list")

    t = psub.add_parser("add", help="add or replace a node (AET@HOST:PORT or a DICOMweb URL)",
                        description="A DICOM node: 'medview pacs add NAME AET@HOST:PORT'. A "
                                    "DICOMweb endpoint: 'medview pacs add NAME URL' with "
                                    "--user (password read from stdin or a prompt) or "
                                    "--bearer (token read likewise); secrets go to the OS "
                                    "keyring.")
    t.add_argument("name")
    t.add_argument("address", help="AET@HOST:PORT or https://HOST[:PORT]/PATH (DICOMweb root)")
    t.add_argument("--our-aet", default="MEDVIEW", help="our AE title (default MEDVIEW)")
    t.add_argument("--our-port", type=int, default=0,
                   help="where our storage SCP listens for C-MOVE (default: any free port)")
    t.add_argument("--retrieve", choices=["get", "move"], default="get",
                   help="retrieve by C-GET (default) or C-MOVE to our storage SCP")
    t.add_argument("--associations", type=association_count,
                   default=DEFAULT_RETRIEVE_ASSOCIATIONS, metavar="N",
                   help="DICOM: retrieve (C-GET, C-MOVE) over up to N associations at once, "
                        "each asking for a share of the instances; 1 asks for a series or "
                        f"study in one request (default {DEFAULT_RETRIEVE_ASSOCIATIONS})")
    t.add_argument("--user", help="DICOMweb basic authentication user")
    t.add_argument("--bearer", action="store_true", help="DICOMweb bearer token authentication")
    t.add_argument("--secret-file", metavar="FILE",
                   help="read the password/token from FILE (default: stdin, or a prompt)")
    t.add_argument("--ca-bundle", metavar="FILE",
                   help="CA certificate(s) to trust for https (default: the system CAs)")
    t.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    t.set_defaults(func=cmd_pacs_add)
    t = psub.add_parser("list", help="the configured nodes")
    t.set_defaults(func=cmd_pacs_list)
    t = psub.add_parser("remove", help="forget a node (and its password/token)")
    t.add_argument("name")
    t.set_defaults(func=cmd_pacs_remove)
    t = psub.add_parser("echo", help="verify a node: C-ECHO or a QIDO-RS probe")
    t.add_argument("name")
    t.set_defaults(func=cmd_pacs_echo)
    for extra in _EXTRA:
        extra(psub)


# later subcommands (find, get, send, listen) register here
_EXTRA: list = []


# -- find -------------------------------------------------------------------------------------
def _catalog(args):
    from medview.dicom.catalog.db import Catalog

    return Catalog(args.db) if getattr(args, "db", None) else Catalog()


def cmd_pacs_find(args) -> int:
    import json
    from dataclasses import asdict

    from medview.pacs.nodes import get_node
    from medview.pacs.query import Query, find

    node = get_node(args.name)
    query = Query(args.patient_name or "", args.patient_id or "", args.birth_date or "",
                  args.date or "", args.modality or "", args.accession or "",
                  args.description or "", args.study or "")
    with _catalog(args) as catalog:
        patients = find(node, query, level=args.level, catalog=catalog)
    if args.json:
        print(json.dumps([asdict(p) for p in patients], indent=1))
        return EXIT_OK
    marks = {"all": "[local]", "some": "[partly local]", "none": ""}
    n = sum(len(p.studies) for p in patients)
    print(f"{n} stud{'y' if n == 1 else 'ies'} of {len(patients)} patient(s) on {node.name}")
    for p in patients:
        print(f"{p.name or '(no name)'}  ID {p.patient_id}  born {p.birth_date or '?'}")
        for st in p.studies:
            count = "" if st.instances is None else f", {st.instances} instances"
            n_series = "" if st.n_series is None else f"{st.n_series} series"
            print(f"  study {st.uid}  {st.date}  {','.join(st.modalities)}  "
                  f"{st.description!r}  acc {st.accession_number or '-'}  "
                  f"{n_series}{count} {marks[st.in_catalog]}".rstrip())
            for se in st.series:
                number = "-" if se.series_number is None else se.series_number
                print(f"    series {se.uid}  #{number}  {se.modality}  {se.description!r}  "
                      f"{se.instances} instances {marks[se.in_catalog]}".rstrip())
    return EXIT_OK


def _add_find(psub) -> None:
    t = psub.add_parser("find", help="query a node: patients, studies, series",
                        description="Query NAME by C-FIND or QIDO-RS. Wildcards as DICOM "
                                    "defines them: * any characters, ? one character. Dates "
                                    "YYYYMMDD or YYYYMMDD-YYYYMMDD. Series already in the local "
                                    "catalog are marked [local].")
    t.add_argument("name", help="the node")
    t.add_argument("--patient-name", help="e.g. 'DOE*'")
    t.add_argument("--patient-id")
    t.add_argument("--birth-date", metavar="YYYYMMDD")
    t.add_argument("--date", metavar="RANGE", help="study date YYYYMMDD[-YYYYMMDD]")
    t.add_argument("--modality", help="CT, MR, ... (studies holding such series)")
    t.add_argument("--accession")
    t.add_argument("--description", help="study description")
    t.add_argument("--study", metavar="UID", help="one study")
    t.add_argument("--level", choices=["study", "series"], default="series",
                   help="stop at studies, or list their series too (default)")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(func=cmd_pacs_find)


_EXTRA.append(_add_find)


# -- get --------------------------------------------------------------------------------------
def cmd_pacs_get(args) -> int:
    from medview.cli._common import terminal_progress
    from medview.pacs.nodes import get_node
    from medview.pacs.query import locate
    from medview.pacs.retrieve import retrieve

    node = get_node(args.name)
    partial = False
    with _catalog(args) as catalog:
        for uid in args.uids:
            study_uid, series_uid = locate(node, uid)
            with terminal_progress(f"retrieving {uid[-20:]}") as progress:
                report = retrieve(node, study_uid, series_uid, method=args.method,
                                  root=args.store, catalog=catalog, progress=progress,
                                  associations=args.associations)
            print(report.summary())
            if not report.complete:
                partial = True
                for sop in report.missing[:args.max_errors]:
                    print(f"  missing {sop}", file=sys.stderr)
                if len(report.missing) > args.max_errors:
                    print(f"  ... and {len(report.missing) - args.max_errors} more",
                          file=sys.stderr)
    return EXIT_PARTIAL if partial else EXIT_OK


def _add_get(psub) -> None:
    t = psub.add_parser("get", help="retrieve studies or series into the catalog",
                        description="Retrieve each UID (a study or a series) from NAME over "
                                    "C-GET, C-MOVE (to medview's own storage SCP) or WADO-RS "
                                    "into the store and the catalog. What is already here is "
                                    "not asked for again, so after a failure the same command "
                                    "fetches only what is missing. Exit status 3 when "
                                    "something is still missing (listed).")
    t.add_argument("name", help="the node")
    t.add_argument("uids", nargs="+", metavar="UID", help="study or series instance UID")
    t.add_argument("--method", choices=["get", "move", "wado"],
                   help="default: the node's setting (DICOM) or wado (DICOMweb)")
    t.add_argument("--store", metavar="DIR",
                   help="where files go (default: pacs/ in the user data folder)")
    t.add_argument("--associations", type=association_count, metavar="N",
                   help="C-GET / C-MOVE over up to N associations at once (default: the "
                        "node's setting, 'medview pacs add ... --associations N')")
    t.set_defaults(func=cmd_pacs_get)


_EXTRA.append(_add_get)


# -- listen -----------------------------------------------------------------------------------
def cmd_pacs_listen(args) -> int:
    import signal
    import threading

    from medview.pacs.scp import StorageSCP
    from medview.pacs.storage import default_store

    if not args.allow:
        raise ValueError("give the AE titles allowed to send with --allow AET (repeat it)")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def on_instance(path, uids):
        if args.verbose:
            print(f"stored {uids[2]} -> {path}", flush=True)

    root = args.store or default_store()
    with _catalog(args) as catalog:
        scp = StorageSCP(args.aet, args.port, root, allowed_aets=args.allow, host=args.host,
                         catalog=catalog, on_instance=on_instance)
        scp.start()
        print(f"listening as {scp.ae_title} on {args.host or '*'}:{scp.port}, storing into "
              f"{root}, accepting {', '.join(scp.allowed)} (Ctrl-C to stop)", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            scp.stop()
            signal.signal(signal.SIGTERM, previous)
        print(f"stopped: {len(scp.received)} instance(s) stored, {len(scp.failures)} refused",
              flush=True)
    return EXIT_OK


def _add_listen(psub) -> None:
    t = psub.add_parser("listen", help="the storage SCP: accept C-STORE into the catalog",
                        description="Listen for C-STORE from the AE titles given with --allow "
                                    "(others are rejected), store the files under paths "
                                    "medview builds (never from DICOM values) and index them "
                                    "into the catalog when each association ends. Runs until "
                                    "Ctrl-C or SIGTERM.")
    t.add_argument("--aet", default="MEDVIEW", help="our AE title (default MEDVIEW)")
    t.add_argument("--port", type=int, default=11112, help="TCP port (default 11112)")
    t.add_argument("--host", default="", help="address to listen on (default: all)")
    t.add_argument("--allow", action="append", metavar="AET",
                   help="a calling AE title allowed to send (repeat)")
    t.add_argument("--store", metavar="DIR",
                   help="where files go (default: pacs/ in the user data folder)")
    t.add_argument("--verbose", action="store_true", help="a line per stored instance")
    t.set_defaults(func=cmd_pacs_listen)


_EXTRA.append(_add_listen)


# -- send -------------------------------------------------------------------------------------
def send_and_report(node_name: str, items, *, catalog, max_listed: int = 20,
                    associations: int | None = None) -> int:
    """Send ``items`` to node ``node_name``, print the summary and what failed; exit status."""
    from medview.cli._common import terminal_progress
    from medview.pacs.nodes import get_node
    from medview.pacs.send import DEFAULT_ASSOCIATIONS, send

    node = get_node(node_name)
    with terminal_progress(f"sending to {node.name}") as progress:
        report = send(node, items, catalog=catalog,
                      associations=associations or DEFAULT_ASSOCIATIONS, progress=progress)
    print(report.summary())
    for path, reason in report.failed[:max_listed]:
        print(f"  not stored: {path}: {reason}", file=sys.stderr)
    if len(report.failed) > max_listed:
        print(f"  ... and {len(report.failed) - max_listed} more", file=sys.stderr)
    if not report.sent and report.failed:
        return EXIT_ERROR
    return EXIT_OK if report.complete else EXIT_PARTIAL


def cmd_pacs_send(args) -> int:
    with _catalog(args) as catalog:
        return send_and_report(args.name, args.items, catalog=catalog,
                               max_listed=args.max_errors, associations=args.associations)


def _add_send(psub) -> None:
    t = psub.add_parser("send", help="send files, folders, catalog series or studies",
                        description="Store each ITEM (a DICOM file, a folder of them, or a "
                                    "series or study UID of the catalog) on NAME by C-STORE "
                                    "or STOW-RS. Compressed files go as they are when the "
                                    "peer accepts their transfer syntax, else decoded. Exit "
                                    "status 3 when some were not stored (listed), 1 when "
                                    "none were.")
    t.add_argument("name", help="the node")
    t.add_argument("items", nargs="+", metavar="ITEM", help="file, folder or UID")
    t.add_argument("--associations", type=int, default=None, metavar="N",
                   help="C-STORE over up to N associations at once (default 4; parts whose "
                        "association the peer refuses go afterwards over one)")
    t.set_defaults(func=cmd_pacs_send)


_EXTRA.append(_add_send)
