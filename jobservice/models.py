"""Where the public data model once was: it is in :mod:`jobservice.jobs` now, a module a
concept. Every name still imports from here, with a ``DeprecationWarning``; ``from jobservice
import ...`` is the stable way."""

from __future__ import annotations

from jobservice._moved import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "API_BASE_PATH": "jobservice.jobs.public",
        "API_KEY_HEADER": "jobservice.jobs.public",
        "BATCH_WORKER_CLASSIFIER": "jobservice.jobs.definition",
        "BATCH_WORKER_PIPE": "jobservice.jobs.definition",
        "BatchWorkerTask": "jobservice.jobs.definition",
        "CAMEL_CASE": "jobservice.jobs.job",
        "DEFAULT_PARTITION": "jobservice.jobs.status",
        "Failure": "jobservice.jobs.job",
        "FailureTolerance": "jobservice.jobs.tolerance",
        "IN_FLIGHT_MEANS": "jobservice.jobs.job",
        "JobBase": "jobservice.jobs.job",
        "JobCounts": "jobservice.jobs.job",
        "JobDefinition": "jobservice.jobs.definition",
        "JobId": "jobservice.jobs.job",
        "JobState": "jobservice.jobs.job",
        "JobStatus": "jobservice.jobs.status",
        "JobTask": "jobservice.jobs.definition",
        "JobView": "jobservice.jobs.job",
        "LABEL_KEY": "jobservice.jobs.job",
        "LABEL_KEY_LENGTH": "jobservice.jobs.job",
        "LABEL_VALUE_LENGTH": "jobservice.jobs.job",
        "LOCAL_PIPE_PREFIX": "jobservice.jobs.pipes",
        "MAX_BODY_DEPTH": "jobservice.jobs.definition",
        "MAX_DEFINITION_BYTES": "jobservice.jobs.status",
        "MAX_LABELS": "jobservice.jobs.job",
        "MAX_TOLERANCE_COUNT": "jobservice.jobs.tolerance",
        "NUL_FREE": "jobservice.jobs.job",
        "NewJob": "jobservice.jobs.definition",
        "QUEUE_NAME_BYTES": "jobservice.jobs.pipes",
        "StoredText": "jobservice.jobs.job",
        "WAITING_MEANS": "jobservice.jobs.job",
        "is_local_pipe": "jobservice.jobs.pipes",
        "is_queue_name": "jobservice.jobs.pipes",
        "local_handler_name": "jobservice.jobs.pipes",
        "waiting_items": "jobservice.jobs.job",
    },
)
