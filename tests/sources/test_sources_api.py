"""The sources HTTP layer: upload, list, read, rows, delete, and rejections that store nothing."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.extensions import db
from recon.sources.models import Source
from recon.users.models import Role

BANK = (
    b"Reference,Amount,Value Date,Currency,Narrative,Branch\n"
    b'INV-1,"1,234.56",2024-03-01,EUR,Payment ACME,North\n'
    b"INV-2,(20.00),2024-03-02,EUR,Refund,South\n"
    b"INV-3,0.10,2024-03-05,USD,Fee,North\n"
)


def upload(user, pid, data=BANK, name="March bank", filename="bank.csv", **form):
    payload = {"name": name, "file": (io.BytesIO(data), filename)}
    payload.update({k: json.dumps(v) for k, v in form.items()})
    return user.post(
        f"/api/projects/{pid}/sources", data=payload, content_type="multipart/form-data"
    )


def stored_files(app) -> list[Path]:
    root = Path(app.config["RECON_DATA_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def project(analyst):
    return analyst.post("/api/projects", json={"name": "Sources test"}).get_json()["id"]


def test_upload_reports_what_it_read_and_the_rows_page(analyst, project, app):
    response = upload(analyst, project)
    assert response.status_code == 201, response.get_json()
    source = response.get_json()
    assert source["row_count"] == 3
    assert source["sums"] == {"EUR": "1214.56", "USD": "0.10"}
    assert (source["min_date"], source["max_date"]) == ("2024-03-01", "2024-03-05")
    assert source["mapping"]["key"] == "Reference" and source["mapping"]["date"] == "Value Date"
    assert source["options"]["delimiter"] == ","
    assert "Branch" in source["columns"] and len(source["sha256"]) == 64
    rows = analyst.get(f"/api/projects/{project}/sources/{source['id']}/rows?per_page=2")
    page = rows.get_json()
    assert page["total"] == 3 and len(page["items"]) == 2
    first = page["items"][0]
    assert first["row"] == 1 and first["key"] == "INV-1" and first["date"] == "2024-03-01"
    assert Decimal(first["amount"]) == Decimal("1234.56")
    listed = analyst.get(f"/api/projects/{project}/sources").get_json()
    assert [s["id"] for s in listed["items"]] == [source["id"]]
    assert analyst.get(f"/api/projects/{project}/sources/{source['id']}").status_code == 200


def test_mapping_and_options_as_json_form_fields(analyst, project):
    data = b"ref;betrag;datum\nA;1.234,50;31.12.2024\nB;-0,50;01.01.2025\n"
    response = upload(
        analyst,
        project,
        data,
        filename="de.csv",
        mapping={"key": "ref", "amount": "betrag", "date": "datum"},
        options={"decimal": ",", "delimiter": ";"},
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["sums"] == {"": "1234.00"}
    bad = upload(analyst, project, b"x", filename="x.csv", name="bad", mapping="not an object")
    assert bad.status_code == 422
    assert any(e["field"] == "mapping" for e in bad.get_json()["errors"])


def test_duplicate_bytes_are_409_naming_the_source(analyst, project):
    first = upload(analyst, project).get_json()
    again = upload(analyst, project, name="Same again")
    assert again.status_code == 409
    body = again.get_json()
    assert body["code"] == "duplicate_source" and body["existing_source_id"] == first["id"]
    assert str(first["id"]) in body["detail"]


def test_rejected_upload_leaves_no_row_no_file_no_temp(analyst, project, app):
    before = stored_files(app)
    bad = b"Reference,Amount,Date\nA,12.00,2024-01-01\nB,twelve,2024-01-02\n"
    response = upload(analyst, project, bad)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["errors"][0]["row"] == 2 and problem["errors"][0]["column"] == "Amount"
    assert problem["errors"][0]["value"] == "twelve"
    assert db.session.query(Source).count() == 0
    assert stored_files(app) == before


def test_too_large_is_413_and_stores_nothing(tmp_path, app):
    from recon import create_app
    from tests.conftest import AuthClient, Factory, app_config, migrate_schema

    small = create_app(
        app_config(tmp_path, f"sqlite:///{tmp_path / 's.db'}", RECON_MAX_UPLOAD_MB=1)
    )
    migrate_schema(small)
    with small.app_context():
        factory = Factory(small)
        user = factory.user()
        project = factory.project(members={user: "owner"})
        client = AuthClient(small.test_client(), user, factory.token(user))
        big = b"Reference,Amount,Date\n" + b"A,1.00,2024-01-01\n" * 70_000
        response = upload(client, project.id, big)
        assert response.status_code == 413
        assert response.get_json()["code"] == "payload_too_large"
        assert db.session.query(Source).count() == 0
    assert stored_files(small) == []


def test_viewer_reads_but_can_not_upload_or_delete(analyst, project, as_user):
    source = upload(analyst, project).get_json()
    viewer = as_user(Role.analyst)
    analyst.post(
        f"/api/projects/{project}/members", json={"user_id": viewer.user.id, "role": "viewer"}
    )
    assert viewer.get(f"/api/projects/{project}/sources/{source['id']}").status_code == 200
    assert upload(viewer, project, BANK + b"INV-4,1,2024-01-01,EUR,x,y\n").status_code == 403
    assert viewer.delete(f"/api/projects/{project}/sources/{source['id']}").status_code == 403


def test_delete_removes_row_and_file(analyst, project, app):
    source = upload(analyst, project).get_json()
    assert len(stored_files(app)) >= 1
    path = db.session.get(Source, source["id"]).path
    assert analyst.delete(f"/api/projects/{project}/sources/{source['id']}").status_code == 204
    assert analyst.get(f"/api/projects/{project}/sources/{source['id']}").status_code == 404
    assert not (Path(app.config["RECON_DATA_DIR"]) / path).exists()


def test_source_of_another_project_is_404(analyst, project):
    source = upload(analyst, project).get_json()
    other = analyst.post("/api/projects", json={"name": "Other"}).get_json()["id"]
    assert analyst.get(f"/api/projects/{other}/sources/{source['id']}").status_code == 404


def test_idempotency_key_replays_an_upload(analyst, project):
    headers = {"Idempotency-Key": "upload-1"}
    first = analyst.post(
        f"/api/projects/{project}/sources",
        headers=headers,
        content_type="multipart/form-data",
        data={"name": "Bank", "file": (io.BytesIO(BANK), "bank.csv")},
    )
    again = analyst.post(
        f"/api/projects/{project}/sources",
        headers=headers,
        content_type="multipart/form-data",
        data={"name": "Bank", "file": (io.BytesIO(BANK), "bank.csv")},
    )
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    other = analyst.post(
        f"/api/projects/{project}/sources",
        headers=headers,
        content_type="multipart/form-data",
        data={"name": "Other", "file": (io.BytesIO(BANK), "bank.csv")},
    )
    assert other.status_code == 422
    assert db.session.query(Source).count() == 1


def test_missing_field_is_422_naming_the_columns_found(analyst, project, app):
    before = stored_files(app)
    response = upload(analyst, project, b"a;b\n1;2\n", filename="odd.csv")
    assert response.status_code == 422
    body = response.get_json()
    assert body["reason"] == "missing_field" and body["columns_found"] == ["a", "b"]
    assert stored_files(app) == before


def test_header_only_file_is_422(analyst, project):
    response = upload(analyst, project, b"a;b\n", filename="empty.csv")
    assert response.status_code == 422 and response.get_json()["code"] == "upload_rejected"


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=2000) | st.text(max_size=500).map(str.encode),
    name=st.sampled_from(["x.csv", "x.xlsx", "x.txt", "x"]),
)
def test_arbitrary_uploads_never_cause_a_500(analyst, project, data, name):
    response = upload(analyst, project, data, filename=name, name=f"fuzz-{len(data)}")
    assert response.status_code in (201, 409, 422), response.get_json()
    assert response.mimetype in ("application/json", "application/problem+json")


def test_mixed_line_endings_after_a_preamble_are_read(analyst, project):
    # A preamble written with LF in front of a CRLF table: DuckDB alone reads no rows.
    data = (
        b"Statement ACME Bank, account 1234, March\n"
        b'Reference,Amount,Date\r\nA,"1,000.00",2024-03-01\r\nB,2.50,2024-03-02\r\n'
    )
    response = upload(analyst, project, data, filename="mixed.csv", options={"skip_rows": 1})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["row_count"] == 2
    assert response.get_json()["sums"] == {"": "1002.50"}
