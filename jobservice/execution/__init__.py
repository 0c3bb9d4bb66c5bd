"""The engine's contract: what crosses Temporal between the service, workflows and activities,
split by who speaks: the names (:mod:`.names`), a batch's inputs, results and state
(:mod:`.batch`), the tracking consumer's signal (:mod:`.tracking`), the job's row and its
prerequisites (:mod:`.job`) and word for a whole tree (:mod:`.tree`).

Definitions, cursors and counts cross, never items. Workflows take their contract from here
alone, and activities implement the names defined here. Running workflows replay their history
against the code of the day, so no name here and no field of a model may change. A model may
move between modules: the pydantic data converter (``jobservice.temporal.connection``) writes
a payload as the JSON of its fields, and names no class.
"""
