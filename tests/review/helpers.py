"""Real inputs for the review and analytics tests: two uploaded CSVs, the engine, a job row.

With RULES_1 the records end as (row numbers are the CSV data rows):

    left  1 INV-1  matched (exact, dates one day apart)   right 1 INV-1
    left  2 INV-2  break 250.00 vs 245.00                 right 2 INV-2
    left  3 INV-3  unmatched 75.50 EUR
    left  4 X-9    suggested with right 3 Y-7 (40.00, same description)
    left  5 INV-5  unmatched 12.00 USD
                                                          right 4 INV-8 unmatched 45.50
                                                          right 5 INV-9 unmatched 30.00

With RULES_2 (key, amount within 5.00, same date) INV-2 matches, INV-1 becomes a break,
X-9 and Y-7 are plain unmatched records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask

from recon.db_types import utcnow
from recon.engine import run_reconciliation
from recon.extensions import db
from recon.jobs.models import Job, JobStatus
from recon.projects.models import Membership, ProjectRole
from recon.review import tallies
from recon.review.models import ReconException
from recon.review.publish import publish_exceptions
from recon.review.state import pair_key_of
from recon.users.models import Role
from tests.conftest import AuthClient

BANK = """Reference,Amount,Date,Currency,Description
INV-1,100.00,2024-03-01,EUR,Payment ACME
INV-2,250.00,2024-03-02,EUR,Payment Beta
INV-3,75.50,2024-03-03,EUR,Card fee
X-9,40.00,2024-03-04,EUR,Globex services monthly
INV-5,12.00,2024-03-05,USD,Wire
"""
LEDGER = """Reference,Amount,Date,Currency,Description
INV-1,100.00,2024-03-02,EUR,Payment ACME
INV-2,245.00,2024-03-02,EUR,Payment Beta
Y-7,40.00,2024-03-05,EUR,Globex services monthly
INV-8,45.50,2024-03-06,EUR,Unknown transfer
INV-9,30.00,2024-03-06,EUR,Another transfer
"""
RULES_1 = {
    "passes": [
        {
            "name": "exact",
            "match_on": ["key"],
            "amount_tolerance": {"absolute": "0"},
            "date_window_days": 1,
        },
        {
            "name": "similar",
            "match_on": ["amount"],
            "date_window_days": 2,
            "description_min_similarity": 80,
            "action": "suggest",
        },
    ],
    "break_on": ["key"],
}
RULES_2 = {
    "passes": [
        {
            "name": "tolerant",
            "match_on": ["key"],
            "amount_tolerance": {"absolute": "5.00"},
            "date_window_days": 0,
        },
    ],
    "break_on": ["key"],
}


def run_job(
    app: Flask,
    project_id: int,
    left: Any,
    right: Any,
    rules: dict[str, Any],
    user_id: int | None = None,
    now: datetime | None = None,
) -> tuple[Job, dict[str, int]]:
    """Run the engine on two sources, record a succeeded job and publish its exceptions."""
    storage = app.extensions["recon_storage"]
    started = utcnow()
    job = Job(
        project_id=project_id,
        left_source_id=left.id,
        right_source_id=right.id,
        rules=rules,
        status=JobStatus.running,
        attempt=1,
        started_at=started,
        created_by_id=user_id,
    )
    db.session.add(job)
    db.session.flush()
    relative = f"{storage.job_attempt_dir(project_id, job.id, 1)}/results.parquet"
    out = storage.path(relative)
    out.parent.mkdir(parents=True, exist_ok=True)
    left_path, right_path = storage.path(left.path), storage.path(right.path)
    summary = run_reconciliation(
        left_path, right_path, rules, out, temp_dir=storage.tmp_dir, threads=1
    )
    job.status, job.summary, job.result_path = JobStatus.succeeded, summary, relative
    job.finished_at = utcnow()
    counts = publish_exceptions(
        session=db.session,
        job=job,
        results_path=out,
        left_path=left_path,
        right_path=right_path,
        scale_left=left.amount_scale,
        scale_right=right.amount_scale,
        now=now,
    )
    db.session.commit()
    return job, counts


@dataclass
class World:
    app: Flask
    pid: int
    owner: AuthClient
    editor: AuthClient
    viewer: AuthClient
    left: Any
    right: Any
    job: Job
    counts: dict[str, int]
    ids: dict[tuple[str, int], int] = field(default_factory=dict)

    def url(self, path: str = "") -> str:
        return f"/api/projects/{self.pid}{path}"

    def eid(self, side: str, row: int) -> int:
        return self.ids[(side, row)]

    def refresh_ids(self) -> None:
        self.ids = {
            (e.side, e.row): e.id
            for e in db.session.query(ReconException).filter_by(project_id=self.pid)
        }

    def change(self, statement: Any, rows: list[dict[str, Any]] | None = None) -> None:
        """Run an INSERT or UPDATE of exceptions behind the services' back (a test's way to
        age or add them), recounting the pair's tallies as publish does."""
        db.session.execute(statement.execution_options(tallied=True), rows)
        tallies.rebuild(db.session, self.pid, pair_key_of(self.job))

    def rerun(self, rules: dict[str, Any]) -> tuple[Job, dict[str, int]]:
        job, counts = run_job(self.app, self.pid, self.left, self.right, rules)
        self.refresh_ids()
        return job, counts


def build_world(app: Flask, factory: Any, as_user: Any) -> World:
    owner, editor = as_user(Role.analyst), as_user(Role.analyst)
    viewer = as_user(Role.analyst)
    project = factory.project(members={owner.user: ProjectRole.owner})
    for client, role in ((editor, ProjectRole.editor), (viewer, ProjectRole.viewer)):
        db.session.add(Membership(project_id=project.id, user_id=client.user.id, role=role))
    db.session.commit()
    left = factory.source(project, owner.user, csv=BANK, name="bank")
    right = factory.source(project, owner.user, csv=LEDGER, name="ledger")
    job, counts = run_job(app, project.id, left, right, RULES_1, owner.user.id)
    world = World(
        app=app,
        pid=project.id,
        owner=owner,
        editor=editor,
        viewer=viewer,
        left=left,
        right=right,
        job=job,
        counts=counts,
    )
    world.refresh_ids()
    return world
