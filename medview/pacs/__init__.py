"""PACS as a source and a destination: DIMSE (pynetdicom) and DICOMweb (dicomweb-client).

The API, without Qt, for the CLI (``medview pacs ...``) and the GUI:

- :mod:`medview.pacs.nodes` — configured nodes: :class:`~medview.pacs.nodes.DimseNode`,
  :class:`~medview.pacs.nodes.WebNode`; ``add_node``, ``list_nodes``, ``get_node``,
  ``remove_node``; credentials in the OS keyring.
- :func:`medview.pacs.echo.echo` — verify a node (C-ECHO / a QIDO probe).
- :func:`medview.pacs.query.find` — a :class:`~medview.pacs.query.Query` → Patient → Study →
  Series tree with counts and what the local catalog already holds.
- :func:`medview.pacs.retrieve.retrieve` — a study or series into the catalog (C-GET, C-MOVE,
  WADO-RS) with progress, cancel, a callback per arrived instance, one with the PACS's
  instance list (:func:`medview.pacs.listing.instance_table`: positions, so a viewer can
  lay the series out before it arrives), and resume.
- :class:`medview.pacs.scp.StorageSCP` — the storage listener (C-STORE from allowed AE titles).
- :func:`medview.pacs.send.send` — files, catalog series or studies to a node (C-STORE,
  STOW-RS); one line per series in the disclosure audit log (:mod:`medview.audit`).

Every failure is a :class:`~medview.pacs.errors.PacsError` whose message names the node and
what failed. Nothing here is imported by ``import medview``.

For a GUI: run ``find``, ``retrieve`` and ``send`` in a worker with a
:class:`~medview.core.progress.Progress` (``progress.cancel()`` from the GUI thread cancels).
Their ``progress`` callbacks and ``retrieve``'s ``on_instance`` may be called from network
threads (the C-MOVE listener, the instance listing beside a transfer, parallel WADO-RS
requests): hand them to the GUI thread through a queued signal. For example::

    from medview.core.progress import Progress
    from medview.dicom.catalog.db import Catalog
    from medview.pacs.nodes import get_node
    from medview.pacs.query import Query, find
    from medview.pacs.retrieve import retrieve

    node = get_node("pacs")
    patients = find(node, Query(patient_name="DOE*", study_date="20240101-"),
                    catalog=Catalog())
    series = patients[0].studies[0].series[0]           # .in_catalog: all / some / none
    report = retrieve(node, series.study_uid, series.uid, catalog=Catalog(),
                      on_instance=lambda path, uids: ..., progress=Progress(...))
    report.complete, report.missing, report.summary()   # run again to fetch the rest
"""
