"""``medview serve``: the offload server (FastAPI + uvicorn, TLS, tokens, SQLite job store,
process-pool or Dask executors). The only package that imports FastAPI."""
