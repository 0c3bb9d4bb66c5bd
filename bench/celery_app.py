"""The Celery baseline: a chord of no-op tasks on the local RabbitMQ, Redis as its backend.

    python -m bench.celery_app N     # prints tasks/s of one chord of N tasks

Only the benchmark uses Celery; it is in the bench extra, never in the product.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from celery import Celery, chord

QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "bench-celery")

app = Celery(
    "bench", broker="amqp://guest:guest@127.0.0.1:5672//", backend="redis://127.0.0.1:6379/15"
)
app.conf.task_default_queue = QUEUE
app.conf.worker_prefetch_multiplier = 100
app.conf.result_expires = 600


@app.task(name="bench.noop")  # type: ignore[untyped-decorator]
def noop(item: int) -> int:
    return item


@app.task(name="bench.count")  # type: ignore[untyped-decorator]
def count(results: list[Any]) -> int:
    return len(results)


def main(items: int) -> None:
    started = time.perf_counter()
    result = chord(noop.s(n) for n in range(items))(count.s())
    done = result.get(timeout=3600)
    seconds = time.perf_counter() - started
    if done != items:
        raise SystemExit(f"the chord counted {done} of {items}")
    print(f"{items / seconds:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]))
