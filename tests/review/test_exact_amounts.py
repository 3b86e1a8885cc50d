"""Amounts with 16 decimals, far past what BIGINT minor units hold, from upload to every read.

123456789.1234567890123456 is 1.2e24 in minor units: the publish used to fail converting
it to BIGINT and leave the job running. Through the API with the inline runner: upload,
job, exceptions (list, filters and sort by amount), analytics, export, a manual match.
"""

from __future__ import annotations

import csv
import io
from decimal import Context, Decimal, localcontext

import pytest

from tests.jobs.test_jobs_api import upload

BIG = "123456789.1234567890123456"
HUGE = "999999999999.9999999999999999"
LEFT = f"""Reference,Amount,Date,Currency,Description
A-1,{BIG},2024-03-01,EUR,big and off by one unit in the 16th decimal
A-2,0.0000000000000001,2024-03-02,EUR,the smallest unit
A-3,-999999999999.9999999999999999,2024-03-03,EUR,28 digits: the gross sum has 29
A-4,10.5,2024-03-04,EUR,matched
"""
RIGHT = """Reference,Amount,Date,Currency,Description
A-1,123456789.1234567890123457,2024-03-01,EUR,big and off by one unit in the 16th decimal
A-4,10.5,2024-03-04,EUR,matched
"""
RULES = {
    "passes": [
        {
            "name": "exact",
            "match_on": ["key"],
            "amount_tolerance": {"absolute": "0"},
            "date_window_days": 0,
        }
    ],
    "break_on": ["key"],
}


@pytest.fixture
def job(analyst):
    pid = analyst.post("/api/projects", json={"name": "Sixteen"}).get_json()["id"]
    left, right = upload(analyst, pid, LEFT, "left"), upload(analyst, pid, RIGHT, "right")
    body = {"left_source_id": left, "right_source_id": right, "rules": RULES}
    response = analyst.post(f"/api/projects/{pid}/jobs", json=body)
    assert response.status_code == 202, response.get_json()
    job = analyst.get(response.headers["Location"]).get_json()
    assert job["status"] == "succeeded", job
    return pid, job["id"]


def exceptions(analyst, pid, query=""):
    response = analyst.get(f"/api/projects/{pid}/exceptions?per_page=50&{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_job_publishes_every_amount_exactly(analyst, job):
    pid, _ = job
    items = exceptions(analyst, pid)["items"]
    amounts = {(e["side"], e["key"]): e["amount"] for e in items}
    assert amounts == {
        ("left", "A-1"): BIG,
        ("right", "A-1"): "123456789.1234567890123457",
        ("left", "A-2"): "0.0000000000000001",
        ("left", "A-3"): "-999999999999.9999999999999999",
    }
    brk = next(e for e in items if (e["side"], e["key"]) == ("left", "A-1"))
    assert brk["kind"] == "break" and brk["diff"]["amount_diff"] == "-0.0000000000000001"


def test_amount_filters_and_sorts_are_exact_at_the_16th_decimal(analyst, job):
    pid, _ = job
    at_least = exceptions(analyst, pid, "min_amount=123456789.1234567890123457")["items"]
    assert sorted(e["side"] + e["amount"] for e in at_least) == [
        "left-999999999999.9999999999999999",
        "right123456789.1234567890123457",
    ]
    at_most = exceptions(analyst, pid, "max_amount=0.0000000000000001")["items"]
    assert [e["key"] for e in at_most] == ["A-2"]
    between = exceptions(analyst, pid, f"min_amount={BIG}&max_amount=123456789.12345678901234571")[
        "items"
    ]
    assert sorted(e["side"] for e in between) == ["left", "right"]
    largest = exceptions(analyst, pid, "sort=largest")["items"]
    assert [e["key"] for e in largest] == ["A-3", "A-1", "A-1", "A-2"]


def test_analytics_sum_the_unreconciled_amounts_exactly(analyst, job):
    pid, _ = job
    response = analyst.get(f"/api/projects/{pid}/analytics")
    assert response.status_code == 200, response.get_json()
    with localcontext(Context(prec=60)):
        left = Decimal(BIG) + Decimal("0.0000000000000001") - Decimal(HUGE)
        right = Decimal("123456789.1234567890123457")
        gross = Decimal(BIG) + Decimal("0.0000000000000001") + Decimal(HUGE) + right
        net = left - right
    assert len(format(gross, "f").replace(".", "")) == 29  # past the default 28 digits
    assert response.get_json()["unreconciled"] == [
        {
            "currency": "EUR",
            "net": format(net, "f"),
            "gross": format(gross, "f"),
            "left": format(left, "f"),
            "right": format(right, "f"),
            "records": 4,
        }
    ]


def test_the_exceptions_export_keeps_every_decimal(analyst, job):
    pid, jid = job
    response = analyst.get(f"/api/projects/{pid}/jobs/{jid}/export?format=csv&view=exceptions")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted(r["amount"] for r in rows) == sorted(
        [BIG, "123456789.1234567890123457", "0.0000000000000001", "-999999999999.9999999999999999"]
    )


def test_a_manual_match_balances_to_the_16th_decimal(analyst, job):
    pid, jid = job
    url = f"/api/projects/{pid}/jobs/{jid}/manual-matches"
    unbalanced = analyst.post(url, json={"left_rows": [1], "right_rows": [1]})
    assert unbalanced.status_code == 422
    assert unbalanced.get_json()["difference"] == "-0.0000000000000001"
    within = analyst.post(
        url, json={"left_rows": [1], "right_rows": [1], "tolerance": "0.0000000000000001"}
    )
    assert within.status_code == 201, within.get_json()
