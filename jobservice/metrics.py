"""The Prometheus metrics of jobservice's processes, all in one place.

Each process exports what it does itself: the API the jobs submitted, a worker what its
activities and tracking consumer did. Labels are only ever bounded things (a status, an
outcome, a batch type, a target pipe), never a job's id. The code that counts does so once per
chunk, slice or batch of messages, by the count, not once per item.

Workflow code never touches these: it runs in Temporal's sandbox and is replayed, so what it
counted would be counted again on every replay. Activities and the tracking consumer count.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS_SUBMITTED = Counter(
    "jobservice_jobs_submitted",
    "Jobs this process accepted as new (a resubmission of the same job is not counted).",
    ["batch_type"],
)
JOBS_FINISHED = Counter(
    "jobservice_jobs_finished",
    "Jobs whose final status this worker wrote to their row; at least once: a last write done "
    "again (its local activity run anew after a crash or a timed-out workflow task) counts "
    "again, so this may run a little ahead of the jobs that ended.",
    ["status"],
)
ITEMS = Counter(
    "jobservice_items",
    "Items this worker's chunks delivered: completed or failed by a local handler (or failed "
    "before delivery), or forwarded to a queue.",
    ["outcome", "target_pipe"],
)
CHUNK_SECONDS = Histogram(
    "jobservice_chunk_duration_seconds",
    "How long one dispatch activity took over its chunk of items.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 30, 60, 300),
)
MESSAGES_PUBLISHED = Counter(
    "jobservice_messages_published",
    "Messages written to RabbitMQ: task messages, forwarded results, dead letters; a message "
    "published again after a lost connection counts again.",
)
PUBLISHER_CONFIRMS = Counter(
    "jobservice_publisher_confirms",
    "What became of each message a publish tried: confirmed by RabbitMQ, returned as "
    "unroutable, nacked, or lost with its connection before a confirm (these four sum to "
    "jobservice_messages_published_total); or unsent, there being no link to write it on "
    "(counted on each try, not published).",
    ["outcome"],
)
TRACKING_REPORTS = Counter(
    "jobservice_tracking_reports_recorded",
    "Reports from the tracking pipe recorded in their running batches' workflow history; a "
    "duplicate of a report the batch already has is among them (its workflow ignores it).",
    ["status"],
)
TRACKING_ENDED_BATCH_REPORTS = Counter(
    "jobservice_tracking_reports_for_ended_batches",
    "Reports from the tracking pipe for batches that had already ended, acked and ignored "
    "(late duplicates; one for a batch still running is not told apart from a new report).",
)
TRACKING_FORWARDED = Counter(
    "jobservice_tracking_forwarded",
    "Results passed on to the queue their 'to' names, once recorded.",
)
TRACKING_HELD = Counter(
    "jobservice_tracking_held",
    "Results of paused jobs put on their paused pipes instead of their 'to' queue.",
)
TRACKING_RELEASED = Counter(
    "jobservice_tracking_released",
    "Results passed on from a paused pipe to their 'to' queue, the job having resumed.",
)
TRACKING_DROPPED = Counter(
    "jobservice_tracking_dropped",
    "Results not passed on to their 'to' queue: the job had ended (ended), was cancelled, "
    "failed or deleted while they waited on its paused pipe (held), or the item's result "
    "was held twice (duplicate).",
    ["reason"],
)
TRACKING_DEAD_LETTERS = Counter(
    "jobservice_tracking_dead_letters",
    "Tracking messages sent to the dead-letter queue, each with its reason.",
)
TRACKING_PIPE_MESSAGES = Gauge(
    "jobservice_tracking_pipe_messages",
    "Messages waiting on the tracking pipe, as last read by this tracking consumer (see "
    "jobservice_tracking_pipe_read_timestamp_seconds for when).",
)
TRACKING_PIPE_READ = Gauge(
    "jobservice_tracking_pipe_read_timestamp_seconds",
    "When this tracking consumer last read the tracking pipe's length (Unix time); it stands "
    "still while the pipe cannot be read.",
)
