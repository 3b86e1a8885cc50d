from recon.projects.models import ProjectRole
from recon.users.models import Role


def test_create_search_read_update_archive_delete(analyst, factory):
    created = analyst.post(
        "/api/projects", json={"name": "Bank vs ledger", "description": "Monthly close for ACME"}
    )
    assert created.status_code == 201
    pid = created.get_json()["id"]
    factory.project("Not mine", description="acme too")
    found = analyst.get("/api/projects?q=acme").get_json()
    assert [p["name"] for p in found["items"]] == ["Bank vs ledger"]  # only member projects
    assert analyst.get(f"/api/projects/{pid}").get_json()["description"] == "Monthly close for ACME"
    renamed = analyst.patch(
        f"/api/projects/{pid}", json={"name": "Bank v ledger", "archived": True}
    )
    assert renamed.get_json()["name"] == "Bank v ledger" and renamed.get_json()["archived"] is True
    assert analyst.get("/api/projects?archived=false").get_json()["total"] == 0
    members = analyst.get(f"/api/projects/{pid}/members").get_json()
    assert members == [
        {"user_id": analyst.user.id, "username": analyst.user.username, "role": "owner"}
    ]
    assert analyst.delete(f"/api/projects/{pid}").status_code == 204
    assert analyst.get(f"/api/projects/{pid}").status_code == 404


def test_admin_sees_every_project(admin, factory):
    factory.project("Alpha"), factory.project("Beta")
    names = [p["name"] for p in admin.get("/api/projects").get_json()["items"]]
    assert {"Alpha", "Beta"} <= set(names)


def test_duplicate_project_name_is_409(analyst, factory):
    factory.project("Taken")
    response = analyst.post("/api/projects", json={"name": "Taken"})
    assert response.status_code == 409 and response.get_json()["code"] == "project_name_taken"


def test_members_roles_and_the_last_owner(analyst, as_user):
    pid = analyst.post("/api/projects", json={"name": "Team"}).get_json()["id"]
    editor, viewer, outsider = as_user(), as_user(), as_user()
    assert (
        analyst.post(
            f"/api/projects/{pid}/members", json={"user_id": editor.user.id, "role": "editor"}
        ).status_code
        == 200
    )
    analyst.post(f"/api/projects/{pid}/members", json={"user_id": viewer.user.id, "role": "viewer"})
    # Non-member: 404 for the project and everything under it.
    assert outsider.get(f"/api/projects/{pid}").status_code == 404
    assert outsider.get(f"/api/projects/{pid}/members").status_code == 404
    # Viewer reads, can not write.
    assert viewer.get(f"/api/projects/{pid}").status_code == 200
    assert viewer.patch(f"/api/projects/{pid}", json={"description": "x"}).status_code == 403
    # Editors can not manage members.
    added = editor.post(
        f"/api/projects/{pid}/members", json={"user_id": outsider.user.id, "role": "viewer"}
    )
    assert added.status_code == 403
    # The last owner can not leave or be demoted.
    assert analyst.delete(f"/api/projects/{pid}/members/{analyst.user.id}").status_code == 409
    demote = analyst.post(
        f"/api/projects/{pid}/members", json={"user_id": analyst.user.id, "role": "editor"}
    )
    assert demote.status_code == 409
    assert analyst.delete(f"/api/projects/{pid}/members/{viewer.user.id}").status_code == 204
    assert viewer.get(f"/api/projects/{pid}").status_code == 404
    unknown = analyst.post(
        f"/api/projects/{pid}/members", json={"user_id": 999999, "role": "viewer"}
    )
    assert unknown.status_code == 422


def test_global_viewer_never_writes(as_user, factory):
    viewer = as_user(Role.viewer)
    assert viewer.post("/api/projects", json={"name": "Nope"}).status_code == 403
    project = factory.project("Shared", members={viewer.user: ProjectRole.owner})
    assert viewer.get(f"/api/projects/{project.id}").status_code == 200
    assert viewer.patch(f"/api/projects/{project.id}", json={"name": "x"}).status_code == 403


def test_membership_changes_take_effect_on_the_next_request(analyst, as_user):
    pid = analyst.post("/api/projects", json={"name": "Cached"}).get_json()["id"]
    other = as_user()
    assert other.get(f"/api/projects/{pid}").status_code == 404  # "not a member" now cached
    analyst.post(f"/api/projects/{pid}/members", json={"user_id": other.user.id, "role": "viewer"})
    assert other.get(f"/api/projects/{pid}").status_code == 200
    analyst.delete(f"/api/projects/{pid}/members/{other.user.id}")
    assert other.get(f"/api/projects/{pid}").status_code == 404
