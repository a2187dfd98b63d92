"""PACS as a source and a destination: DIMSE (pynetdicom) and DICOMweb (dicomweb-client).

The API, without Qt, for the CLI (``medview pacs ...``) and the GUI:

- :mod:`medview.pacs.nodes` — configured nodes: :class:`~medview.pacs.nodes.DimseNode`,
  :class:`~medview.pacs.nodes.WebNode`; ``add_node``, ``list_nodes``, ``get_node``,
  ``remove_node``; credentials in the OS keyring.
- :func:`medview.pacs.echo.echo` — verify a node (C-ECHO / a QIDO probe).
- :func:`medview.pacs.query.find` — a :class:`~medview.pacs.query.Query` → Patient → Study →
  Series tree with counts and what the local catalog already holds.
- :func:`medview.pacs.retrieve.retrieve` — a study or series into the catalog (C-GET, C-MOVE,
  WADO-RS) with progress, cancel, a callback per arrived instance, and resume.
- :class:`medview.pacs.scp.StorageSCP` — the storage listener (C-STORE from allowed AE titles).
- :func:`medview.pacs.send.send` — files, catalog series or studies to a node (C-STORE,
  STOW-RS).

Every failure is a :class:`~medview.pacs.errors.PacsError` whose message names the node and
what failed. Nothing here is imported by ``import medview``.
"""
