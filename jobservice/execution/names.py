"""The names of workflows, activities, signals, queries, patches and memos: none may change."""

from __future__ import annotations

JOB_WORKFLOW = "JobWorkflow"
BATCH_WORKFLOW = "BatchWorkflow"
SPLIT_BATCH = "split_batch"
DISPATCH_ITEMS = "dispatch_items"
COUNT_FAILED_ITEMS = "count_failed_items"
RECORD_JOB = "record_job"
SETTLE_PREREQUISITES = "settle_prerequisites"
NOTIFY_DEPENDENTS = "notify_dependents"
TELL_TREE = "tell_tree"
BROKER_UNAVAILABLE = "BrokerUnavailable"
PAUSE_SIGNAL = "pause"
RESUME_SIGNAL = "resume"
PROGRESS_SIGNAL = "progress"
TRACKING_SIGNAL = "tracking"
PREREQUISITES_SIGNAL = "prerequisites"
PROGRESS_QUERY = "progress"
"""What a job workflow answers with its JobProgress, and a batch workflow with its Progress."""
BATCHES_QUERY = "batches"
"""What a job or batch workflow answers, for a BatchesRequest, with a BatchPage: a page of
the child batches it runs, for browsing the tree a level at a time."""
TRACKING_REPORTS_PATCH = "tracking-reports"
"""Batches read the progress, retries and failure owners of tracking signals from here on."""
IN_FLIGHT_PATCH = "in-flight-in-hand"
"""Batches count in flight only the items published to a queue and not yet settled from here
on; before it, every item of their scheduled chunks. What they count decides when they report,
so a run begun before it counts as it did then."""
ITEMS_MEMO = "items"
"""The memo in which a batch workflow that sends items to a queue names their numbers, first
and last, so that the tracking consumer can tell a result for an item that never went out."""
FAILED_ITEMS_PATCH = "failed-item-ledger"
"""Batches that send items to a queue write each item they count failed to the job's failed-item
ledger from here on (``count_failed_items``); a run begun before it does not."""
KEEP_CHECKPOINT = "keep_checkpoint"
LOAD_CHECKPOINT = "load_checkpoint"
NUMBER_ROUND = "number_round"
CHECKPOINT_PATCH = "batch-checkpoint"
"""Batches write where they stood as they stop (cancelled or failed) from here on, so that a
redrive can carry on from there; a run begun before it does not."""
KEPT_RESULTS_PATCH = "kept-results"
"""A chunk or child batch cancelled in the moment it completed, or between two tries, counts
what it did from here on (``jobservice.workflows.kept``); a run begun before it does not."""
TUNE_UPDATE = "tune"
"""The Workflow Update that changes a running job's steering: a JSON merge patch of it."""
STEER_SIGNAL = "steer"
"""A parent batch passes its job's new steering down to its children."""
STEER_JOB = "steer_job"
TAKE_PACE_SLOT = "take_pace_slot"
TAKE_PIPE_SLOT = "take_pipe_slot"
PIPE_SIGNAL = "pipe"
"""The service tells a job that its target pipe's limit was set or taken away."""
