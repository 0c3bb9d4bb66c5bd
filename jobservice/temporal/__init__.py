"""The Temporal adapter: connecting, the search attributes and fairness jobs are started with,
the service's gateway to job workflows (orchestration) and word for a whole tree at once."""
