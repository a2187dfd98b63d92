"""The text around the image: corner overlays and the status-bar readout, without Qt."""

from __future__ import annotations

import math

from medview.app.state import Sample, ViewerState

__all__ = ["corner_texts", "direction_letters", "edge_texts", "format_date", "format_number",
           "format_person_name", "format_sample", "loading_text"]

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
EDGES = ("left", "right", "top", "bottom")

#: Patient directions of the LPS axes: (letter for -axis, letter for +axis).
_AXIS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))
#: A second letter is added when the direction leans this much (cosine) towards another axis,
#: about 15°: an oblique plane reads "RA", a straight one "R".
OBLIQUE_COSINE = 0.25


def format_person_name(name: str) -> str:
    """DICOM PN ``Family^Given^Middle^Prefix^Suffix`` → ``Family, Given Middle``."""
    if not name:
        return ""
    name = str(name).split("=")[0]  # alphabetic representation only
    parts = [p.strip() for p in name.split("^")]
    family = parts[0]
    given = " ".join(p for p in parts[1:3] if p)
    return f"{family}, {given}" if family and given else (family or given)


def format_date(value: str) -> str:
    """DICOM DA ``YYYYMMDD`` → ``YYYY-MM-DD``; anything else unchanged."""
    value = str(value or "").strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def format_number(value: float) -> str:
    """A value as a reader wants it: integers without decimals, others with up to 4 digits."""
    value = float(value)
    if math.isfinite(value) and value == round(value) and abs(value) < 1e12:
        return str(int(round(value)))
    return f"{value:.4g}"


def direction_letters(vector) -> str:
    """The patient direction of an LPS vector: its dominant axis letter, then a second one
    when the vector is oblique (e.g. ``(1, 0, 0)`` → ``"L"``, ``(-0.7, -0.7, 0)`` → ``"RA"``).
    """
    v = [float(c) for c in vector]
    norm = math.sqrt(sum(c * c for c in v))
    if not norm or not math.isfinite(norm):
        return ""
    v = [c / norm for c in v]
    order = sorted(range(3), key=lambda axis: -abs(v[axis]))
    letters = ""
    for rank, axis in enumerate(order[:2]):
        if rank == 0 or abs(v[axis]) >= OBLIQUE_COSINE:
            letters += _AXIS_LETTERS[axis][v[axis] > 0]
    return letters


def edge_texts(state: ViewerState, plane: str | None = None) -> dict[str, str]:
    """The orientation letters on the four edges of a view ('' with no volume).

    ``plane`` is the view (default: the acquired plane, shown as stored: index x to the
    right and index y downwards). The right edge lies along the LPS direction of the
    screen's right, the bottom edge along the screen's down, the others opposite them.
    """
    vol = state.volume
    if vol is None:
        return dict.fromkeys(EDGES, "")
    plane = plane or state.native_plane
    if state.mpr.rotated:  # an oblique plane: the frame's screen axes
        axes = state.mpr.current_frame().views[plane]
        right, down = axes[:, 0], axes[:, 1]
    else:
        right, down = state.geometry(plane).screen_axes(vol.direction)
    return {
        "left": direction_letters(-right),
        "right": direction_letters(right),
        "top": direction_letters(-down),
        "bottom": direction_letters(down),
    }


def corner_texts(state: ViewerState, plane: str | None = None) -> dict[str, str]:
    """The four corner overlays of a view, one string (with newlines) per corner.

    top left: patient name and ID; top right: study date, series number and description,
    modality; bottom left: the plane (reformats), slice k/n and its position (mm); bottom
    right: W/L and zoom. ``plane`` is the view (default: the acquired plane).
    """
    vol = state.volume
    if vol is None:
        return dict.fromkeys(CORNERS, "")
    plane = plane or state.native_plane
    meta = vol.metadata
    top_left = [format_person_name(meta.get("PatientName") or "") or "(no name)"]
    if meta.get("PatientID"):
        top_left.append(f"ID {meta['PatientID']}")

    top_right = []
    if meta.get("StudyDate"):
        top_right.append(format_date(meta["StudyDate"]))
    series = str(meta.get("SeriesDescription") or "").strip()
    number = meta.get("SeriesNumber")
    if number is not None:
        series = f"#{number} {series}".strip()
    if series:
        top_right.append(series)
    if meta.get("Modality"):
        top_right.append(str(meta["Modality"]))

    bottom_left = []
    native = plane == state.native_plane
    if not native:
        bottom_left.append(f"{plane.capitalize()} (reformat)")
    if state.mpr.rotated:
        bottom_left.append("Oblique")
    else:
        bottom_left.append(f"Slice {state.plane_slice(plane) + 1}/{state.plane_n_slices(plane)}")
        slab = state.slab.overlay_text()  # "MIP 10 mm" (issue 17)
        if slab:
            bottom_left.append(slab)
    position = state.slice_position_mm() if native else state.plane_position_mm(plane)
    if position is not None and not state.mpr.rotated:  # an oblique plane has no slice
        bottom_left.append(f"Pos {position:.1f} mm")
    loading = loading_text(state)
    if loading:
        bottom_left.append(loading)
    if native and getattr(state, "is_key_slice", None) and state.is_key_slice(
            state.plane_slice(plane)):
        bottom_left.append("★ Key image")

    if vol.is_rgb:
        bottom_right = []
    else:
        bottom_right = [
            f"W {format_number(state.window_width)}  L {format_number(state.window_center)}"
        ]
    bottom_right.append(f"Zoom {state.planes[plane].zoom:.2f}×")
    return {
        "top_left": "\n".join(top_left),
        "top_right": "\n".join(top_right),
        "bottom_left": "\n".join(bottom_left),
        "bottom_right": "\n".join(bottom_right),
    }


def loading_text(state: ViewerState) -> str:
    """``"Loading n/N"`` while the open volume's slices are still arriving,
    ``"Incomplete n/N"`` when its load stopped early, else ''."""
    if getattr(state, "loaded_mask", None) is None:
        return ""
    what = "Loading" if state.is_loading else "Incomplete"
    return f"{what} {state.n_loaded}/{state.n_slices}"


def format_sample(sample: Sample | None) -> str:
    """The status-bar readout for the voxel under the cursor ('' outside the image)."""
    if sample is None:
        return ""
    x, y, z = sample.index
    if isinstance(sample.value, tuple):
        value = "RGB(" + ", ".join(str(v) for v in sample.value) + ")"
    else:
        value = format_number(sample.value)
        if sample.units:
            value += f" {sample.units}"
    lps = sample.lps
    return (f"x {x}  y {y}  z {z}   value {value}   "
            f"LPS ({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm")
