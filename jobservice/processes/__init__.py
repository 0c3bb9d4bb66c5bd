"""The processes jobservice runs: a worker, the embedded stack (Temporal dev server, worker and
API in one), the Temporal dev server itself, the monitor and the event loop they share."""
