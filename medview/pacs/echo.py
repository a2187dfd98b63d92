"""Verify a node: C-ECHO for DIMSE, a one-study QIDO probe for DICOMweb."""

from __future__ import annotations

import time

from medview.pacs.nodes import DimseNode, Node

__all__ = ["echo"]

VERIFICATION = "1.2.840.10008.1.1"


def echo(node: Node) -> str:
    """Check that ``node`` answers; a one-line description of what worked.

    Raises
    ------
    medview.pacs.errors.PacsError
        Naming what failed: refused, timeout, association rejected (with its reason), 401.
    """
    t0 = time.perf_counter()
    if isinstance(node, DimseNode):
        from medview.pacs.dimse import association, check_status, status_text

        with association(node, [VERIFICATION]) as assoc:
            code = check_status(node, "C-ECHO", assoc.send_c_echo())
        if code != 0:
            from medview.pacs.errors import PacsError

            raise PacsError(f"{node.name}: C-ECHO answered {status_text(code)}")
        return f"{node.name}: C-ECHO OK ({(time.perf_counter() - t0) * 1000:.0f} ms)"
    from medview.pacs.web import web_client, web_errors

    with web_errors(node, "QIDO-RS probe"):
        web_client(node).search_for_studies(limit=1)
    return f"{node.name}: QIDO-RS OK ({(time.perf_counter() - t0) * 1000:.0f} ms)"
