"""Source profiles: saved mapping + options per project, an upload naming profile_id, duplicates."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from recon.audit.models import AuditEvent
from recon.extensions import db
from recon.sources.models import Source, SourceProfile

BANKS = Path(__file__).parent.parent / "data" / "banks"
ING = (BANKS / "csv_ing_nl_af_bij.csv").read_bytes()
ING_PROFILE = {
    "name": "ING NL current account",
    "description": "the bank's CSV export",
    "mapping": {"description": "Naam / Omschrijving"},
    "options": {"currency": "EUR", "key_pattern": "Kenmerk: (\\S+)", "key_from": "Mededelingen"},
}


def upload(user, pid, data=ING, name="ING January", filename="ing.csv", **form):
    payload = {"name": name, "file": (io.BytesIO(data), filename)}
    for key, value in form.items():
        payload[key] = value if isinstance(value, str | int) else json.dumps(value)
    return user.post(
        f"/api/projects/{pid}/sources", data=payload, content_type="multipart/form-data"
    )


@pytest.fixture
def project(analyst):
    return analyst.post("/api/projects", json={"name": "Profiles"}).get_json()["id"]


def test_save_a_profile_and_upload_with_one_field(analyst, project):
    created = analyst.post(f"/api/projects/{project}/profiles", json=ING_PROFILE)
    assert created.status_code == 201, created.get_json()
    profile = created.get_json()
    assert profile["mapping"] == ING_PROFILE["mapping"]
    response = upload(analyst, project, profile_id=str(profile["id"]))
    assert response.status_code == 201, response.get_json()
    source = response.get_json()
    assert source["profile_id"] == profile["id"]
    assert source["sums"] == {"EUR": "2356.45"}  # the sign column is applied, never ignored
    assert source["has_key"] is True
    assert source["mapping"]["description"] == "Naam / Omschrijving"
    rows = analyst.get(f"/api/projects/{project}/sources/{source['id']}/rows").get_json()
    assert [r["key"] for r in rows["items"]] == ["", "SAL-2024-01", "INC-88123"]


def test_list_read_update_delete_and_audit(analyst, project):
    base = f"/api/projects/{project}/profiles"
    first = analyst.post(base, json=ING_PROFILE).get_json()
    analyst.post(base, json={"name": "Another bank", "options": {"delimiter": ";"}})
    listed = analyst.get(base).get_json()
    assert listed["total"] == 2 and [p["name"] for p in listed["items"]] == [
        "Another bank",
        "ING NL current account",
    ]
    changed = analyst.patch(f"{base}/{first['id']}", json={"options": {"currency": "USD"}})
    assert changed.status_code == 200
    assert changed.get_json()["options"] == {"currency": "USD"}
    assert analyst.get(f"{base}/{first['id']}").get_json()["options"] == {"currency": "USD"}
    assert analyst.delete(f"{base}/{first['id']}").status_code == 204
    assert analyst.get(f"{base}/{first['id']}").status_code == 404
    actions = [e.action for e in db.session.query(AuditEvent).filter_by(object_type="profile")]
    assert sorted(actions) == [
        "profile.create",
        "profile.create",
        "profile.delete",
        "profile.update",
    ]


def test_a_profile_no_upload_could_use_is_refused(analyst, project):
    base = f"/api/projects/{project}/profiles"
    bad = analyst.post(base, json={"name": "Bad", "options": {"delimiter": "#"}})
    assert bad.status_code == 422 and bad.get_json()["code"] == "invalid_profile"
    bad = analyst.post(base, json={"name": "Bad", "mapping": {"fields": {"Bad Name": "x"}}})
    assert bad.status_code == 422
    bad = analyst.post(base, json={"name": "Bidi\u202e", "mapping": {}})
    assert bad.status_code == 422
    assert db.session.query(SourceProfile).count() == 0
    analyst.post(base, json={"name": "Same"})
    again = analyst.post(base, json={"name": "Same"})
    assert again.status_code == 409 and again.get_json()["code"] == "duplicate_profile"


def test_another_projects_profile_is_not_usable(analyst, project):
    other = analyst.post("/api/projects", json={"name": "Other"}).get_json()["id"]
    foreign = analyst.post(f"/api/projects/{other}/profiles", json=ING_PROFILE).get_json()
    assert analyst.get(f"/api/projects/{project}/profiles/{foreign['id']}").status_code == 404
    response = upload(analyst, project, profile_id=str(foreign["id"]))
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "profile_id"
    assert db.session.query(Source).count() == 0


def test_upload_options_override_the_profiles_key_by_key(analyst, project):
    profile = analyst.post(f"/api/projects/{project}/profiles", json=ING_PROFILE).get_json()
    response = upload(analyst, project, profile_id=str(profile["id"]), options={"currency": "USD"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["sums"] == {"USD": "2356.45"} and body["options"]["key_pattern"]


def test_duplicates_are_bytes_mapping_and_options_all_equal(analyst, project):
    first = upload(analyst, project)
    assert first.status_code == 201
    same = upload(analyst, project, name="Again")
    assert same.status_code == 409
    body = same.get_json()
    assert body["existing_source_id"] == first.get_json()["id"]
    assert "same mapping and options" in body["detail"]
    # The same bytes read another way are another source.
    other = upload(analyst, project, name="With currency", options={"currency": "EUR"})
    assert other.status_code == 201, other.get_json()
    assert other.get_json()["sums"] == {"EUR": "2356.45"}
    remapped = upload(analyst, project, name="Remapped", mapping={"description": "Mutatiesoort"})
    assert remapped.status_code == 201
    # Key order and null options do not make a new source.
    same_again = upload(
        analyst, project, name="Reordered", options={"currency": "EUR", "delimiter": None}
    )
    assert same_again.status_code == 409
    assert db.session.query(Source).count() == 3


def test_viewers_read_profiles_but_can_not_write(analyst, project, factory, client):
    from recon.projects.models import Membership, ProjectRole
    from tests.conftest import AuthClient

    viewer = factory.user()
    db.session.add(Membership(project_id=project, user_id=viewer.id, role=ProjectRole.viewer))
    db.session.commit()
    as_viewer = AuthClient(client, viewer, factory.token(viewer))
    profile = analyst.post(f"/api/projects/{project}/profiles", json=ING_PROFILE).get_json()
    assert as_viewer.get(f"/api/projects/{project}/profiles/{profile['id']}").status_code == 200
    assert as_viewer.post(f"/api/projects/{project}/profiles", json=ING_PROFILE).status_code == 403
    assert (
        as_viewer.patch(f"/api/projects/{project}/profiles/{profile['id']}", json={}).status_code
        == 403
    )
