"""The chain panel's full run and live preview (a mixin of
:class:`~medview.gui.chain_panel.ChainPanel`, split out of it along that seam: building and
editing the chain there, running it here).

The full run is :meth:`Session.run_chain <medview.app.session.Session.run_chain>` on the
"Run on" executor; its values become layers (:mod:`medview.app.layers`) only when it
finished, so a cancelled or failed run leaves the previous results as they were. The live
preview (:meth:`Session.preview_chain <medview.app.session.Session.preview_chain>`) runs
the chain on the current slice 250 ms after the last change, locally; only the latest
request is shown.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from medview.app.chain_model import result_layer_names
from medview.app.chain_preview import PreviewResult
from medview.app.chain_run import ChainRun
from medview.app.messages import TaskError
from medview.app.models import SlicePreview
from medview.gui.run_on import RunOnCombo
from medview.gui.tasks import Task
from medview.pipeline import executors as executor_registry
from medview.pipeline.chain import ChainError

__all__ = ["ChainRunning"]


class ChainRunning:
    """Run and preview of a ChainPanel (see there)."""

    def _build_run_box(self) -> QWidget:
        box = QWidget(self)
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        h = QHBoxLayout()
        h.addWidget(QLabel("Run on", box))
        self.executor_combo = RunOnCombo(self.run_on, box)
        self.executor_combo.setToolTip("Where the full run happens (the preview is always "
                                       "local)")
        h.addWidget(self.executor_combo, 1)
        self.run_button = QPushButton("Run", box)
        self.run_button.setObjectName("run_chain")
        self.run_button.setToolTip("Run the chain on the whole series in the background")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel", box)
        self.cancel_button.clicked.connect(self.cancel_run)
        h.addWidget(self.run_button)
        h.addWidget(self.cancel_button)
        v.addLayout(h)
        self.progress_bar = QProgressBar(box)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setVisible(False)
        v.addWidget(self.progress_bar)
        h2 = QHBoxLayout()
        self.preview_check = QCheckBox("Live preview", box)
        self.preview_check.setObjectName("live_preview")
        self.preview_check.setToolTip("Re-run the chain on the current slice after each change")
        self.preview_check.toggled.connect(self.set_preview_enabled)
        self.original_check = QCheckBox("Show original", box)
        self.original_check.setToolTip("Hide the preview to compare with the original slice")
        self.original_check.toggled.connect(lambda on: self.state.set_preview_visible(not on))
        h2.addWidget(self.preview_check)
        h2.addWidget(self.original_check)
        h2.addStretch(1)
        v.addLayout(h2)
        self.status = QLabel("", box)
        self.status.setObjectName("chain_status")
        self.status.setWordWrap(True)
        v.addWidget(self.status)
        return box

    # -- full run ----------------------------------------------------------------------
    def run(self) -> Task | None:
        """Run the chain on the whole series in the background (None, with a message, when
        the chain or its inputs are invalid or a run is going on), through
        :meth:`Session.run_chain <medview.app.session.Session.run_chain>`."""
        if self.run_task is not None:
            self.status.setText("A run is going on; wait or cancel it.")
            return None
        try:
            chain = self.model.to_chain()
            task = self.session.run_chain(chain, self.chain_inputs())
        except (ChainError, KeyError) as exc:
            self._report(TaskError("Running the chain", exc, ""))
            return None
        task.signals.progress.connect(self._on_run_progress)
        task.signals.finished.connect(self._on_run_finished)
        task.signals.failed.connect(self._on_run_failed)
        task.signals.cancelled.connect(self._on_run_cancelled)
        self.run_task = task
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.status.setText(task.title + "…")
        self._update_buttons()
        self.run_started.emit(task)
        return task

    def cancel_run(self) -> None:
        if self.run_task is not None:
            self.run_task.cancel()

    def _run_ended(self) -> None:
        self.run_task = None
        self.progress_bar.setVisible(False)
        self._update_buttons()

    def _on_run_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(round(fraction * 1000)))
        if message:
            self.progress_bar.setFormat(f"{message} – %p%")
            self.status.setText(message)

    def _on_run_finished(self, run: ChainRun) -> None:
        self._run_ended()
        values, windows, seconds, main = run.values, run.windows, run.seconds, run.main_output
        chain = run.chain
        # layers carry the chain's output names; unnamed steps their title, not "step3"
        names = result_layer_names(chain, values)
        new = self.layers.add_results({names[k]: v for k, v in values.items()},
                                      windows={names[k]: w for k, w in windows.items()})
        # the chain's last output is what the reader ran it for: shown and selected
        wanted = names.get(main, "")
        self.main_layer = next((layer for layer in reversed(new)
                                if layer.name == wanted or layer.name.startswith(wanted + " (")),
                               new[-1] if new else None)
        if self.main_layer is not None and self.main_layer.kind != "table" \
                and self.main_layer.on_grid:
            self.layers.show(self.main_layer)
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
        self.status.setText(f"Done: {len(new)} layer(s). {timing}")
        self.run_finished.emit(new)

    def _on_run_failed(self, error: TaskError) -> None:
        self._run_ended()
        from medview.remote.errors import RemoteUnavailable

        if isinstance(error.exception, RemoteUnavailable):
            self._offer_local_run(error)
        else:
            self._report(error)
        self.run_failed.emit(error)

    def _offer_local_run(self, error: TaskError) -> None:
        """The endpoint could not be reached (after the client's retries): say so and offer
        to run the chain here instead."""
        from PySide6.QtWidgets import QMessageBox

        self.last_error = error
        where = self.run_on.name
        self.status.setText(f"{where} is unreachable: {error.message}")
        box = QMessageBox(QMessageBox.Icon.Warning, "Endpoint unreachable",
                          f"{where} could not be reached:\n{error.message}\n\n"
                          "Run the chain on this workstation instead?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def answered(button) -> None:
            if box.standardButton(button) == QMessageBox.StandardButton.Yes:
                self.run_on.choose(executor_registry.LOCAL.name)
                self.run()

        box.buttonClicked.connect(answered)
        box.open()  # not exec(): no nested event loop
        self.fallback_box = box

    def _on_run_cancelled(self) -> None:
        self._run_ended()
        self.status.setText("Run cancelled; the earlier results are unchanged.")
        self.run_cancelled.emit()

    # -- live preview ------------------------------------------------------------------
    def set_preview_enabled(self, on: bool) -> None:
        if self.preview_check.isChecked() != bool(on):
            self.preview_check.setChecked(bool(on))
            return
        if on:
            self.start_preview()
        else:
            self.preview_timer.stop()
            self._preview_seq += 1  # whatever is running is no longer wanted
            if self.preview_task is not None:
                self.preview_task.cancel()
            self.state.set_preview(None)

    @property
    def preview_enabled(self) -> bool:
        return self.preview_check.isChecked()

    def _on_chain_changed(self) -> None:
        if self.preview_enabled:
            self.preview_timer.start()

    def _on_slice_changed(self, z: int) -> None:
        if self.preview_enabled:
            self.preview_timer.start()

    def start_preview(self) -> Task | None:
        """Preview the chain on the current slice now (the timer calls this)."""
        self.preview_timer.stop()
        self._preview_seq += 1
        seq = self._preview_seq
        if self.preview_task is not None:
            self.preview_task.cancel()  # latest request wins
        if self.state.volume is None or self.layers.series is None or not len(self.model):
            self.state.set_preview(None)
            return None
        try:
            chain = self.model.to_chain()
            inputs = self.chain_inputs()
        except ChainError as exc:
            self.state.set_preview(None)
            self.status.setText(f"Preview: {exc}")
            return None
        task = self.session.preview_chain(chain, inputs, self.state.cursor[2])
        task.signals.finished.connect(lambda r: self._on_preview_finished(seq, *r))
        task.signals.failed.connect(lambda e: self._on_preview_failed(seq, e))
        self.preview_task = task
        return task

    def _on_preview_finished(self, seq: int, result: PreviewResult, levels) -> None:
        if seq != self._preview_seq or not self.preview_enabled:
            return  # a later request superseded this one
        self.preview_task = None
        self.last_preview = result
        if result.kind == "none" or self.state.volume is None:
            self.state.set_preview(None)
        else:
            if result.kind == "image" and levels is None:
                levels = self.state.window_levels
            self.state.set_preview(SlicePreview(result.z, result.kind, result.image,
                                                result.segments, levels))
        note = "" if result.exact else " (approximate: a step needs the whole volume)"
        self.status.setText(f"Preview of slice {result.z + 1}: {result.name or 'no image'}, "
                            f"{result.seconds * 1000:.0f} ms{note}")
        self.preview_ready.emit(result)

    def _on_preview_failed(self, seq: int, error: TaskError) -> None:
        if seq != self._preview_seq:
            return
        self.preview_task = None
        self.state.set_preview(None)
        self.status.setText(f"Preview failed: {error.message}")
        self.preview_failed.emit(error)

    # -- series ------------------------------------------------------------------------
    def _on_volume_changed(self, volume) -> None:
        if self.preview_enabled:
            self.preview_timer.start()
