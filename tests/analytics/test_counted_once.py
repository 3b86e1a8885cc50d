"""Each source record counts once in the project's analytics: in the latest succeeded job
that reconciled its source, however many jobs and pairs saw it."""

from __future__ import annotations

from recon.projects.models import ProjectRole

BANK = (
    "Reference,Amount,Date,Currency\n"
    "A,10.00,2024-01-01,EUR\nB,20.00,2024-01-02,EUR\nC,5.00,2024-01-03,EUR\n"
)
LEDGER = "Reference,Amount,Date,Currency\nA,10.00,2024-01-01,EUR\nX,7.00,2024-01-02,EUR\n"
CARDS = "Reference,Amount,Date,Currency\nB,20.00,2024-01-02,EUR\nY,3.00,2024-01-05,EUR\n"
RULES = {"passes": [{"name": "exact", "match_on": ["key"]}]}


def _analytics(client, pid):
    response = client.get(f"/api/projects/{pid}/analytics")
    assert response.status_code == 200
    return response.get_json()


def test_two_jobs_on_one_pair_count_the_later_one(factory, as_user):
    owner = as_user()
    project = factory.project(members={owner.user: ProjectRole.owner})
    bank = factory.source(project, owner.user, csv=BANK, name="bank")
    ledger = factory.source(project, owner.user, csv=LEDGER, name="ledger")
    factory.job(project, bank, ledger, RULES)
    once = _analytics(owner, project.id)
    factory.job(project, bank, ledger, RULES)
    twice = _analytics(owner, project.id)
    assert len(twice["jobs"]) == 2
    for key in ("records", "auto", "manual", "explained"):
        assert twice["auto_vs_manual"][key] == once["auto_vs_manual"][key]
    assert twice["auto_vs_manual"]["records"] == 5
    assert twice["open_exceptions"] == once["open_exceptions"]
    assert twice["open_exceptions"]["total"] == 3  # B, C on the left; X on the right
    assert twice["unreconciled"] == once["unreconciled"]
    [eur] = twice["unreconciled"]
    assert (eur["left"], eur["right"], eur["net"], eur["gross"]) == (
        "25.00",
        "7.00",
        "18.00",
        "32.00",
    )
    first, second = twice["jobs"]
    assert first["current_match_rate"] is None  # superseded: it doesn't count
    assert second["current_match_rate"] == 0.4


def test_a_source_in_two_pairs_counts_in_the_later_pairs_job(factory, as_user):
    owner = as_user()
    project = factory.project(members={owner.user: ProjectRole.owner})
    bank = factory.source(project, owner.user, csv=BANK, name="bank")
    ledger = factory.source(project, owner.user, csv=LEDGER, name="ledger")
    cards = factory.source(project, owner.user, csv=CARDS, name="cards")
    factory.job(project, bank, ledger, RULES)  # bank A matched; B, C open; ledger X open
    factory.job(project, bank, cards, RULES)  # bank B matched; A, C open; cards Y open
    data = _analytics(owner, project.id)
    # bank's 3 records count once (in the second job), ledger's 2 in the first, cards' 2.
    assert data["auto_vs_manual"]["records"] == 7
    # matched: ledger A (job 1), bank B and cards B (job 2)
    assert data["auto_vs_manual"]["auto"] == 3
    # open: ledger X (job 1); bank A, C and cards Y (job 2). Bank's B and C of job 1 don't count.
    assert data["open_exceptions"]["total"] == 4
    [eur] = data["unreconciled"]
    assert (eur["left"], eur["right"], eur["net"]) == ("15.00", "10.00", "5.00")
