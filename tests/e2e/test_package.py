"""The packaged application end to end: build the bundle, the .deb and the tarball with
``packaging/build.sh`` (reused when nothing changed since the last build; a fresh clone builds),
install the .deb into a fresh folder with ``dpkg -x``, and run the installed ``medview`` with a
PATH that holds no Python: ``--version``, ``selftest`` offscreen, the CLI subcommands on the
demo study, and the window under Xvfb on the demo study with a screenshot of the X screen.

Run as a stage of its own after the other tests (scripts/test.sh): the build takes minutes.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_validate import assert_valid_dicom
from realparts import REPO, require_tool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VERSION = re.search(r'__version__ = "(.*)"', (REPO / "medview" / "__init__.py").read_text())[1]
# the shared libraries Qt's xcb platform needs on the target (shared/ENVIRONMENT.md)
XCB_DEPENDS = {"libgl1", "libegl1", "libfontconfig1", "libglib2.0-0", "libxkbcommon0",
               "libxkbcommon-x11-0", "libx11-xcb1", "libxcb-cursor0", "libxcb-icccm4",
               "libxcb-image0", "libxcb-keysyms1", "libxcb-randr0", "libxcb-render-util0",
               "libxcb-shape0", "libxcb-shm0", "libxcb-sync1", "libxcb-util1",
               "libxcb-xfixes0", "libxcb-xkb1", "libdbus-1-3"}


@pytest.fixture(scope="module")
def packages() -> dict[str, Path]:
    """Build (or reuse) the packages; their paths."""
    require_tool("dpkg-deb")
    proc = subprocess.run(["bash", str(REPO / "packaging" / "build.sh")], capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    dist = REPO / "dist"
    debs = sorted(dist.glob(f"medview_{VERSION}_*.deb"))
    tarballs = sorted(dist.glob(f"medview-{VERSION}-linux-*.tar.gz"))
    assert len(debs) == 1 and len(tarballs) == 1, proc.stdout
    figures = dist / "build-figures.json"
    if figures.is_file():
        print("build figures:", figures.read_text())
    return {"deb": debs[0], "tarball": tarballs[0]}


@pytest.fixture(scope="module")
def installed(packages, tmp_path_factory):
    """The .deb unpacked into a fresh root, as dpkg would install it."""
    root = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg-deb", "-x", str(packages["deb"]), str(root)], check=True, timeout=600)
    # the package's /usr/bin/medview links to /opt/medview/medview (absolute, Debian policy):
    # here a folder on PATH with the same link into the unpacked tree stands in for /usr/bin
    bindir = bin_dir(root)
    bindir.mkdir()
    (bindir / "medview").symlink_to(root / "opt" / "medview" / "medview")
    yield root
    shutil.rmtree(root)  # 850 MB: not left for pytest's last-three-runs retention
    shutil.rmtree(bindir)


def bin_dir(root: Path) -> Path:
    """The stand-in for /usr/bin of the unpacked package (holds only ``medview``)."""
    return root.parent / f"{root.name}-usr-bin"


def clean_env(root: Path, home: Path, **extra) -> dict[str, str]:
    """What a desktop session gives a program: no Python anywhere on PATH, no venv."""
    bindir = bin_dir(root)
    env = {"PATH": str(bindir), "HOME": str(home), "LANG": "C.UTF-8",
           "MEDVIEW_DB": str(home / "catalog.sqlite"),
           "MEDVIEW_SETTINGS": str(home / "settings.ini"),
           "MEDVIEW_CACHE_DIR": str(home / "cache")}
    env.update(extra)
    for python in ("python", "python3"):
        assert shutil.which(python, path=env["PATH"]) is None
    return env


def run_installed(root: Path, home: Path, *args: str, timeout: int = 300, **extra):
    return subprocess.run([str(bin_dir(root) / "medview"), *args], capture_output=True,
                          text=True, env=clean_env(root, home, **extra), timeout=timeout,
                          cwd=home)


def test_deb_metadata_files_and_desktop_entries(packages, installed):
    info = subprocess.run(["dpkg-deb", "-f", str(packages["deb"])], capture_output=True,
                          text=True, check=True).stdout
    fields = dict(re.findall(r"^(\S+): (.*)$", info, flags=re.M))
    assert fields["Package"] == "medview" and fields["Version"] == VERSION
    depends = {d.split()[0] for d in fields["Depends"].split(", ")}
    assert depends >= XCB_DEPENDS
    link = installed / "usr" / "bin" / "medview"
    assert link.is_symlink() and os.readlink(link) == "/opt/medview/medview"
    assert os.access(installed / "opt" / "medview" / "medview", os.X_OK)
    changelog = gzip.decompress((installed / "usr/share/doc/medview/changelog.gz").read_bytes())
    assert changelog.startswith(f"medview ({VERSION})".encode())
    assert (installed / "usr/share/doc/medview/copyright").is_file()
    apps = installed / "usr" / "share" / "applications"
    entry = (apps / "medview.desktop").read_text()
    assert "MimeType=application/dicom;" in entry and "Icon=medview" in entry
    assert "inode/directory" not in entry  # only the hidden "open folder" entry claims folders
    assert "inode/directory" in (apps / "medview-open-folder.desktop").read_text()
    assert (installed / "usr/share/icons/hicolor/scalable/apps/medview.svg").is_file()
    assert (installed / "usr/share/icons/hicolor/256x256/apps/medview.png").is_file()
    # Help ▸ User Guide: the guide and every picture it shows are in the bundle
    docs = installed / "opt" / "medview" / "_internal" / "docs"
    guide = (docs / "user-guide.md").read_text()
    pictures = re.findall(r"\]\((images/[^)]+)\)", guide)
    assert pictures and all((docs / p).is_file() for p in pictures)
    mime = (installed / "usr/share/mime/packages/medview.xml").read_text()
    assert 'pattern="DICOMDIR"' in mime
    validate = require_tool("desktop-file-validate")
    for desktop in apps.glob("*.desktop"):
        proc = subprocess.run([validate, str(desktop)], capture_output=True, text=True)
        assert proc.returncode == 0 and "error" not in proc.stdout.lower(), proc.stdout


# Qt plugins for other sessions than X11, loaded only there: their system libraries are not in
# Depends (a Wayland desktop has them)
OPTIONAL_ELF = re.compile(r"wayland|WlShell|libqgtk3", re.IGNORECASE)


def _package_closure(packages: set[str]) -> set[str]:
    """``packages`` and everything they depend on, as installed here, plus the essentials."""
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        out = subprocess.run(["dpkg-query", "-W", "-f=${Pre-Depends}, ${Depends}", name],
                             capture_output=True, text=True)
        for alternatives in out.stdout.split(","):
            if alternatives.strip():
                todo += [a.split()[0].split(":")[0] for a in alternatives.split("|")]
    essential = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Essential}\n"],
                               capture_output=True, text=True, check=True).stdout
    return seen | {ln.split()[0] for ln in essential.splitlines() if ln.endswith(" yes")}


def _owner(path: str) -> str | None:
    for candidate in (path, "/usr" + path, path.removeprefix("/usr")):
        out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0]
    return None


def test_the_system_libraries_the_bundle_needs_come_from_its_depends(packages, installed):
    """ldd of every ELF file in the bundle, resolved as the bootloader does (its own folder
    first): each library taken from the system belongs to a package in Depends or below."""
    require_tool("ldd")
    bundle = installed / "opt" / "medview"
    internal = bundle / "_internal"
    info = subprocess.run(["dpkg-deb", "-f", str(packages["deb"]), "Depends"],
                          capture_output=True, text=True, check=True).stdout
    allowed = _package_closure({d.split()[0] for d in info.split(", ")})
    env = dict(os.environ, LD_LIBRARY_PATH=str(internal))
    needed: dict[str, set[str]] = {}
    missing: list[str] = []
    for path in sorted(bundle.rglob("*")):
        if (path.is_symlink() or not path.is_file()
                or OPTIONAL_ELF.search(str(path.relative_to(bundle)))):
            continue
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env).stdout
        for line in out.splitlines():
            if "not found" in line:
                missing.append(f"{path.relative_to(bundle)}: {line.strip()}")
            m = re.search(r"=> (/\S+)", line)
            if m and not m[1].startswith(str(bundle)):
                needed.setdefault(os.path.realpath(m[1]), set()).add(path.name)
    assert not missing, "\n".join(missing[:20])
    owners = {lib: _owner(lib) for lib in needed}
    assert None not in owners.values(), [lib for lib, o in owners.items() if o is None]
    outside = {lib: (owners[lib], sorted(users)[:3]) for lib, users in needed.items()
               if owners[lib] not in allowed}
    assert not outside, f"system libraries from packages outside Depends: {outside}"
    assert {"libgl1", "libegl1"} <= {owners[lib] for lib in needed}  # the reason they are there


def test_the_libc_version_in_depends_covers_the_bundle(packages, installed):
    """The newest GLIBC symbol version any ELF file of the bundle asks for is the floor the
    package declares (the bundle runs on the build system's glibc or newer)."""
    objdump = require_tool("objdump")
    info = subprocess.run(["dpkg-deb", "-f", str(packages["deb"]), "Depends"],
                          capture_output=True, text=True, check=True).stdout
    (floor,) = re.findall(r"libc6 \(>= ([0-9.]+)\)", info)
    versions = set()
    for path in (installed / "opt" / "medview").rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
        out = subprocess.run([objdump, "-T", str(path)], capture_output=True, text=True).stdout
        versions |= {tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_([0-9.]+)", out)}
    assert versions and max(versions) == tuple(map(int, floor.split(".")))


def test_installed_selftest_passes_with_no_python_on_path(installed, tmp_path):
    proc = run_installed(installed, tmp_path, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"medview {VERSION}"
    proc = run_installed(installed, tmp_path, "selftest", "--keep", str(tmp_path / "kept"))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "frozen application" in lines[0]
    checks = [ln for ln in lines if ln.startswith(("OK", "FAIL"))]
    assert len(checks) >= 16 and all(ln.startswith("OK") for ln in checks), proc.stdout
    names = " ".join(checks)
    for part in ("JPEG-LS", "JPEG 2000", "JPEG lossless", "JPEG baseline", "RLE", "deflated",
                 "process pool", "DICOM SEG", "GUI (Qt offscreen)", "processing chain",
                 "offload client"):
        assert part in names
    # the resources came from the installed bundle, not from this checkout
    assert str(installed / "opt" / "medview") in proc.stdout
    assert str(REPO / "resources") not in proc.stdout
    # a LABELMAP SEG: checked against the Segmentation IOD it extends
    assert_valid_dicom(tmp_path / "kept" / "selftest_seg.dcm")


def test_installed_cli_subcommands_on_the_demo(installed, tmp_path):
    demo = installed / "opt" / "medview" / "_internal" / "resources" / "demo" / "t1_sag_hfs"
    chain = demo.parents[1] / "chains" / "mr_edge_map.json"
    proc = run_installed(installed, tmp_path, "series", str(demo), "--json")
    assert proc.returncode == 0, proc.stderr
    (series,) = json.loads(proc.stdout)["series"]
    assert series["instances"] == 35 and series["modality"] == "MR"
    proc = run_installed(installed, tmp_path, "index", str(demo))
    assert proc.returncode == 0 and "35 added" in proc.stdout, proc.stdout + proc.stderr
    proc = run_installed(installed, tmp_path, "steps", "--json")
    assert proc.returncode == 0
    ids = {s["id"] for s in json.loads(proc.stdout)}
    assert {"smooth.gaussian", "features.canny", "segment.otsu"} <= ids
    out = tmp_path / "demo.nii.gz"
    proc = run_installed(installed, tmp_path, "convert", str(demo), str(out))
    assert proc.returncode == 0 and out.stat().st_size > 100_000, proc.stderr
    proc = run_installed(installed, tmp_path, "run", str(chain), str(demo), "-o",
                         str(tmp_path / "edges"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "edges" / "edges.nii.gz").is_file(), proc.stdout
    seg = tmp_path / "edges.dcm"
    proc = run_installed(installed, tmp_path, "export", str(tmp_path / "edges" / "edges.nii.gz"),
                         "--source", str(demo), "-o", str(seg))
    assert proc.returncode == 0, proc.stderr
    assert pydicom.dcmread(seg).Modality == "SEG"


def test_the_bundle_runs_the_reindex_walk_helper(installed, tmp_path):
    """A re-index of a big tree starts the frozen executable with the helper's flag (there is
    no ``python -c`` in a bundle): it must walk the subtrees it is handed and report each
    folder's digest as the catalog's own walk takes it."""
    from medview.core.progress import NO_PROGRESS
    from medview.dicom.catalog._walk import _walk, digest_of
    from medview.dicom.catalog._walk_split import CHILD_FLAG

    demo = installed / "opt" / "medview" / "_internal" / "resources" / "demo"
    proc = subprocess.run([str(bin_dir(installed) / "medview"), CHILD_FLAG],
                          input=os.fsencode(demo) + b"\0", capture_output=True,
                          env=clean_env(installed, tmp_path), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    fields = proc.stdout.split(b"\0")
    records = [tuple(fields[i:i + 4]) for i in range(0, len(fields) - 1, 4)]
    expected = [(b"F", digest_of(files).hex().encode(), b"%d" % len(files), os.fsencode(folder))
                for folder, files in _walk(str(demo), NO_PROGRESS)]
    assert len(expected) >= 1 and fields[-1] == b""
    assert records == [*expected, (b"E", b"", b"0", os.fsencode(demo))]


def test_every_subcommand_of_the_source_answers_in_the_bundle(installed, tmp_path):
    """The bundle has the same subcommands as this checkout, and each one starts."""
    import argparse

    from medview.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert {"index", "series", "convert", "steps", "run", "selftest"} <= set(sub.choices)
    for name in sub.choices:
        proc = run_installed(installed, tmp_path, name, "--help", timeout=120)
        assert proc.returncode == 0 and f"medview {name}" in proc.stdout, (name, proc.stderr)


def test_installed_serve_says_the_server_is_not_part_of_the_workstation(installed, tmp_path):
    proc = run_installed(installed, tmp_path, "serve", "--cert", "c.pem", "--key", "k.pem")
    assert proc.returncode == 1
    assert "medview[server]" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_installed_window_under_xvfb_shows_the_demo(installed, tmp_path):
    from PySide6.QtGui import QImage

    xvfb_run = require_tool("xvfb-run")
    shot = tmp_path / "screen.png"
    env = clean_env(installed, tmp_path, MEDVIEW_GUI_SCREENSHOT=str(shot),
                    MEDVIEW_GUI_EXIT_AFTER_MS="120000", QT_QPA_PLATFORM="xcb")
    # xvfb-run itself needs the system PATH; the application gets only the clean environment
    # and the display xvfb-run made
    inner = 'exec /usr/bin/env -i DISPLAY="$DISPLAY" XAUTHORITY="$XAUTHORITY" "$@"'
    # wider than the window's first size (1400×900), so the picture holds all of it
    cmd = [xvfb_run, "-a", "-s", "-screen 0 1600x1024x24", "/bin/sh", "-c", inner, "sh",
           *(f"{k}={v}" for k, v in env.items()),
           # a folder as the desktop entry passes it (Exec=medview %f): the installed demo
           str(bin_dir(installed) / "medview"),
           str(installed / "opt/medview/_internal/resources/demo/t1_sag_hfs")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = re.search(r"window shown ([0-9.]+) s after process start", proc.stderr)
    assert shown, proc.stderr[-2000:]
    print(f"installed app: {shown.group(0)}")
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1600, 1024)
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    raw = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    grey = raw.reshape(1024, image.bytesPerLine())[:, : 1600 * 4].reshape(1024, 1600, 4)[
        ..., :3].mean(axis=2)
    viewer = grey[250:750, 640:1100]  # the slice viewer, right of the series browser
    assert viewer.std() > 20, "the viewer area is almost uniform"
    assert len(np.unique(viewer.astype(np.uint8))) > 50
    assert (grey[30:820, 430:1270] < 30).mean() > 0.15, "no dark background around the image"
    kept = REPO / "build" / "packaging" / "e2e-screenshot.png"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, kept)  # for a person to look at


def test_tarball_runs_where_it_is_unpacked(packages, tmp_path):
    with tarfile.open(packages["tarball"]) as tar:
        names = tar.getnames()
        assert "medview/medview" in names and "medview/install-desktop-entry.sh" in names
        assert any(n.startswith("medview/_internal/resources/selftest/") for n in names)
        tar.extractall(tmp_path / "x", filter="tar")
    app = tmp_path / "x" / "medview" / "medview"
    try:
        assert os.access(app, os.X_OK), "the tarball lost the executable bit"
        proc = subprocess.run([str(app), "--version"], capture_output=True, text=True,
                              timeout=120, env={"PATH": "/nonexistent", "HOME": str(tmp_path)})
        assert proc.returncode == 0 and proc.stdout.strip() == f"medview {VERSION}"

        # the per-user desktop entry the tarball's script installs runs this medview
        home = tmp_path / "home"
        script = app.parent / "install-desktop-entry.sh"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
        subprocess.run([str(script)], check=True, env=env, timeout=60, capture_output=True)
        entry = home / ".local/share/applications/medview.desktop"
        assert f'Exec="{app}" %f' in entry.read_text().splitlines()
        assert (home / ".local/share/icons/hicolor/scalable/apps/medview.svg").is_file()
        check = subprocess.run([require_tool("desktop-file-validate"), str(entry)],
                               capture_output=True, text=True)
        assert check.returncode == 0 and "error" not in check.stdout.lower(), check.stdout
        subprocess.run([str(script), "--remove"], check=True, env=env, timeout=60,
                       capture_output=True)
        assert not entry.exists()
    finally:
        shutil.rmtree(tmp_path / "x")
