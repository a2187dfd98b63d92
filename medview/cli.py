"""The ``medview`` command.

``medview`` alone opens the workstation window; the subcommands work without a screen::

    medview index DIR...                 import folders / DICOMDIRs into the catalog
    medview series PATH [--json]         list the series in a folder, file, DICOMDIR or UID
    medview convert INPUT OUTPUT         DICOM series → NIfTI / NRRD / MHA
    medview steps [--json]               the processing steps and their parameters
    medview run CHAIN INPUT... -o OUT    run a processing chain (--dicom-out FOLDER: DICOM too;
                                         --remote NAME: on an offload endpoint;
                                         --send NODE: the DICOM to a PACS)
    medview export INPUT -o OUT --source DICOM
                                         a label map / volume file → DICOM SEG / series / SC
    medview serve --cert C --key K       the offload server (make-cert, add-token,
                                         list-tokens, revoke-token)
    medview remote add|list|remove       offload endpoints
    medview pacs add|list|remove|echo|find|get|send|listen
                                         PACS nodes, query, retrieve, send, storage SCP
    medview catalog wipe [--yes]         remove what medview keeps about patients here
    medview audit [--json]               the disclosure audit log, newest first
    medview share STUDY… --project P --to FOLDER|ZIP|NODE
                                         a de-identified copy (PS3.15 Annex E)
    medview backup NODE --study UID|--all [--results]
                                         verified backup to a DICOMweb archive
    medview selftest                     check an installation, one line per subsystem
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from medview import __version__
from medview.dicom.display import printable

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# progress on a terminal
# ---------------------------------------------------------------------------------------------
@contextmanager
def terminal_progress(description: str, *, enabled: bool | None = None):
    """A :class:`Progress` drawing a bar on stderr when it is a terminal."""
    from medview.core.progress import Progress

    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield Progress()
        return
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=description, unit="‰", leave=False, file=sys.stderr,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def update(fraction: float, message: str) -> None:
        bar.n = int(fraction * 1000)
        bar.set_postfix_str(message[:60], refresh=False)
        bar.refresh()

    try:
        yield Progress(update)
    finally:
        bar.close()


def _catalog(args):
    from medview.dicom.catalog import Catalog

    return Catalog(args.db) if args.db else Catalog()


def _catalog_for(args, source: str):
    """The catalog, when ``source`` is a series UID to look up there; else None."""
    from medview.dicom.load import is_series_uid

    return _catalog(args) if is_series_uid(source) else None


# ---------------------------------------------------------------------------------------------
# subcommands
# ---------------------------------------------------------------------------------------------
def cmd_index(args) -> int:
    with _catalog(args) as cat, terminal_progress("indexing") as progress:
        report = cat.index([Path(p) for p in args.paths], progress=progress)
    print(
        f"indexed {printable(', '.join(args.paths))} into {cat.path}: {report.added} added, "
        f"{report.updated} updated, {report.unchanged} unchanged, {report.removed} removed, "
        f"{report.error_count} unreadable ({report.seconds:.2f} s)"
    )
    for path, warning in report.warnings[: args.max_errors]:
        print(f"  warning: {printable(path)}: {printable(warning)}", file=sys.stderr)
    for path, reason in report.errors[: args.max_errors]:
        print(f"  unreadable: {printable(path)}: {printable(reason)}", file=sys.stderr)
    if report.error_count > args.max_errors:
        print(f"  … and {report.error_count - args.max_errors} more (medview index --max-errors N)",
              file=sys.stderr)
    return EXIT_OK


def cmd_series(args) -> int:
    from medview.dicom.load import find_series

    catalog = _catalog_for(args, args.path)
    with terminal_progress("scanning") as progress:
        plans, errors = find_series(args.path, catalog=catalog, progress=progress)
    rows = [p.summary() for p in plans]
    if args.json:
        json.dump({"series": rows, "errors": [{"path": p, "reason": r} for p, r in errors]},
                  sys.stdout, indent=2)
        print()
        return EXIT_OK
    if not rows:
        print(f"{args.path}: no DICOM image series found", file=sys.stderr)
    for r in rows:
        shape = "×".join(str(s) for s in reversed(r["shape"]))
        spacing = " × ".join(f"{s:.4g}" for s in r["spacing"])
        print(f"{r['series_uid']}")
        print(f"  patient {r['patient_name'] or '-'} ({r['patient_id'] or '-'}), study "
              f"{r['study_date'] or '-'}, {r['modality'] or '?'} #{r['series_number']} "
              f"{r['description']!r}")
        print(f"  {r['instances']} files → {shape} voxels of {spacing} mm")
        if len(r["stacks"]) > 1:
            for i, s in enumerate(r["stacks"]):
                print(f"  stack [{i}] {s['label']}: {s['slices']} slices")
        for w in r["warnings"]:
            print(f"  warning: {printable(w)}")
    for path, reason in errors[: args.max_errors]:
        print(f"unreadable: {printable(path)}: {printable(reason)}", file=sys.stderr)
    return EXIT_OK if rows else EXIT_ERROR


def cmd_convert(args) -> int:
    import medview
    from medview.formats.volume_io import volume_suffix, write_volume

    volume_suffix(args.output)  # fail on an unknown format before reading anything
    if Path(args.output).exists() and not args.force:
        raise FileExistsError(f"{args.output} exists; add --force to replace it")
    catalog = _catalog_for(args, args.input)
    with terminal_progress("loading") as progress:
        vol = medview.load(args.input, series=args.series, stack=args.stack, catalog=catalog,
                           progress=progress)
    for w in vol.warnings:
        print(f"warning: {printable(w)}", file=sys.stderr)
    out = write_volume(vol, args.output, overwrite=args.force)
    shape = "×".join(str(s) for s in reversed(vol.shape))
    print(f"wrote {out} ({shape}, {vol.array.dtype}, spacing "
          f"{' × '.join(f'{s:.4g}' for s in vol.spacing)} mm)")
    return EXIT_OK


def cmd_steps(args) -> int:
    from medview.pipeline.registry import all_steps, broken_plugins

    steps = all_steps()
    if args.json:
        described = [s.describe() for s in steps]
        described += [{"plugin": b.name, "entry_point": b.value, "available": False,
                       "error": b.error} for b in broken_plugins()]
        json.dump(described, sys.stdout, indent=2)
        print()
        return EXIT_OK
    category = None
    for s in steps:
        if s.category != category:
            category = s.category
            print(f"\n{category}")
        print(f"  {s.id} (v{s.version}): {s.title}")
        for inp in s.inputs:
            opt = ", optional" if inp.optional else ""
            print(f"      input {inp.name}: {inp.kind}{opt}")
        for p in s.params:
            default = "required" if p.required else f"default {json.dumps(p.default)}"
            print(f"      {p.name}: {p.type.summary()}, {default}")
    for broken in broken_plugins():
        print(f"\nunavailable: plugin {broken.name} ({broken.value}) failed to load: "
              f"{printable(broken.error)}")
    return EXIT_OK


def _read_input(source: str, kind: str, args):
    from medview.core.labelmap import LabelMap
    from medview.formats.volume_io import SUFFIXES

    if source.lower().endswith(SUFFIXES):
        from medview.formats.volume_io import read_volume

        vol = read_volume(source)
    else:
        import medview

        vol = medview.load(source, series=args.series, catalog=_catalog_for(args, source))
        for w in vol.warnings:
            print(f"warning: {printable(source)}: {printable(w)}", file=sys.stderr)
    if kind == "labelmap":
        import numpy as np

        if vol.array.dtype.kind == "f" and not np.all(np.mod(vol.array, 1) == 0):
            raise ValueError(f"{source}: a label map needs integer labels")
        return LabelMap(vol.array.astype(np.int32 if vol.array.max() > 255 else np.uint8),
                        vol.spacing, vol.origin, vol.direction, vol.metadata)
    return vol


def cmd_run(args) -> int:
    from medview.formats.results import write_results
    from medview.pipeline.chain import Chain
    from medview.pipeline.runner import run_chain

    if not args.output and not args.dicom_out:
        raise ValueError("nothing to write: give -o OUT, --dicom-out FOLDER or both")
    if not args.batch and (args.resume or args.modality or args.study_date):
        raise ValueError("--resume, --modality and --study-date go with --batch")
    if not args.batch and not args.inputs:
        raise ValueError("give the chain's INPUT(s)")
    if args.send:
        if not args.dicom_out:
            raise ValueError("--send NODE sends the DICOM results: give --dicom-out FOLDER too")
        if args.batch:
            raise ValueError("--send works on one run, not with --batch")
        from medview.pacs.nodes import get_node

        get_node(args.send)  # an unknown node fails before any work
    chain = Chain.load(args.chain).with_params(args.set)  # validated before any work
    if args.batch:
        return _run_batch(chain, args)
    if args.dicom_out and Path(args.dicom_out).exists() and not args.force:
        raise FileExistsError(f"{args.dicom_out} exists; add --force to replace it")
    names = list(chain.inputs)
    given: dict[str, str] = {}
    positional = []
    for item in args.inputs:
        name, sep, value = item.partition("=")
        if sep and name in chain.inputs:
            given[name] = value
        else:
            positional.append(item)
    for name in names:
        if name not in given and positional:
            given[name] = positional.pop(0)
    if positional:
        raise ValueError(f"too many inputs: the chain takes {', '.join(names)}")
    missing = [n for n in names if n not in given]
    if missing:
        raise ValueError(f"missing input(s) {', '.join(missing)}: give them in order "
                         f"({' '.join(names)}) or as NAME=PATH")
    inputs = {n: _read_input(given[n], chain.inputs[n], args) for n in names}
    with terminal_progress("running") as progress:
        if args.remote:
            result = _run_remote(chain, inputs, args, progress)
        else:
            result = run_chain(chain, inputs, progress=progress)
    outputs = result.outputs(exclude=inputs)
    written = []
    if args.dicom_out:
        from medview.dicom.export import write_dicom_outputs

        # before the other files: it needs a DICOM input and fails without leaving anything
        dicom = write_dicom_outputs(outputs, args.dicom_out, sources=list(inputs.values()),
                                    overwrite=args.force)
        print(f"wrote {len(dicom)} DICOM file(s) into {args.dicom_out}")
        for item in sorted({Path(args.dicom_out) / p.relative_to(args.dicom_out).parts[0]
                            for p in dicom}):
            print(f"wrote {item}")
    if args.output:
        try:
            written = write_results(outputs, result.main_output, args.output,
                                    image_suffix=args.image_format,
                                    table_format=args.table_format, overwrite=args.force)
        except BaseException:
            if args.dicom_out:  # all or nothing: take back the DICOM folder just written
                import shutil

                shutil.rmtree(args.dicom_out, ignore_errors=True)
            raise
    for path in written:
        print(f"wrote {path}")
    if args.send:
        from medview.cli_pacs import send_and_report

        return send_and_report(args.send, dicom, catalog=None, max_listed=args.max_errors)
    return EXIT_OK


def _run_batch(chain, args) -> int:
    """``--batch``: the chain (one input) on every series of INPUTS (a study folder gives each
    of its series; ``--modality``/``--study-date`` add the catalog's series), results in
    OUT/<name>/ (and DICOM in FOLDER/<name>/), each written atomically as soon as it is done;
    with ``--remote`` the server runs them in parallel (see :mod:`medview.remote.batch`)."""
    from medview.formats.volume_io import SUFFIXES
    from medview.remote.batch import (
        BatchItem,
        catalog_items,
        deliver_to,
        done_marker,
        expand_sources,
    )

    if len(chain.inputs) != 1:
        raise ValueError(f"--batch runs a chain with one input on each INPUT; this chain takes "
                         f"{', '.join(chain.inputs)}")
    if args.output and str(args.output).lower().endswith(SUFFIXES):
        raise ValueError(f"--batch writes a folder per input: give a folder, not {args.output}")
    (name, kind), = chain.inputs.items()
    items = expand_sources(args.inputs, series=args.series)
    if args.modality or args.study_date:
        with _catalog(args) as cat:
            items += catalog_items(cat, modality=args.modality, study_date=args.study_date,
                                   used={i.name for i in items})
    if not items:
        raise ValueError("--batch: no inputs (give INPUTS, or --modality/--study-date to "
                         "take series from the catalog)")
    out = Path(args.output) if args.output else None
    dicom_out = Path(args.dicom_out) if args.dicom_out else None
    skipped = []
    if args.resume:
        skipped = [i.name for i in items if done_marker(i, out, dicom_out).exists()]
        items = [i for i in items if i.name not in set(skipped)]
        for n in skipped:
            print(f"skipped {n}: its results are on disk (--resume)")
    elif not args.force:
        taken = [str(root / i.name) for i in items for root in (out, dicom_out)
                 if root is not None and (root / i.name).exists()]
        if taken:
            raise FileExistsError(f"would overwrite {', '.join(taken)}; use --force, or "
                                  "--resume to skip the inputs already done")

    def load(item: BatchItem) -> dict:
        return {name: _read_input(item.source, kind,
                                  argparse.Namespace(**{**vars(args), "series": item.series}))}

    deliver = deliver_to(out, dicom_out, image_suffix=args.image_format,
                         table_format=args.table_format)
    report = None
    if args.remote:
        from medview.remote.batch import stream_remote
        from medview.remote.client import RemoteClient
        from medview.remote.errors import RemoteUnavailable

        try:
            with RemoteClient.for_endpoint(args.remote, retries=args.retries) as client:
                report = stream_remote(chain, items, client=client, load=load,
                                       deliver=deliver, encoding=args.encoding)
        except RemoteUnavailable as exc:
            if not args.local_fallback:
                raise
            print(f"medview run: {exc}; running locally instead", file=sys.stderr)
            done = {i.name for i in items if done_marker(i, out, dicom_out).exists()}
            items = [i for i in items if i.name not in done]
    if report is None:
        report = _run_batch_locally(chain, items, load, deliver)
    report.skipped = skipped
    print(f"batch: {len(report.written)} written, {len(report.skipped)} skipped, "
          f"{len(report.failed)} failed")
    for n, why in report.failed:
        print(f"  failed {n}: {why}", file=sys.stderr)
    return EXIT_ERROR if report.failed else EXIT_OK


def _run_batch_locally(chain, items, load, deliver):
    from medview.pipeline.runner import run_chain
    from medview.remote.batch import BatchReport

    report = BatchReport([], [], [])
    with terminal_progress("running") as progress:
        for i, item in enumerate(items):
            try:
                inputs = load(item)
                result = run_chain(chain, inputs, progress=progress.sub(
                    i / len(items), (i + 1) / len(items)))
                paths = deliver(item, inputs, result)
            except (OSError, ValueError, RuntimeError) as exc:
                report.failed.append((item.name, f"{type(exc).__name__}: {exc}"))
                continue
            report.written.append(item.name)
            for p in paths:
                print(f"wrote {p}")
    return report


def _run_remote(chain, inputs, args, progress):
    """The chain on endpoint ``args.remote``; locally instead if it is down and
    ``--local-fallback`` was given."""
    from medview.remote.client import RemoteClient
    from medview.remote.errors import RemoteUnavailable
    from medview.remote.run import run_chain_remote

    try:
        with RemoteClient.for_endpoint(args.remote, retries=args.retries) as client:
            return run_chain_remote(chain, inputs, client=client, progress=progress,
                                    encoding=args.encoding, split=args.split)
    except RemoteUnavailable as exc:
        if not args.local_fallback:
            raise RemoteUnavailable(f"{exc}\n  run it locally: the same command without "
                                    "--remote (or add --local-fallback)") from None
        print(f"medview run: {exc}; running locally instead", file=sys.stderr)
    from medview.pipeline.runner import run_chain

    return run_chain(chain, inputs, progress=progress)


def cmd_serve(args) -> int:
    from medview.server.app import ServerSettings
    from medview.server.auth import add_token, default_tokens_path
    from medview.server.serve import default_state_dir, serve

    tokens = Path(args.tokens) if args.tokens else default_tokens_path()
    if args.add_token:
        print(add_token(args.add_token, tokens))
    if not args.cert or not args.key:
        raise ValueError("give --cert FILE and --key FILE (TLS is required; "
                         "'medview serve make-cert DIR' makes a self-signed pair)")
    if args.workers < 1 or args.max_upload_mb <= 0 or args.retention_hours <= 0 or (
            args.max_decoded_mb is not None and args.max_decoded_mb <= 0):
        raise ValueError("--workers, --max-upload-mb, --max-decoded-mb and --retention-hours "
                         "must be positive")
    settings = ServerSettings(
        state_dir=Path(args.state_dir) if args.state_dir else default_state_dir(),
        tokens_path=tokens, max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_decoded_bytes=None if args.max_decoded_mb is None
        else int(args.max_decoded_mb * 2**20),
        public_docs=args.public_docs,
        retention_s=args.retention_hours * 3600.0, workers=args.workers, dask=args.dask,
        dask_fetch=args.dask_fetch_results)
    from medview.cli_serve import check_tokens_at_start

    check_tokens_at_start(tokens)
    serve(settings, host=args.host, port=args.port, cert=args.cert, key=args.key)
    return EXIT_OK


def cmd_serve_make_cert(args) -> int:
    from medview.server.tls import make_self_signed

    cert, key = make_self_signed(args.folder, hosts=tuple(args.host or ("127.0.0.1",
                                                                         "localhost")))
    print(f"wrote {cert} and {key} (self-signed; clients trust it with --ca-bundle {cert})")
    return EXIT_OK


def _read_token(args) -> str:
    if args.token_file:
        return Path(args.token_file).read_text().strip()
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    import getpass

    return getpass.getpass(f"token for {args.name}: ").strip()


def cmd_remote(args) -> int:
    from medview.remote import config

    if args.remote_command == "add":
        ep = config.add_endpoint(args.name, args.url, _read_token(args), ca_bundle=args.ca_bundle)
        print(f"endpoint {ep.name}: {ep.url}" + (f" (CA {ep.ca_bundle})" if ep.ca_bundle else "")
              + f"; token in {config.token_storage()}")
    elif args.remote_command == "remove":
        config.remove_endpoint(args.name)
        print(f"endpoint {args.name} removed (and its token)")
    elif args.remote_command == "check":
        from medview.remote.client import RemoteClient

        with RemoteClient.for_endpoint(args.name, retries=1) as client:
            info = client.info()
        print(f"{args.name}: medview {info.version}, {info.executor}, encodings "
              f"{', '.join(info.encodings)}, uploads up to {info.max_upload_bytes / 2**20:.0f} "
              f"MiB, results kept {info.retention_seconds / 3600:g} h")
    else:
        endpoints = config.list_endpoints()
        if not endpoints:
            print("no endpoints (add one with 'medview remote add NAME https://HOST:PORT')")
        for ep in endpoints:
            print(f"{ep.name}\t{ep.url}" + (f"\tCA {ep.ca_bundle}" if ep.ca_bundle else ""))
    return EXIT_OK


def cmd_export(args) -> int:
    import medview
    from medview.core.labelmap import LabelMap
    from medview.dicom.export import export_dicom
    from medview.formats.volume_io import read_volume

    if Path(args.output).exists() and not args.force:
        raise FileExistsError(f"{args.output} exists; add --force to replace it")
    value = read_volume(args.input)
    kind = args.kind
    if kind is None:
        kind = "capture" if value.is_rgb else (
            "seg" if args.output.lower().endswith(".dcm") else "series")
    source = medview.load(args.source, series=args.series,
                          catalog=_catalog_for(args, args.source))
    if kind == "seg":
        value = _labels_on_source(value, source, args)
    elif not value.same_grid(source, atol=1e-3) and args.resample:
        from medview.core.resample import resample_to_grid

        value = resample_to_grid(source, value)
    if value.shape == source.shape and value.same_grid(source, atol=1e-3):
        # the file's geometry is the source's (to float precision): use the source's exactly
        value = source.with_array(value.array) if not isinstance(value, LabelMap) else value
    written = export_dicom(value, args.output, source=source, kind=kind, overwrite=args.force,
                           series_description=args.description,
                           seg_encoding=args.seg_encoding)
    what = {"seg": "SEG", "series": "derived series", "capture": "Secondary Capture"}[kind]
    print(f"wrote {what} {args.output} ({len(written)} file(s)) referencing series "
          f"{source.metadata.get('SeriesInstanceUID')}")
    return EXIT_OK


def _labels_on_source(vol, source, args):
    """The label file as a LabelMap on the source grid (segments from .segments.json)."""
    import numpy as np

    from medview.core.labelmap import LabelMap, Segment

    arr = vol.array
    if arr.dtype.kind == "f":
        if not np.all(np.mod(arr, 1) == 0):
            raise ValueError(f"{args.input}: a label map needs integer labels")
        arr = arr.astype(np.int32)
    if arr.dtype.kind not in "iub" or (arr.size and arr.min() < 0):
        raise ValueError(f"{args.input}: a label map needs non-negative integer labels")
    segments = ()
    seg_json = Path(args.segments) if args.segments else Path(
        str(args.input).removesuffix(".gz").rsplit(".", 1)[0] + ".segments.json")
    if seg_json.is_file():
        segments = tuple(Segment(int(s["number"]), s["name"], tuple(s["color"]),
                                 tuple(s["category"]), tuple(s["type"]))
                         for s in json.loads(seg_json.read_text()))
    elif args.segments:
        raise FileNotFoundError(f"{args.segments}: no such segments file")
    labels = LabelMap(arr, vol.spacing, vol.origin, vol.direction, {}, (), segments)
    if labels.shape == source.shape and labels.same_grid(source, atol=1e-3):
        return LabelMap.like(source, labels.array, segments=labels.segments)
    if not args.resample:
        raise ValueError(
            f"{args.input}: its grid ({'×'.join(map(str, reversed(labels.shape)))}, origin "
            f"{np.round(labels.origin, 3).tolist()}) is not the source series' grid "
            f"({'×'.join(map(str, reversed(source.shape)))}, origin "
            f"{np.round(source.origin, 3).tolist()}); add --resample to resample it (nearest "
            "neighbour) onto the source slices"
        )
    from medview.core.resample import resample_to_grid

    back = resample_to_grid(source, labels)
    return LabelMap.like(source, back.array, segments=labels.segments)


def cmd_selftest(args) -> int:
    from medview.selftest import run_selftest

    checks = run_selftest(gui=not args.no_gui, keep=args.keep, verbose=args.verbose)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_ERROR


#: what the window needs beyond the core (the ``gui`` extra of pyproject.toml)
GUI_MODULES = ("PySide6", "pyqtgraph")
GUI_INSTALL_HINT = "pip install 'medview[gui]'"


def missing_gui_modules() -> list[str]:
    """The packages of the ``gui`` extra this installation lacks (found without importing
    them: a missing Qt must be a sentence, not a traceback)."""
    import importlib.util

    return [name for name in GUI_MODULES if importlib.util.find_spec(name) is None]


def cmd_gui(args) -> int:
    missing = missing_gui_modules()
    if missing:
        print(f"medview: the workstation window needs {' and '.join(missing)}, which this "
              f"installation lacks. Install the window with:\n    {GUI_INSTALL_HINT}\n"
              "(the command line works without it: medview --help)", file=sys.stderr)
        return EXIT_ERROR
    try:
        from medview.gui.app import run_gui
    except ImportError as exc:  # a broken Qt install: say what is wrong and how to fix it
        print(f"medview: the workstation window is not available ({exc}); reinstall it "
              f"with {GUI_INSTALL_HINT}", file=sys.stderr)
        return EXIT_ERROR
    return run_gui(path=args.path, demo=args.demo, db=args.db)


# ---------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------
def _global_options(*, defaults: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name. The subcommands' copy
    has no defaults (SUPPRESS): argparse lets a subparser's default overwrite what was given
    before the subcommand, which made ``medview --db X index DIR`` ignore ``--db``."""
    def default(value):
        return value if defaults else argparse.SUPPRESS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="PATH", default=default(os.environ.get("MEDVIEW_DB")),
                        help="catalog file (default: $MEDVIEW_DB or the user data folder)")
    common.add_argument("--max-errors", type=int, default=default(20), metavar="N",
                        help="unreadable files to list (default 20)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _global_options(defaults=False)
    p = argparse.ArgumentParser(
        prog="medview", parents=[_global_options(defaults=True)],
        usage="medview [-h] [--version] [--db PATH] [--demo] [PATH]\n"
              "       medview [--db PATH] COMMAND [ARGS...]",
        description="DICOM viewer and analysis workstation. Without a COMMAND, opens "
                    "the window (importing and opening PATH if given).",
        epilog="Global options (--db, --max-errors) may come before or after the COMMAND.",
    )
    window = p.add_argument_group(
        "the window", "PATH: a DICOM folder, file or DICOMDIR to import and open at start "
        "(medview PATH)")
    window.add_argument("--demo", action="store_true", help="open the bundled demo study")
    p.add_argument("--version", action="version", version=f"medview {__version__}")
    # prog: subcommands say "medview index", not the two-line usage above before their name
    sub = p.add_subparsers(dest="command", metavar="COMMAND", prog="medview")

    s = sub.add_parser("index", parents=[common], help="import folders/DICOMDIRs into the catalog")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("series", parents=[common], help="list the series in PATH")
    s.add_argument("path", metavar="PATH", help="folder, file, DICOMDIR or catalog series UID")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_series)

    s = sub.add_parser(
        "convert", parents=[common],
        help="convert a DICOM series to NIfTI (.nii/.nii.gz), NRRD or MHA",
        description="Convert one DICOM series to NIfTI (.nii, .nii.gz; RAS affine as dcm2niix "
                    "writes it, tilted stacks resampled orthogonally), NRRD (.nrrd) or "
                    "MetaImage (.mha) with its patient geometry. Exit status 1 with a message "
                    "on failure; an existing OUTPUT is kept unless --force.",
    )
    s.add_argument("input", help="folder, file, DICOMDIR or catalog series UID")
    s.add_argument("output", help="output file; the format follows the suffix")
    s.add_argument("--series", help="series UID (or number) when INPUT holds several")
    s.add_argument("--stack", type=int, help="stack index when the series holds several")
    s.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("steps", parents=[common], help="list the processing steps")
    s.add_argument("--json", action="store_true", help="with JSON schemas of the parameters")
    s.set_defaults(func=cmd_steps)

    s = sub.add_parser(
        "run", parents=[common], help="run a processing chain on inputs",
        description="Run CHAIN (a JSON file) on INPUTs: DICOM folders/files, catalog series "
                    "UIDs or NIfTI/NRRD/MHA files, in the order of the chain's inputs or as "
                    "NAME=PATH. The chain is validated before any input is read.",
    )
    s.add_argument("chain", help="chain JSON file")
    s.add_argument("inputs", nargs="*", metavar="INPUT")
    s.add_argument("--set", action="append", default=[], metavar="STEP.PARAM=VALUE",
                   help="set a parameter of the chain for this run (repeatable); STEP is the "
                        "step's number, output name or id, e.g. --set 1.sigma_mm=2.5, "
                        "--set lungs.high=-300; see 'medview steps' for the parameters")
    s.add_argument("-o", "--output",
                   help="a file (.nii.gz, .nrrd, …) for the main result, or a folder for all")
    s.add_argument("--dicom-out", metavar="FOLDER",
                   help="also write DICOM into FOLDER (new): label maps as SEG "
                        "(NAME.seg.dcm), volumes as a derived series (NAME/), RGB volumes as "
                        "Secondary Capture (NAME.sc.dcm), all referencing the DICOM input")
    s.add_argument("--send", metavar="NODE",
                   help="then send the --dicom-out files to the PACS node NODE (see 'medview "
                        "pacs'); exit status 3 when some were not stored")
    s.add_argument("--series", help="series UID or number when an input holds several")
    s.add_argument("--image-format", default=".nii.gz",
                   choices=[".nii.gz", ".nii", ".nrrd", ".mha"],
                   help="suffix of images written into a folder (default .nii.gz)")
    s.add_argument("--table-format", default="csv", choices=["csv", "json"])
    s.add_argument("--force", action="store_true", help="replace existing files")
    s.add_argument("--remote", metavar="NAME",
                   help="run on the offload endpoint NAME (see 'medview remote'); inputs are "
                        "de-identified before upload, results checked and re-attached")
    s.add_argument("--encoding", default="auto", choices=["auto", "raw", "blosc2"],
                   help="how volumes travel with --remote (auto: raw on loopback, else blosc2)")
    s.add_argument("--retries", type=int, default=4, metavar="N",
                   help="retries on network errors, with backoff (default 4)")
    s.add_argument("--split", action="store_true",
                   help="with --remote on a Dask server: spread the steps that are safe to "
                        "split (in-plane steps, 3D filters of known reach) over the workers, "
                        "slab by slab; other steps run whole")
    s.add_argument("--local-fallback", action="store_true",
                   help="run locally when the endpoint cannot be reached")
    s.add_argument("--batch", action="store_true",
                   help="run a one-input chain on every series of the INPUTs (a study folder: "
                        "each of its series), results in OUT/<name>/ (DICOM: FOLDER/<name>/) "
                        "written as each is done; with --remote the server runs them in "
                        "parallel")
    s.add_argument("--resume", action="store_true",
                   help="with --batch: skip the inputs whose results are already on disk")
    s.add_argument("--modality", metavar="MOD",
                   help="with --batch: also every catalog series of this modality (e.g. CT)")
    s.add_argument("--study-date", metavar="FROM-TO",
                   help="with --batch: also (or only, with --modality) the catalog's series of "
                        "studies in this date range, YYYYMMDD-YYYYMMDD")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser(
        "serve", parents=[common], help="the offload server (HTTPS, tokens, jobs)",
        description="Serve processing jobs over HTTPS to medview clients holding a token. "
                    "Jobs run in a local process pool, or on a Dask cluster with --dask. "
                    "'medview serve make-cert DIR' makes a self-signed TLS pair, "
                    "'medview serve add-token NAME' a token ('list-tokens', "
                    "'revoke-token NAME').")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8443)
    s.add_argument("--cert", help="TLS certificate (PEM)")
    s.add_argument("--key", help="TLS private key (PEM)")
    s.add_argument("--tokens", "--token-file", dest="tokens", metavar="FILE",
                   help="tokens file (hashes; default server-tokens.json in the config folder)")
    s.add_argument("--add-token", metavar="NAME",
                   help="make a token NAME, print it once, then serve")
    s.add_argument("--state-dir", metavar="DIR",
                   help="job store folder (default: the user data folder's 'server')")
    s.add_argument("--dask", metavar="ADDR", help="run jobs on the Dask scheduler at ADDR "
                                                 "(tcp://HOST:PORT) instead of a local pool")
    s.add_argument("--dask-fetch-results", action="store_true",
                   help="fetch each result from its Dask worker in chunks even when the worker "
                        "can write it into the job folder (workers on other machines without "
                        "a shared --state-dir are always fetched from)")
    s.add_argument("--workers", type=int, default=1, help="local pool processes (default 1)")
    s.add_argument("--max-upload-mb", type=float, default=2048.0,
                   help="largest job upload in MiB, larger ones get 413 (default 2048)")
    s.add_argument("--max-decoded-mb", type=float, default=None,
                   help="most a job's arrays may decode to in MiB (shape × dtype, checked "
                        "before decompression), more gets 413 (default: --max-upload-mb)")
    s.add_argument("--public-docs", action="store_true",
                   help="serve /docs, /redoc and /openapi.json without a token")
    s.add_argument("--retention-hours", type=float, default=24.0,
                   help="results not downloaded are deleted after this (default 24)")
    s.set_defaults(func=cmd_serve)
    serve_sub = s.add_subparsers(dest="serve_command", metavar="SUBCOMMAND")
    t = serve_sub.add_parser("make-cert", help="write a self-signed cert.pem + key.pem into DIR")
    t.add_argument("folder", metavar="DIR")
    t.add_argument("--host", action="append",
                   help="name or IP the certificate is for (repeat; default 127.0.0.1 and "
                        "localhost)")
    t.set_defaults(func=cmd_serve_make_cert)
    from medview.cli_serve import add_token_parsers

    add_token_parsers(serve_sub)

    s = sub.add_parser("remote", parents=[common], help="offload endpoints: add, list, remove")
    rsub = s.add_subparsers(dest="remote_command", metavar="SUBCOMMAND")
    s.set_defaults(func=cmd_remote, remote_command="list")
    t = rsub.add_parser("add", help="add or replace an endpoint; reads its token from stdin")
    t.add_argument("name")
    t.add_argument("url", help="https://HOST:PORT")
    t.add_argument("--ca-bundle", metavar="FILE",
                   help="CA certificate(s) to trust for this endpoint (e.g. its self-signed "
                        "cert.pem); TLS verification stays on")
    t.add_argument("--token-file", metavar="FILE",
                   help="read the token from FILE (default: stdin, or a prompt)")
    t.set_defaults(func=cmd_remote)
    t = rsub.add_parser("list", help="the configured endpoints")
    t.set_defaults(func=cmd_remote)
    t = rsub.add_parser("remove", help="forget an endpoint and its token")
    t.add_argument("name")
    t.set_defaults(func=cmd_remote)
    t = rsub.add_parser("check", help="reach an endpoint with its token and describe it")
    t.add_argument("name")
    t.set_defaults(func=cmd_remote)

    from medview.cli_pacs import add_pacs_parser
    from medview.cli_privacy import add_privacy_parsers

    add_pacs_parser(sub, common)
    add_privacy_parsers(sub, common)

    from medview.cli_share import add_share_parser

    add_share_parser(sub, common)
    from medview.cli_backup import add_backup_parser

    add_backup_parser(sub, common)

    s = sub.add_parser(
        "export", parents=[common],
        help="a label map or volume file → DICOM SEG, derived series or Secondary Capture",
        description="Write INPUT (NIfTI/NRRD/MHA) as DICOM in the study of SOURCE (a DICOM "
                    "folder, file or catalog series UID), referencing SOURCE's images: a "
                    "label map → SEG (OUT ends in .dcm), a scalar volume → a derived series "
                    "(OUT is a new folder), an RGB volume → a Secondary Capture. Segment "
                    "names and colours come from INPUT's .segments.json when present.",
    )
    s.add_argument("input", help="label map or volume file (.nii.gz, .nii, .nrrd, .mha)")
    s.add_argument("--source", required=True, help="the DICOM series INPUT was made on")
    s.add_argument("-o", "--output", required=True, help="SEG/SC file or series folder")
    s.add_argument("--as", dest="kind", choices=["seg", "series", "capture"],
                   help="what to write (default: capture for RGB, seg when OUT ends in .dcm, "
                        "else series)")
    s.add_argument("--segments", help="segments JSON (default INPUT's .segments.json)")
    s.add_argument("--seg-encoding", choices=["labelmap", "binary"], default=None,
                   help="SEG encoding: binary (one frame per segment and slice, which every "
                        "reader knows; the default up to 16 segments) or labelmap (one frame "
                        "per slice holding every segment; the default above 16)")
    s.add_argument("--resample", action="store_true",
                   help="resample INPUT onto the source grid when it is not on it")
    s.add_argument("--series", help="series UID or number when SOURCE holds several")
    s.add_argument("--description", help="series description of the new series")
    s.add_argument("--force", action="store_true", help="replace OUT if it exists")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser(
        "selftest", parents=[common], help="check this installation (no screen needed)",
        description="Open every subsystem without a screen: the resources, each compressed "
                    "transfer syntax's decoder, the catalog, the header scanner's worker "
                    "processes, a processing chain, NIfTI and DICOM SEG writing, and the Qt "
                    "stack offscreen. One line per check, OK or FAIL with the reason; exit "
                    "status 1 when any check failed.",
    )
    s.add_argument("--no-gui", action="store_true",
                   help="skip the Qt check (an installation without the window)")
    s.add_argument("--keep", metavar="DIR", help="keep the files the self-test writes in DIR")
    s.add_argument("--verbose", action="store_true", help="tracebacks of failed checks")
    s.set_defaults(func=cmd_selftest)
    #: the subcommand names; anything else on the command line opens the window
    p.medview_commands = frozenset(sub.choices)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = parser.medview_commands
    if not any(a in commands for a in argv if not a.startswith("-")) and not (
        {"-h", "--help", "--version"} & set(argv)
    ):
        # no subcommand: the GUI, optionally on a path
        gui = argparse.ArgumentParser(prog="medview", add_help=False)
        gui.add_argument("--db", default=os.environ.get("MEDVIEW_DB"))
        gui.add_argument("--demo", action="store_true")
        gui.add_argument("--max-errors", type=int, default=20)  # accepted like everywhere
        gui.add_argument("path", nargs="?")
        args, rest = gui.parse_known_args(argv)
        if rest:
            parser.error(f"unknown arguments: {' '.join(rest)}")
        return cmd_gui(args)
    args = parser.parse_args(argv)
    from medview.core.progress import Cancelled
    from medview.dicom.errors import DicomError
    from medview.remote.errors import RemoteError

    # ChainError is a ValueError: importing medview.pipeline.chain here would load the step
    # registry and NumPy into every command (medview index starts in ~0.1 s without them)
    pacs_errors: tuple = ()
    if args.command in ("pacs", "share", "backup") or getattr(args, "send", None):
        from medview.pacs.errors import PacsError

        pacs_errors = (PacsError,)
    try:
        return args.func(args)
    except (DicomError, FileNotFoundError, FileExistsError, ValueError,
            OSError, RemoteError, *pacs_errors) as exc:
        print(f"medview {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyError as exc:  # an unknown endpoint or token: the message says what to do
        print(f"medview {args.command}: error: {exc.args[0]}", file=sys.stderr)
        return EXIT_ERROR
    except ModuleNotFoundError as exc:
        # an extra this installation lacks: the packaged workstation has no server extra
        hint = (" (the offload server: pip install 'medview[server]' on the server)"
                if args.command == "serve" else "")
        print(f"medview {args.command}: error: this installation lacks the Python package "
              f"{exc.name!r}{hint}", file=sys.stderr)
        return EXIT_ERROR
    except Cancelled:
        print(f"medview {args.command}: cancelled", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"medview {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
