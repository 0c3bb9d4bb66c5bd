"""The job as users submit and read it: its status, ids, definition, failure tolerance, target
pipes and the REST shapes. Nothing here knows Temporal, a database or a broker."""
