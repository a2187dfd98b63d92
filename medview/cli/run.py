"""``medview steps`` and ``run``: processing chains, one input, a batch or remote."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medview.cli._common import EXIT_ERROR, EXIT_OK, catalog_for, open_catalog, terminal_progress
from medview.dicom.display import printable


def cmd_steps(args) -> int:
    from medview.pipeline.registry import all_steps, broken_plugins

    steps = all_steps()
    if args.json:
        # every entry has an "id" and "available", so a script can index the list by id
        described = [{**s.describe(), "available": True} for s in steps]
        described += [{"id": f"plugin:{b.name}", "plugin": b.name, "entry_point": b.value,
                       "available": False, "error": b.error} for b in broken_plugins()]
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

        vol = medview.load(source, series=args.series, catalog=catalog_for(args, source))
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
        from medview.dicom.export.dispatch import write_dicom_outputs

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
        from medview.cli.pacs import send_and_report

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
        with open_catalog(args) as cat:
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


def add_parser(sub, common) -> None:
    """Add this group's commands to ``sub`` (``common``: the global options)."""
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
