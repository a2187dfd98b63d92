"""Starting the workstation: the QApplication, the main window, what to open first."""

from __future__ import annotations

import logging
import os
import platform
import sys
from pathlib import Path

__all__ = ["create_app", "dark_palette", "offscreen_check", "run_gui"]

log = logging.getLogger(__name__)

#: Quit this many milliseconds after start (smoke tests, the installer check).
EXIT_AFTER_ENV = "MEDVIEW_GUI_EXIT_AFTER_MS"
#: Save a picture of the screen (of the window where the platform cannot grab the screen) to
#: this PNG once the first series is shown, then quit: the installer's end-to-end check.
SCREENSHOT_ENV = "MEDVIEW_GUI_SCREENSHOT"


def create_app(argv: list[str] | None = None):
    """The QApplication (created once), with pyqtgraph set to row-major ``[y, x]`` images."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv if argv is not None else sys.argv[:1]))
        app.setApplicationName("medview")
        app.setOrganizationName("medview")
    from medview.gui.style import MedviewStyle

    if not isinstance(app.style(), MedviewStyle):
        # also on an application made by someone else (pytest-qt's): what the reader sees
        app.setStyle(MedviewStyle())  # Fusion, with check boxes visible on the dark palette
        app.setPalette(dark_palette())
    # arrays are [z, y, x] everywhere in medview (DESIGN.md)
    pg.setConfigOptions(imageAxisOrder="row-major")
    if "mouseRateLimit" in pg.CONFIG_OPTIONS:
        # pyqtgraph drops mouse moves above 100/s, for plots with many items; a slice view
        # redraws in under a millisecond, and a dropped move can leave a window/level drag
        # behind the mouse. Qt already merges moves when the event loop is busy.
        pg.setConfigOptions(mouseRateLimit=0)
    return app


def dark_palette():
    """A dark grey palette: images are read in dim rooms, and a white panel beside a dark
    image dazzles (radiology workstations are dark for this reason)."""
    from PySide6.QtGui import QColor, QPalette

    base, window, text = QColor(30, 30, 32), QColor(45, 45, 48), QColor(220, 220, 220)
    disabled = QColor(120, 120, 120)
    palette = QPalette()
    role = QPalette.ColorRole
    for r, colour in [
        (role.Window, window), (role.WindowText, text), (role.Base, base),
        (role.AlternateBase, QColor(38, 38, 41)), (role.ToolTipBase, window),
        (role.ToolTipText, text), (role.Text, text), (role.Button, window),
        (role.ButtonText, text), (role.BrightText, QColor(255, 90, 90)),
        (role.Highlight, QColor(42, 110, 180)), (role.HighlightedText, QColor(255, 255, 255)),
        (role.Link, QColor(90, 160, 230)), (role.PlaceholderText, disabled),
    ]:
        palette.setColor(r, colour)
    for r in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, r, disabled)
    return palette


def _exit_after_ms() -> int | None:
    raw = os.environ.get(EXIT_AFTER_ENV, "").strip()
    if not raw:
        return None
    try:
        ms = int(raw)
    except ValueError:
        log.warning("%s=%r is not a whole number of milliseconds; ignored", EXIT_AFTER_ENV, raw)
        return None
    return max(ms, 0)


def seconds_since_process_start() -> float:
    """Wall time since this process started (the cold-start figure of the benchmarks).

    On Linux from the process's start in clock ticks since boot (10 ms resolution);
    psutil's create_time adds the boot time, which the kernel gives in whole seconds.
    """
    import time

    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5), counted after "(comm)"
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        import psutil

        return time.time() - psutil.Process().create_time()


def _report_shown() -> None:
    log.info("window shown %.2f s after process start", seconds_since_process_start())


def _screenshot_when_shown(app, window, path: str) -> None:
    from PySide6.QtCore import QTimer

    def grab() -> None:
        # the screen as the X server shows it; offscreen there is no screen: the window
        pixmap = window.screen().grabWindow(0)
        if pixmap.isNull():
            pixmap = window.grab()
        if pixmap.save(path, "PNG"):
            log.info("screenshot saved to %s", path)
        else:
            log.error("cannot save the screenshot to %s", path)
        window.close()
        app.quit()

    def failed(error) -> None:
        log.error("no screenshot: the series did not open: %s", error.message)
        window.close()
        app.exit(1)

    # let the first image paint before the picture is taken
    window.series_opened.connect(lambda _volume: QTimer.singleShot(500, grab))
    window.series_failed.connect(failed)
    window.import_failed.connect(failed)


def offscreen_check(*, folder: str | os.PathLike) -> str:
    """Create the main window and draw it (the self-test's Qt check); returns what it saw.

    Needs ``QT_QPA_PLATFORM=offscreen`` (or a screen) set before the first QApplication.
    The window's catalog, settings and thumbnail cache go to ``folder``, never the user's.

    Raises
    ------
    RuntimeError
        When a platform plugin is missing or the window draws nothing.
    """
    import pyqtgraph as pg
    import PySide6
    from PySide6.QtCore import QLibraryInfo, qVersion

    from medview.gui.main_window import MainWindow

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    names = {p.name.split(".")[0].removeprefix("lib").removeprefix("q")
             for p in plugins.glob("*") if p.is_file()}
    wanted = {"Linux": {"xcb", "offscreen"}, "Windows": {"windows", "offscreen"},
              "Darwin": {"cocoa", "offscreen"}}.get(platform.system(), {"offscreen"})
    if not wanted <= names:
        raise RuntimeError(f"Qt platform plugins {sorted(wanted - names)} are missing from "
                           f"{plugins} (found {sorted(names)})")
    app = create_app()
    folder = Path(folder)
    window = MainWindow(catalog_path=folder / "catalog.sqlite",
                        settings_path=folder / "settings.ini", thumbnail_dir=folder / "thumbnails")
    try:
        window.resize(800, 600)
        window.show()
        image = window.grab().toImage()
        if image.isNull() or (image.width(), image.height()) != (800, 600):
            raise RuntimeError(f"the main window drew a {image.width()}×{image.height()} "
                               "picture, expected 800×600")
        colours = {image.pixel(x, y) for x in range(0, 800, 16) for y in range(0, 600, 16)}
        if len(colours) < 3:
            raise RuntimeError("the main window drew a flat picture")
    finally:
        window.close()
        window.tasks.shutdown()
        window.deleteLater()
    return (f"Qt {qVersion()} (PySide6 {PySide6.__version__}), pyqtgraph {pg.__version__}, "
            f"platform {app.platformName()}, plugins {', '.join(sorted(names))}; main window "
            "drawn")


def run_gui(path: str | os.PathLike | None = None, demo: bool = False,
            db: str | os.PathLike | None = None) -> int:
    """Open the workstation window and run until it is closed; returns the exit code.

    Parameters
    ----------
    path : path, optional
        A folder, file or DICOMDIR to import into the catalog; its first series opens.
    demo : bool
        Import the bundled demo study and open it (``path`` is then ignored).
    db : path, optional
        The catalog file; default ``$MEDVIEW_DB`` or the user data folder.
    """
    from PySide6.QtCore import QTimer

    from medview.gui.main_window import MainWindow

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_app()
    window = MainWindow(catalog_path=db)
    if not window.geometry_restored:
        window.resize(1400, 900)
    window.show()
    window.series_opened.connect(
        lambda _volume: log.info("series shown %.2f s after process start",
                                 seconds_since_process_start()))
    screenshot = os.environ.get(SCREENSHOT_ENV, "").strip()
    if screenshot:
        _screenshot_when_shown(app, window, screenshot)
    if demo:
        from medview.resources import demo_study

        try:
            window.import_folder(demo_study(), open_first=True)
        except FileNotFoundError as exc:
            log.error("%s", exc)
            window.statusBar().showMessage(f"The demo study is missing: {exc}")
    elif path is not None:
        window.import_folder(path, open_first=True)
    QTimer.singleShot(0, _report_shown)  # runs once the event loop has shown the window
    exit_after = _exit_after_ms()
    if exit_after is None and not screenshot:
        # work autosaved before a crash: offered once the window is up (a modal question)
        QTimer.singleShot(0, window.unsaved.offer_recovery)
    if exit_after is not None:
        def leave() -> None:
            window.close()
            app.quit()

        QTimer.singleShot(exit_after, leave)
    code = app.exec()
    window.tasks.shutdown()
    return int(code)
