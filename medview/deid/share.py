"""Share studies de-identified: a folder with a DICOMDIR, a ZIP, or files handed to a sender.

:func:`share` reads every instance of the inputs (files, folders, catalog study or series
UIDs), de-identifies a copy in memory (:class:`medview.deid.engine.Deidentifier`), optionally
masks burned-in text, and writes the result into a staging folder beside the destination; only
when everything is written is it renamed into place (a folder) or zipped into a temporary file
that replaces nothing and is renamed (a ZIP). A failure or a cancel leaves no partial folder or
ZIP. The sources are only read. One line per series goes to the disclosure audit log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from medview.core.progress import NO_PROGRESS, Progress
from medview.deid import _table, burned_in
from medview.deid.dicomdir_write import Layout, write_dicomdir
from medview.deid.engine import Deidentifier, Tally
from medview.deid.keys import project_key, record_mapping
from medview.deid.profile import EDITION, Options
from medview.deid.report import ShareReport
from medview.dicom.catalog.collect import collect_files
from medview.dicom.errors import PixelDataError
from medview.fileperms import give_user_mode

__all__ = ["REPORT_STEM", "share"]

REPORT_STEM = "SHARE-REPORT"
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
#: DICOMDIR records need these (Type 1 there); a de-identified study may have them empty
_RECORD_DUMMIES = {"StudyDate": "19000101", "StudyTime": "000000", "StudyID": "1",
                   "SeriesNumber": "1", "InstanceNumber": "1"}


def _kind(destination: Path) -> str:
    return "zip" if destination.suffix.lower() == ".zip" else "folder"


def _header(ds):
    """A dataset sharing ``ds``'s elements but not its element map: the directory records'
    dummies go into it without touching the instance."""
    from pydicom.dataset import Dataset

    header = Dataset(dict(ds._dict))   # a shallow copy (Dataset.copy shares the map)
    header.file_meta = ds.file_meta
    return header


def share(items: Iterable[str | os.PathLike], *, project: str, options: Options | None = None,
          destination: str | os.PathLike | None = None,
          sender: Callable[[list[Path]], object] | None = None, destination_label: str = "",
          mask_burned_in: bool = False, catalog=None, audit: bool = True,
          progress: Progress = NO_PROGRESS) -> ShareReport:
    """Write a de-identified copy of ``items``.

    Parameters
    ----------
    items : iterable of path or UID
        Files, folders, catalog study/series UIDs
        (see :func:`medview.dicom.catalog.collect.collect_files`).
    project : str
        The project: its key makes the UIDs, pseudonyms and date offsets.
    options : Options, optional
        The PS3.15 options (default: the Basic Profile alone).
    destination : path, optional
        A new folder (written with a DICOMDIR) or a new ``.zip``; must not exist.
    sender : callable, optional
        Instead of ``destination``: called with the de-identified files (in a temporary
        folder, deleted afterwards), e.g. a PACS send; what it returns is kept as
        ``report.sent``.
    destination_label : str
        How the audit log and the report name a sender's destination.
    mask_burned_in : bool
        Find text in flagged images with tesseract and mask the boxes.

    Returns
    -------
    ShareReport

    Raises
    ------
    FileExistsError
        When ``destination`` exists.
    ValueError
        When nothing shareable is found, or an item names nothing.
    medview.core.progress.Cancelled
        When cancelled (nothing is left behind).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    if (destination is None) == (sender is None):
        raise ValueError("give either a destination (folder or .zip) or a sender")
    options = options or Options()
    t0 = time.perf_counter()
    dest = Path(destination) if destination is not None else None
    if dest is not None and (dest.exists() or dest.is_symlink()):
        raise FileExistsError(f"{dest}: already exists; choose a new folder or ZIP name")
    files = collect_files(items, catalog)
    if not files:
        raise ValueError("nothing to share: no files in " + ", ".join(map(str, items)))
    key = project_key(project)
    engine = Deidentifier(key, options)
    label = options.label() + ("+clean_pixel_data" if mask_burned_in else "")
    report = ShareReport(project, label, EDITION, _table.SOURCE,
                         destination=str(dest) if dest is not None else destination_label)
    if dest is not None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    else:
        stage = Path(tempfile.mkdtemp(prefix="medview-share-"))
    layout = Layout() if dest is not None else None
    audit_series: dict[str, list] = {}    # original series UID → [bytes, new series UID]
    uid_map: dict[str, str] = {}
    written: list[Path] = []
    try:
        for i, path in enumerate(files):
            progress.check()
            progress.update(i / len(files), f"de-identifying {i + 1}/{len(files)}")
            try:
                ds = pydicom.dcmread(path)
                sop_class = str(ds.get("SOPClassUID", ""))
                if not sop_class or sop_class == _DICOMDIR_CLASS or "SOPInstanceUID" not in ds:
                    raise InvalidDicomError("not a composite instance (a DICOMDIR or no SOP "
                                            "Class/Instance UID)")
            except (InvalidDicomError, OSError, ValueError, KeyError) as exc:
                report.not_shared.append({"index": i, "reason": str(exc)[:200],
                                          "local_path": str(path)})
                continue
            original = {k: str(ds.get(k, "")) for k in ("SeriesInstanceUID",
                                                          "StudyInstanceUID")}
            tally = Tally()
            pseudo = engine.deidentify(ds, tally)
            reason = burned_in.flag_reason(ds)
            name = f"{len(written) + 1:06d}.dcm"
            # masked first: the directory record names the transfer syntax written
            flagged = _burned_in(ds, path, reason, name, mask_burned_in) if reason else None
            if layout is not None:
                try:
                    file_id = layout.add(_header(ds), _RECORD_DUMMIES)
                except (ValueError, KeyError, AttributeError) as exc:
                    # a SOP class a DICOMDIR cannot list (before anything is written)
                    report.not_shared.append({"index": i, "local_path": str(path),
                                              "reason": f"cannot be listed in a DICOMDIR "
                                                        f"({str(exc)[:160]})"})
                    continue
                name = "/".join(file_id)
                if flagged is not None:
                    flagged[1]["file"] = name
            out = stage.joinpath(*name.split("/"))
            out.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(out, enforce_file_format=True)
            written.append(out)
            # counted once written: the report describes what was shared
            report.tally.merge(tally)
            if flagged is not None:
                getattr(report, flagged[0]).append(flagged[1])
            for k, v in original.items():
                if v:
                    uid_map[f"uid:{ds.get(k, '')}"] = v
            if pseudo not in report.patients:
                report.patients.append(pseudo)
            new_series = str(ds.get("SeriesInstanceUID", ""))
            entry = report.series.setdefault(new_series, {"modality": str(ds.get(
                "Modality", "")), "instances": 0})
            entry["instances"] += 1
            size = path.stat().st_size
            report.bytes += size
            a = audit_series.setdefault(original["SeriesInstanceUID"], [0, new_series])
            a[0] += size
        if not written:
            raise ValueError("nothing to share: none of the files is a DICOM instance ("
                             + "; ".join(f"{d['local_path']}: {d['reason']}"
                                         for d in report.not_shared[:3]) + ")")
        report.instances = len(written)
        progress.check()
        if layout is not None:
            progress.update(0.98, "writing the DICOMDIR")
            write_dicomdir(stage, layout)
        report.seconds = time.perf_counter() - t0
        if dest is not None:
            _shared_copy(report).write(stage, REPORT_STEM)
            progress.check()
            if _kind(dest) == "zip":
                _zip(stage, dest)   # the staging folder goes in the finally below
            else:
                give_user_mode(stage, folder=True)  # mkdtemp made it 0700
                os.rename(stage, dest)
                stage = None
            if audit:
                _audit(audit_series, str(dest), label, project)
        else:
            _shared_copy(report).write(stage, REPORT_STEM)
            if audit:   # before the data leaves: a send that fails half-way still disclosed
                _audit(audit_series, destination_label, label, project)
            progress.update(0.98, f"sending {len(written)} instance(s)")
            report.sent = sender(written)
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
    record_mapping(project, {**engine.patients, **uid_map})
    _local_copy(report, project)
    progress.update(1.0, f"shared {report.instances} instance(s)")
    return report


def _burned_in(ds, path, reason: str, name: str, mask: bool) -> tuple[str, dict]:
    """Mask ``ds`` when asked and text is found; ("masked" or "not_masked", report entry)."""
    entry = {"file": name, "sop_instance_uid": str(ds.SOPInstanceUID), "reason": reason}
    if "PixelData" not in ds:
        return "not_masked", {**entry, "why": "no pixel data medview can mask (e.g. an "
                                              "encapsulated document): look at it"}
    if not mask:
        return "not_masked", {**entry, "why": "masking not requested (--mask-burned-in)"}
    try:
        frames = burned_in.frames_of(path)  # checked, crashing decoders kept out of process
        boxes = burned_in.detect(frames)
    except burned_in.OcrUnavailable as exc:
        return "not_masked", {**entry, "why": str(exc)}
    except PixelDataError as exc:
        return "not_masked", {**entry, "why": f"its pixel data cannot be decoded "
                                              f"({str(exc).removeprefix(f'{path}: ')[:600]})"}
    if not boxes:
        return "not_masked", {**entry, "why": "OCR found no text: look at it"}
    n = burned_in.mask_dataset(ds, boxes, frames)
    codes = ds.DeidentificationMethodCodeSequence
    if not any(c.CodeValue == "113101" for c in codes):
        from pydicom.dataset import Dataset

        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator = "113101", "DCM"
        item.CodeMeaning = "Clean Pixel Data Option"
        codes.append(item)
    return "masked", {**entry, "boxes": n, "regions": [[b.x, b.y, b.w, b.h] for b in boxes]}


def _shared_copy(report: ShareReport) -> ShareReport:
    """The report without local paths (it travels with the share)."""
    import copy

    out = copy.copy(report)
    if os.sep in out.destination:   # a local path says where the user keeps things: its name
        out.destination = Path(out.destination).name
    out.not_shared = [{k: v for k, v in d.items() if k != "local_path"}
                      for d in report.not_shared]
    return out


def _local_copy(report: ShareReport, project: str) -> None:
    from medview.deid.keys import mapping_path

    folder = mapping_path(project).parent / "reports"
    stem = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
    with contextlib.suppress(OSError):   # the share is done; a missing local copy is no failure
        for p in report.write(folder, stem):
            os.chmod(p, 0o600)


def _zip(stage: Path, dest: Path) -> None:
    from medview.atomic import atomic_file

    # overwrite=False: a file that appeared at dest while writing is left alone (nothing
    # replaced); the zip gets an export's mode (medview.fileperms)
    with (atomic_file(dest, overwrite=False, suffix=".partial", parents=False) as tmp,
          zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z):
        for f in sorted(stage.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(stage).as_posix())


def _audit(series: dict[str, list], destination: str, profile: str, project: str) -> None:
    from medview.audit import record

    for uid, (size, new_uid) in series.items():
        record(action="share", series=[(uid, size)], destination=destination, profile=profile,
               detail={"project": project, "shared_as": new_uid})
