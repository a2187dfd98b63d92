"""The :class:`~medview.app.session.Session`'s disclosures: send to a PACS node, share a
de-identified copy, back up to an archive (split out of ``session_actions.py`` along that
seam: what leaves the workstation). Each is audited where it happens
(:mod:`medview.pacs.send`, :mod:`medview.deid.share`, :mod:`medview.pacs.backup`); a share
sent to a node is audited once, by the share.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from medview.app.tasks import Job

__all__ = ["DisclosureMixin"]

PathLike = str | os.PathLike


class DisclosureMixin:
    """Send, share and back up of a Session (see there)."""

    def send(self, node_name: str, files: Sequence[PathLike]) -> Job:
        """Store ``files`` on the configured PACS node ``node_name`` (C-STORE or STOW-RS;
        audited): ``sent(SendReport)``."""
        paths = [Path(f) for f in files]

        def work(progress):
            from medview.pacs.nodes import get_node
            from medview.pacs.send import send

            return send(get_node(node_name), paths, progress=progress)

        return self._start_action(f"Sending to {node_name}", work,
                                  lambda result: self.sent.emit(result))

    def share(self, items: Sequence[PathLike], *, project: str, options=None,
              destination: PathLike | None = None, node_name: str = "",
              mask_burned_in: bool = False) -> Job:
        """Write a de-identified copy of ``items`` (:func:`medview.deid.share.share`) to
        ``destination`` (a folder, or a ``.zip``), or send it to the PACS node
        ``node_name``: ``shared(ShareReport)``. A cancel leaves nothing written.

        Raises
        ------
        ValueError
            If neither or both of ``destination`` and ``node_name`` are given.
        """
        if (destination is None) == (not node_name):
            raise ValueError("share: give a destination or a node_name (one of them)")
        items = list(items)

        def work(progress):
            from medview.deid.share import share

            if not node_name:
                return share(items, project=project, options=options,
                             destination=destination, mask_burned_in=mask_burned_in,
                             progress=progress)
            from medview.pacs.nodes import get_node
            from medview.pacs.send import send

            node = get_node(node_name)
            return share(items, project=project, options=options,
                         sender=lambda written: send(node, written, audit=False,  # share's line
                                                     progress=progress),
                         destination_label=node.describe(), mask_burned_in=mask_burned_in,
                         progress=progress)

        return self._start_action("Sharing de-identified", work,
                                  lambda result: self.shared.emit(result))

    def backup(self, node_name: str, study_uids: Sequence[str] = (), *,
               all_studies: bool = False, results: bool = False, report=None) -> Job:
        """Back up catalog studies ``study_uids`` (every study when ``all_studies``; with
        medview's results when ``results``) to the DICOMweb archive ``node_name``
        (:func:`medview.pacs.backup.backup`, filling ``report`` as it goes):
        ``backed_up(BackupReport)``.

        Raises
        ------
        RuntimeError
            Without a catalog.
        """
        catalog = self.require_catalog("Backing up")
        uids = tuple(study_uids)

        def work(progress):
            from medview.pacs.backup import backup
            from medview.pacs.nodes import get_node

            return backup(get_node(node_name), catalog, uids, all_studies=all_studies,
                          results=results, report=report, progress=progress)

        return self._start_action(f"Backing up to {node_name}", work,
                                  lambda result: self.backed_up.emit(result))
