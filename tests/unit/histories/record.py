"""Record the histories ``tests/unit/test_replay.py`` replays, from this checkout's workflows.

    python -m tests.unit.histories.record tests/unit/histories/<commit>

On a Temporal dev server of its own, with a worker and a SQLite job database in a temporary
folder, it runs small ``local:sleep`` jobs of 4 batches of 500 items and saves every run of
every workflow of their trees as ``<workflow id, / as _>[-run<n>].json``:

- ``paused``: paused a third of the way, resumed, Completed;
- ``cancelled``: cancelled a third of the way;
- ``continued``: chunks of 10 and a history limit of 200 events, so that each batch continues
  as new several times, Completed.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.client import Client

from jobservice.db.engine import create_database_engine
from jobservice.db.schema import upgrade
from jobservice.db.store import JobStore
from jobservice.jobs.definition import JobDefinition
from jobservice.jobs.status import JobStatus
from jobservice.processes.devserver import DevServer
from jobservice.processes.worker import build_worker
from jobservice.service.job_service import JobService
from jobservice.settings import DatabaseSettings, EngineSettings, Settings, TemporalSettings
from jobservice.temporal.connection import connect

TREE = "0-2000/500"
SLOW = {"sleepMillis": "5"}


def a_job() -> JobDefinition:
    return JobDefinition(
        batch_type="range",
        batch_definition=TREE,
        target_pipe="local:sleep",
        task_message_params=SLOW,
    )


async def until(check: Callable[[], Awaitable[bool]], within: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the job did not get there in time")
        await asyncio.sleep(0.1)


async def a_third_done(service: JobService, job_id: str) -> None:
    async def there() -> bool:
        return (await service.get(job_id)).counts.completed >= 650

    await until(there)


async def paused(service: JobService) -> None:
    await service.submit("paused", a_job())
    await a_third_done(service, "paused")
    await service.pause("paused")
    await asyncio.sleep(2)
    await service.resume("paused")
    done = await asyncio.wait_for(service.wait("paused", interval=0.2), 120)
    assert done.status is JobStatus.COMPLETED, done


async def cancelled(service: JobService) -> None:
    await service.submit("cancelled", a_job())
    await a_third_done(service, "cancelled")
    done = await service.cancel("cancelled")
    assert done.status is JobStatus.CANCELLED, done


async def continued(service: JobService) -> None:
    await service.submit("continued", a_job())
    done = await asyncio.wait_for(service.wait("continued", interval=0.2), 300)
    assert done.status is JobStatus.COMPLETED, done


async def save_tree(client: Client, job_id: str, into: Path) -> int:
    """Every run of every workflow of the job's tree, as JSON; how many runs."""
    root = f"job/default/{job_id}"
    query = f"WorkflowId = '{root}' OR WorkflowId STARTS_WITH '{root}/'"
    runs: dict[str, list[tuple[object, str]]] = {}
    async for execution in client.list_workflows(query):
        runs.setdefault(execution.id, []).append((execution.start_time, execution.run_id))
    for workflow_id, started in runs.items():
        ordered = sorted(started, key=lambda each: str(each[0]))
        for number, (_, run_id) in enumerate(ordered, 1):
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            history = await handle.fetch_history()
            suffix = f"-run{number}" if len(ordered) > 1 else ""
            (into / f"{workflow_id.replace('/', '_')}{suffix}.json").write_text(history.to_json())
    return sum(len(started) for started in runs.values())


async def record(into: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/jobs.db"
        upgrade(create_database_engine(url))
        binary = Settings().dev.temporal_binary()
        async with DevServer(binary=binary, log_file=Path(folder) / "temporal.log") as server:
            client = await connect(TemporalSettings(address=server.address))
            for scenario, engine in (
                (paused, EngineSettings(chunk_size=100)),
                (cancelled, EngineSettings(chunk_size=100)),
                (continued, EngineSettings(chunk_size=10, history_limit=200)),
            ):
                name = scenario.__name__
                settings = Settings(
                    temporal=TemporalSettings(address=server.address, task_queue=name),
                    engine=engine,
                    database=DatabaseSettings(url=url),
                )
                store = JobStore(create_database_engine(url))
                async with build_worker(client, settings=settings, store=store):
                    await scenario(JobService(client, store=store, settings=settings))
                    await asyncio.sleep(1)  # the tree's last writes
                print(name, await save_tree(client, name, into), "runs")


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    asyncio.run(record(folder))
