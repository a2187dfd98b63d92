"""``medview index``, ``series`` and ``convert``: the catalog and files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from medview.cli._common import EXIT_ERROR, EXIT_OK, catalog_for, open_catalog, terminal_progress
from medview.dicom.display import printable


def cmd_index(args) -> int:
    with open_catalog(args) as cat, terminal_progress("indexing") as progress:
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
    from medview.dicom.series.loading import find_series

    catalog = catalog_for(args, args.path)
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
    catalog = catalog_for(args, args.input)
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


def add_parser(sub, common) -> None:
    """Add this group's commands to ``sub`` (``common``: the global options)."""
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
