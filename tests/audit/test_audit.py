from recon.audit.models import AuditEvent
from recon.extensions import db


def test_changes_append_events_with_actor_before_after_and_request_id(analyst, as_user):
    pid = analyst.post("/api/projects", json={"name": "Audited"}).get_json()["id"]
    analyst.patch(
        f"/api/projects/{pid}",
        json={"description": "now described"},
        headers={"X-Request-ID": "req-audit-1"},
    )
    member = as_user()
    analyst.post(f"/api/projects/{pid}/members", json={"user_id": member.user.id, "role": "editor"})
    events = analyst.get(f"/api/projects/{pid}/audit").get_json()
    assert [e["action"] for e in events["items"]] == [
        "member.set",
        "project.update",
        "project.create",
    ]
    update = events["items"][1]
    assert update["actor"] == analyst.user.username and update["actor_id"] == analyst.user.id
    assert (
        update["before"]["description"] == "" and update["after"]["description"] == "now described"
    )
    assert update["request_id"] == "req-audit-1"
    assert events["items"][0]["after"] == {"role": "editor"}


def test_user_changes_are_audited_without_the_password(admin, factory):
    user = factory.user("audited-user")
    admin.patch(
        f"/api/users/{user.id}", json={"password": "a brand new password", "role": "viewer"}
    )
    event = db.session.query(AuditEvent).filter_by(action="user.update").one()
    assert event.after["role"] == "viewer" and event.after["password_changed"] is True
    assert "a brand new password" not in str(event.before) + str(event.after)


def test_audit_log_has_no_write_routes(app):
    methods = {
        m
        for rule in app.url_map.iter_rules()
        if "/audit" in rule.rule
        for m in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert methods == {"GET"}
    import recon.audit.service as service

    assert not [name for name in dir(service) if name.startswith(("update", "delete"))]


def test_non_member_gets_404_for_the_audit_log(analyst, as_user):
    pid = analyst.post("/api/projects", json={"name": "Private"}).get_json()["id"]
    assert as_user().get(f"/api/projects/{pid}/audit").status_code == 404
