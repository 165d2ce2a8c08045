"""The durable job queue: jobs survive restarts, leases stop double runs, failures retry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from tests.conftest import make_settings
from warbler.app import create_app
from warbler.clock import utcnow
from warbler.jobs.runner import JobRunner, RetryPolicy
from warbler.services import Services
from warbler.store.models import Job

FAST = RetryPolicy(base_seconds=0.02, max_seconds=0.05, lease_seconds=5)


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def job_row(services: Services, job_id: str) -> Job:
    async with services.db.read() as s:
        job = await s.get(Job, job_id)
    assert job is not None
    return job


def recorder(services: Services, kind: str, runs: list[dict[str, Any]], **kw: Any) -> None:
    async def handler(job: Job) -> dict[str, Any]:
        runs.append(dict(job.payload))
        return {"echo": job.payload.get("n")}

    services.jobs.register(kind, handler, kw.get("policy", FAST))


async def test_a_job_enqueued_before_shutdown_runs_after_a_restart(tmp_path: Path):
    settings = make_settings(tmp_path / "data")
    runs: list[dict[str, Any]] = []

    first = create_app(settings)
    async with first.router.lifespan_context(first):
        services: Services = first.state.services
        recorder(services, "test.echo", runs)
        tenant = await services.users.create_tenant(slug="acme", name="Acme")
        job = await services.jobs.queue.enqueue(
            "test.echo", {"n": 1}, tenant_id=tenant["id"],
            run_at=utcnow() + timedelta(seconds=0.6),
        )  # fmt: skip
    assert runs == []  # shut down before it was due

    second = create_app(settings)
    async with second.router.lifespan_context(second):
        services = second.state.services
        recorder(services, "test.echo", runs)

        async def done() -> bool:
            return (await job_row(services, job.id)).status == "done"

        await eventually(done)
        stored = await job_row(services, job.id)
        assert runs == [{"n": 1}]
        assert (stored.attempts, stored.result, stored.locked_by) == (1, {"echo": 1}, None)


async def test_an_expired_lease_is_reclaimed_and_a_live_one_is_not(services, make_tenant):
    t = await make_tenant()
    queue = services.jobs.queue
    crashed = await queue.enqueue("test.echo", {"n": "crashed"}, tenant_id=t.id)
    busy = await queue.enqueue("test.echo", {"n": "busy"}, tenant_id=t.id)
    now = utcnow()
    async with services.db.write() as s:
        # One worker crashed mid-run (its lease ran out); another is still working.
        await s.execute(
            update(Job).where(Job.id == crashed.id).values(
                status="running", attempts=1, locked_by="dead-node",
                locked_until=now - timedelta(seconds=1),
            )
        )  # fmt: skip
        await s.execute(
            update(Job).where(Job.id == busy.id).values(
                status="running", attempts=1, locked_by="live-node",
                locked_until=now + timedelta(minutes=5),
            )
        )  # fmt: skip
    runs: list[dict[str, Any]] = []
    recorder(services, "test.echo", runs)

    async def reclaimed() -> bool:
        return (await job_row(services, crashed.id)).status == "done"

    await eventually(reclaimed)
    await asyncio.sleep(0.3)
    assert runs == [{"n": "crashed"}]
    assert (await job_row(services, crashed.id)).attempts == 2
    still = await job_row(services, busy.id)
    assert (still.status, still.locked_by) == ("running", "live-node")


async def test_a_crash_on_the_last_attempt_leaves_the_job_dead(services, make_tenant):
    t = await make_tenant()
    job = await services.jobs.queue.enqueue("test.echo", {}, tenant_id=t.id, max_attempts=2)
    async with services.db.write() as s:
        await s.execute(
            update(Job).where(Job.id == job.id).values(
                status="running", attempts=2, locked_by="dead-node",
                locked_until=utcnow() - timedelta(seconds=1),
            )
        )  # fmt: skip
    runs: list[dict[str, Any]] = []
    recorder(services, "test.echo", runs)

    async def dead() -> bool:
        return (await job_row(services, job.id)).status == "dead"

    await eventually(dead)
    assert runs == []
    assert "lease expired" in (await job_row(services, job.id)).last_error


async def test_a_failing_handler_is_retried_then_dead_and_an_admin_can_retry_it(
    client, services, make_tenant
):
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    calls: list[float] = []
    healthy = False

    async def flaky(job: Job) -> dict[str, Any]:
        calls.append(time.monotonic())
        if not healthy:
            raise RuntimeError(f"backend unavailable (call {len(calls)})")
        return {"ok": True}

    services.jobs.register("test.flaky", flaky, RetryPolicy(0.05, 0.1, lease_seconds=5))
    job = await services.jobs.queue.enqueue("test.flaky", {}, tenant_id=t.id, max_attempts=3)

    async def dead() -> bool:
        return (await job_row(services, job.id)).status == "dead"

    await eventually(dead)
    assert len(calls) == 3
    # Backoff: at least half of base * 2**(n-1) between attempts (jitter only shortens).
    assert calls[1] - calls[0] >= 0.025 and calls[2] - calls[1] >= 0.05

    r = await client.get("/jobs?status=dead&kind=test.flaky", headers=admin.headers)
    assert r.status_code == 200
    [listed] = r.json()
    assert listed["id"] == job.id and listed["attempts"] == 3
    # The message only: no traceback reaches the API.
    assert listed["last_error"] == "RuntimeError: backend unavailable (call 3)"
    assert (await client.get("/jobs?status=done", headers=admin.headers)).json() == []

    healthy = True
    r = await client.post(f"/jobs/{job.id}/retry", headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "pending"

    async def done() -> bool:
        return (await job_row(services, job.id)).status == "done"

    await eventually(done)
    stored = await job_row(services, job.id)
    assert (stored.attempts, stored.result, stored.last_error) == (1, {"ok": True}, None)


async def test_jobs_api_is_for_admins_and_scoped_to_the_tenant(client, services, make_tenant):
    acme, other = await make_tenant("acme"), await make_tenant("other")
    admin, member = await acme.user("ann", role="admin"), await acme.user("bo")
    intruder = await other.user("eve", role="admin")
    job = await services.jobs.queue.enqueue("test.unhandled", {}, tenant_id=acme.id)
    assert (await client.get("/jobs", headers=member.headers)).status_code == 403
    assert [j["id"] for j in (await client.get("/jobs", headers=admin.headers)).json()] == [job.id]
    assert (await client.get("/jobs", headers=intruder.headers)).json() == []
    r = await client.post(f"/jobs/{job.id}/retry", headers=intruder.headers)
    assert r.status_code == 404
    r = await client.get("/jobs?status=sleeping", headers=admin.headers)
    assert r.status_code == 422


async def test_enqueue_is_idempotent_on_its_dedupe_key_and_joins_the_callers_transaction(
    services, make_tenant
):
    t = await make_tenant()
    queue = services.jobs.queue
    a = await queue.enqueue("test.unhandled", {"v": 1}, tenant_id=t.id, dedupe_key="k-1")
    b = await queue.enqueue("test.unhandled", {"v": 2}, tenant_id=t.id, dedupe_key="k-1")
    assert a.id == b.id and b.payload == {"v": 1}

    class Abort(Exception):
        pass

    try:
        async with services.db.write() as s:
            await queue.enqueue_in(s, "test.unhandled", {}, tenant_id=t.id, dedupe_key="k-2")
            raise Abort
    except Abort:
        pass
    async with services.db.read() as s:
        keys = (await s.scalars(select(Job.dedupe_key).where(Job.tenant_id == t.id))).all()
    assert keys == ["k-1"]  # the rolled-back transaction took its job with it


async def test_two_runners_on_one_database_run_each_job_exactly_once(services, make_tenant):
    t = await make_tenant()
    runs: list[str] = []

    async def slow(job: Job) -> None:
        runs.append(job.id)
        await asyncio.sleep(0.01)

    services.jobs.register("test.once", slow, FAST)
    other = JobRunner(services.jobs.queue, services.settings, worker_id="node-b", concurrency=3)
    other.register("test.once", slow, FAST)
    await other.start()
    try:
        ids = [
            (await services.jobs.queue.enqueue("test.once", {"i": i}, tenant_id=t.id)).id
            for i in range(40)
        ]

        async def all_done() -> bool:
            async with services.db.read() as s:
                n = await s.scalar(
                    select(func.count()).where(Job.kind == "test.once", Job.status == "done")
                )
            return n == 40

        await eventually(all_done)
    finally:
        await other.stop()
    assert sorted(runs) == sorted(ids)


async def test_stopping_leaves_a_running_job_to_be_taken_over_when_its_lease_expires(
    services, make_tenant
):
    t = await make_tenant()
    started = asyncio.Event()
    finished: list[str] = []

    async def stuck(job: Job) -> None:
        started.set()
        await asyncio.sleep(3600)

    short = RetryPolicy(0.02, 0.05, lease_seconds=0.4)
    node_a = JobRunner(services.jobs.queue, services.settings, worker_id="node-a",
                       stop_grace_seconds=0.05)  # fmt: skip
    node_a.register("test.takeover", stuck, short)
    await node_a.start()
    job = await services.jobs.queue.enqueue("test.takeover", {}, tenant_id=t.id)
    await asyncio.wait_for(started.wait(), 5)
    await node_a.stop()
    stopped = await job_row(services, job.id)
    assert (stopped.status, stopped.locked_by) == ("running", "node-a")

    async def finish(job: Job) -> dict[str, Any]:
        finished.append(job.id)
        return {"by": "node-b"}

    services.jobs.register("test.takeover", finish, short)

    async def done() -> bool:
        return (await job_row(services, job.id)).status == "done"

    await eventually(done)
    taken = await job_row(services, job.id)
    assert finished == [job.id] and taken.attempts == 2 and taken.result == {"by": "node-b"}


async def test_a_long_handler_keeps_its_lease(services, make_tenant):
    t = await make_tenant()
    runs: list[str] = []

    async def long(job: Job) -> None:
        runs.append(job.id)
        await asyncio.sleep(1.5)  # three times the lease: only renewal keeps it ours

    services.jobs.register("test.long", long, RetryPolicy(0.02, 0.05, lease_seconds=0.5))
    other = JobRunner(services.jobs.queue, services.settings, worker_id="node-b")
    other.register("test.long", long, RetryPolicy(0.02, 0.05, lease_seconds=0.5))
    await other.start()
    try:
        job = await services.jobs.queue.enqueue("test.long", {}, tenant_id=t.id)

        async def done() -> bool:
            return (await job_row(services, job.id)).status == "done"

        await eventually(done)
    finally:
        await other.stop()
    assert runs == [job.id]
