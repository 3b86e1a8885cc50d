"""The real pipeline end to end (runner, publish, cache invalidation): what a job changes is
what the next read shows, because the job itself invalidated the cached views."""

from __future__ import annotations

from recon.cache_keys import analytics_key
from tests.jobs.conftest import World


def content(analytics: dict) -> dict:
    return {k: v for k, v in analytics.items() if k != "generated_at"}


def test_a_job_refreshes_the_cached_analytics_of_its_project(world_at) -> None:
    world: World = world_at(RECON_CACHE_TTL=3600)
    url = f"/api/projects/{world.pid}/analytics"
    first = world.finished(world.post_job())
    before = world.client.get(url).get_json()  # computed and cached now
    assert world.client.get(url).get_json() == before
    second = world.finished(world.post_job())
    assert first["status"] == second["status"] == "succeeded"
    after = world.client.get(url).get_json()
    assert second["id"] not in [job["id"] for job in before["jobs"]]
    assert second["id"] in [job["id"] for job in after["jobs"]], "served from before the job"
    world.app.extensions["recon_cache"].delete(analytics_key(world.pid))
    assert content(world.client.get(url).get_json()) == content(after)
