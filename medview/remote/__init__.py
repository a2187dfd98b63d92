"""Offload: the client of ``medview serve``, endpoint configuration, and the wire format.

Client and server share :mod:`medview.remote.wire` (how volumes, label maps, tables and files
travel) and :mod:`medview.remote.schemas` (job status). The client de-identifies every input
before upload (:mod:`medview.remote.deid`), checks every result against the input geometry
and re-attaches it to the original study (:mod:`medview.remote.run`). No Qt, no FastAPI.
"""
