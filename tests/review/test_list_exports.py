"""Exports of the project's lists: the exceptions list (every page, the list's own filters
and sort), the audit log and the approvals, CSV and XLSX, formula-safe, from the API and
from the workspace page that shows each list."""

from __future__ import annotations

import json

import pytest

from tests.review.test_export import EVIL, rows_csv, rows_xlsx
from tests.workspace.helpers import signed_in


def export(world, what, query="", client=None):
    response = (client or world.viewer).get(world.url(f"/{what}/export?{query}"))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response


def listed(world, what, query=""):
    return world.viewer.get(world.url(f"/{what}?per_page=100&{query}")).get_json()["items"]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "unresolved=true&sort=largest",
        "kind=unmatched&side=left",
        "q=inv&sort=newest",
        "min_amount=40&max_amount=100&sort=smallest",
    ],
)
def test_the_exceptions_export_holds_the_list_every_page_in_its_order(world, query):
    expected = [e["id"] for e in listed(world, "exceptions", query)]
    assert expected or query.startswith("kind")
    as_csv = rows_csv(export(world, "exceptions", query))
    as_xlsx, _ = rows_xlsx(export(world, "exceptions", query + "&format=xlsx"))
    assert [int(r["id"]) for r in as_csv] == expected
    assert [r["id"] for r in as_xlsx] == expected
    if as_csv:
        first = listed(world, "exceptions", query)[0]
        row = as_csv[0]
        assert (row["job_id"], row["side"], row["row"], row["amount"], row["status"]) == (
            str(first["job_id"]),
            first["side"],
            str(first["row"]),
            first["amount"],
            first["status"],
        )


def test_exported_notes_and_audit_changes_are_formula_safe(world):
    eid = world.eid("left", 3)
    world.editor.patch(world.url(f"/exceptions/{eid}"), json={"note": EVIL})
    [row] = [r for r in rows_csv(export(world, "exceptions")) if int(r["id"]) == eid]
    assert row["note"] == "'" + EVIL
    xlsx, sheet = rows_xlsx(export(world, "exceptions", "format=xlsx"))
    assert [r["note"] for r in xlsx if r["id"] == eid] == [EVIL]
    assert not any(c.data_type == "f" for line in sheet.iter_rows() for c in line)
    audit = rows_csv(export(world, "audit", f"object_type=exception&object_id={eid}"))
    assert [r["action"] for r in audit] == [
        e["action"] for e in listed(world, "audit", f"object_type=exception&object_id={eid}")
    ]
    assert audit and json.loads(audit[0]["after"])["note"] == EVIL


def test_the_audit_export_is_the_log_newest_first_with_its_filters(world):
    world.editor.patch(world.url(f"/exceptions/{world.eid('left', 5)}"), json={"note": "checked"})
    log = listed(world, "audit")
    rows = rows_csv(export(world, "audit"))
    assert [int(r["id"]) for r in rows] == [e["id"] for e in log] and len(rows) >= 2
    assert rows[0]["actor"] == world.editor.user.username
    only = rows_csv(export(world, "audit", "action=exception.update"))
    assert only and {r["action"] for r in only} == {"exception.update"}


def test_the_approvals_export_lists_the_write_offs_with_their_makers(world):
    world.owner.patch(world.url("/settings"), json={"require_approval": "always"})
    eid = world.eid("left", 5)
    world.editor.patch(
        world.url(f"/exceptions/{eid}"), json={"status": "resolved", "reason_code": "written_off"}
    )
    [approval] = listed(world, "approvals", "status=pending")
    [row] = rows_csv(export(world, "approvals", "status=pending"))
    assert (int(row["id"]), row["kind"], row["status"], row["write_off"], row["currency"]) == (
        approval["id"],
        "resolution",
        "pending",
        "12.00",
        "USD",
    )
    assert row["maker"] == world.editor.user.username and row["checker"] == ""
    assert rows_csv(export(world, "approvals", "status=approved")) == []
    xlsx, _ = rows_xlsx(export(world, "approvals", "format=xlsx"))
    assert [r["id"] for r in xlsx] == [approval["id"]]


@pytest.mark.parametrize(
    "url",
    [
        "/exceptions/export?format=pdf",
        "/exceptions/export?kind=nonsense",
        "/audit/export?format=ods",
        "/approvals/export?status=maybe",
    ],
)
def test_bad_export_arguments_are_422(world, url):
    response = world.viewer.get(world.url(url))
    assert response.status_code == 422, response.get_data(as_text=True)[:300]


def test_each_workspace_list_links_its_export_with_the_pages_filters(world, factory):
    page = signed_in(world.app, factory, world.viewer.user)
    base = f"/projects/{world.pid}"
    html = page.get(f"{base}/exceptions?unresolved=true&side=right&sort=largest").get_data(
        as_text=True
    )
    assert 'data-export="exceptions-csv"' in html and 'data-export="exceptions-xlsx"' in html
    link = html.split('data-export="exceptions-csv"')[0].rsplit('href="', 1)[1].split('"')[0]
    link = link.replace("&amp;", "&")
    assert link.startswith(f"{base}/exceptions/export?") and "side=right" in link
    downloaded = page.get(link)
    assert downloaded.status_code == 200
    assert "attachment" in downloaded.headers["Content-Disposition"]
    expected = [
        e["id"] for e in listed(world, "exceptions", "unresolved=true&side=right&sort=largest")
    ]
    assert [int(r["id"]) for r in rows_csv(downloaded)] == expected and expected
    for path, name in (("audit?action=exception.update", "audit"), ("approvals", "approvals")):
        html = page.get(f"{base}/{path}").get_data(as_text=True)
        assert f'data-export="{name}-csv"' in html and f'data-export="{name}-xlsx"' in html
    assert page.get(f"{base}/audit/export?format=xlsx").status_code == 200
    assert page.get(f"{base}/approvals/export?status=pending").status_code == 200
    assert page.get(f"{base}/exceptions/export?format=pdf").status_code == 422
