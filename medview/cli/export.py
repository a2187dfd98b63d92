"""``medview export``: a label map or volume file as DICOM in its source study."""

from __future__ import annotations

import json
from pathlib import Path

from medview.cli._common import EXIT_OK, catalog_for


def cmd_export(args) -> int:
    import medview
    from medview.core.labelmap import LabelMap
    from medview.dicom.export.dispatch import export_dicom
    from medview.formats.volume_io import read_volume

    if Path(args.output).exists() and not args.force:
        raise FileExistsError(f"{args.output} exists; add --force to replace it")
    value = read_volume(args.input)
    kind = args.kind
    if kind is None:
        kind = "capture" if value.is_rgb else (
            "seg" if args.output.lower().endswith(".dcm") else "series")
    source = medview.load(args.source, series=args.series,
                          catalog=catalog_for(args, args.source))
    if kind == "seg":
        value = _labels_on_source(value, source, args)
    elif not value.same_grid(source, atol=1e-3) and args.resample:
        from medview.core.registration.resample import resample_to_grid

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
    from medview.core.registration.resample import resample_to_grid

    back = resample_to_grid(source, labels)
    return LabelMap.like(source, back.array, segments=labels.segments)


def add_parser(sub, common) -> None:
    """Add this group's commands to ``sub`` (``common``: the global options)."""
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
