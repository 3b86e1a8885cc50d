"""Walk every route in the URL map as each kind of caller and compare with the expected answer.

A new route fails this test until its expected answers are written down below,
so nobody adds an endpoint without deciding who may call it.
"""

from __future__ import annotations

import pytest

from recon.extensions import db
from recon.projects.models import ProjectRole
from recon.review.models import Approval, ApprovalKind, ManualMatch, ReconException
from recon.sources.profiles import create_profile
from recon.users.models import Role
from tests.conftest import AuthClient

OK = "ok"  # authorised: anything but 401/403/404 (e.g. 422 for the empty body, 409 for state)
CALLERS = ("anon", "outsider", "viewer", "editor", "owner", "admin")


def answers(anon=401, outsider=404, viewer=OK, editor=OK, owner=OK, admin=OK):
    return dict(zip(CALLERS, (anon, outsider, viewer, editor, owner, admin), strict=True))


PUBLIC = answers(anon=OK, outsider=OK)
ANY_USER = answers(outsider=OK)
ADMIN_ONLY = answers(outsider=403, viewer=403, editor=403, owner=403)
PROJECT_READ = answers()
PROJECT_WRITE = answers(viewer=403)
PROJECT_MANAGE = answers(viewer=403, editor=403)
# The workspace signs people in with a cookie: without one, a page sends them to sign in.
PAGE_PUBLIC = PUBLIC
PAGE_ANY_USER = answers(anon=303, outsider=OK)
PAGE_READ = answers(anon=303)
PAGE_WRITE = answers(anon=303, viewer=403)
PAGE_MANAGE = answers(anon=303, viewer=403, editor=403)
WS = "/projects/<id:pid>"

EXPECTED: dict[tuple[str, str], dict[str, object]] = {
    ("GET", "/api/openapi.json"): PUBLIC,
    ("GET", "/api/docs"): PUBLIC,
    ("GET", "/api/health"): PUBLIC,
    ("GET", "/api/ready"): PUBLIC,
    ("GET", "/api/metrics"): PUBLIC,  # guarded by RECON_METRICS_TOKEN when set (own test)
    ("POST", "/api/auth/login"): PUBLIC,
    ("POST", "/api/auth/logout"): ANY_USER,
    ("GET", "/api/auth/me"): ANY_USER,
    ("GET", "/api/users"): ADMIN_ONLY,
    ("POST", "/api/users"): ADMIN_ONLY,
    ("GET", "/api/users/<int:user_id>"): ADMIN_ONLY,
    ("PATCH", "/api/users/<int:user_id>"): ADMIN_ONLY,
    ("DELETE", "/api/users/<int:user_id>"): ADMIN_ONLY,
    ("GET", "/api/projects"): ANY_USER,
    ("POST", "/api/projects"): ANY_USER,
    ("GET", "/api/projects/<int:pid>"): PROJECT_READ,
    ("PATCH", "/api/projects/<int:pid>"): PROJECT_MANAGE,
    ("DELETE", "/api/projects/<int:pid>"): PROJECT_MANAGE,
    ("GET", "/api/projects/<int:pid>/members"): PROJECT_READ,
    ("POST", "/api/projects/<int:pid>/members"): PROJECT_MANAGE,
    ("DELETE", "/api/projects/<int:pid>/members/<int:uid>"): PROJECT_MANAGE,
    ("GET", "/api/projects/<int:pid>/sources"): PROJECT_READ,
    ("POST", "/api/projects/<int:pid>/sources"): PROJECT_WRITE,
    ("GET", "/api/projects/<int:pid>/sources/<int:sid>"): PROJECT_READ,
    ("DELETE", "/api/projects/<int:pid>/sources/<int:sid>"): PROJECT_WRITE,
    ("GET", "/api/projects/<int:pid>/sources/<int:sid>/rows"): PROJECT_READ,
    ("GET", "/api/projects/<int:pid>/profiles"): PROJECT_READ,
    ("POST", "/api/projects/<int:pid>/profiles"): PROJECT_WRITE,
    ("GET", "/api/projects/<int:pid>/profiles/<int:prid>"): PROJECT_READ,
    ("PATCH", "/api/projects/<int:pid>/profiles/<int:prid>"): PROJECT_WRITE,
    ("DELETE", "/api/projects/<int:pid>/profiles/<int:prid>"): PROJECT_WRITE,
    ("GET", "/api/projects/<int:pid>/audit"): PROJECT_READ,
    ("GET", "/api/projects/<int:pid>/audit/export"): PROJECT_READ,
    ("GET", "/api/projects/<int:pid>/jobs"): PROJECT_READ,
    ("POST", "/api/projects/<int:pid>/jobs"): PROJECT_WRITE,
    ("GET", "/api/projects/<int:pid>/jobs/<int:jid>"): PROJECT_READ,
    ("POST", "/api/projects/<int:pid>/jobs/<int:jid>/cancel"): PROJECT_WRITE,
    ("GET", "/api/projects/<int:pid>/jobs/<int:jid>/results"): PROJECT_READ,
    ("GET", "/api/projects/<int:pid>/jobs/<int:jid>/export"): PROJECT_READ,
    ("GET", "/api/projects/<int:pid>/rulesets"): PROJECT_READ,
    ("POST", "/api/projects/<int:pid>/rulesets"): PROJECT_WRITE,
    ("GET", "/api/projects/<int:pid>/rulesets/<int:rid>"): PROJECT_READ,
    ("GET", "/api/projects/<int:pid>/rulesets/<int:rid>/versions"): PROJECT_READ,
    ("GET", "/api/projects/<int:pid>/exceptions"): PROJECT_READ,
    ("GET", "/api/projects/<int:pid>/exceptions/export"): PROJECT_READ,
    ("POST", "/api/projects/<int:pid>/exceptions/bulk"): PROJECT_WRITE,
    ("GET", "/api/projects/<int:pid>/exceptions/<int:eid>"): PROJECT_READ,
    ("PATCH", "/api/projects/<int:pid>/exceptions/<int:eid>"): PROJECT_WRITE,
    ("GET", "/api/projects/<int:pid>/exceptions/<int:eid>/comments"): PROJECT_READ,
    ("POST", "/api/projects/<int:pid>/exceptions/<int:eid>/comments"): PROJECT_WRITE,
    ("POST", "/api/projects/<int:pid>/exceptions/<int:eid>/accept"): PROJECT_WRITE,
    ("POST", "/api/projects/<int:pid>/exceptions/<int:eid>/reject"): PROJECT_WRITE,
    ("POST", "/api/projects/<int:pid>/jobs/<int:jid>/manual-matches"): PROJECT_WRITE,
    ("GET", "/api/projects/<int:pid>/analytics"): PROJECT_READ,
    ("GET", "/api/projects/<int:pid>/settings"): PROJECT_READ,
    ("PATCH", "/api/projects/<int:pid>/settings"): PROJECT_MANAGE,
    ("POST", "/api/projects/<int:pid>/jobs/<int:jid>/sign-off"): PROJECT_MANAGE,
    ("GET", "/api/projects/<int:pid>/jobs/<int:jid>/manual-matches"): PROJECT_READ,
    ("GET", "/api/projects/<int:pid>/manual-matches/<int:mid>"): PROJECT_READ,
    ("DELETE", "/api/projects/<int:pid>/manual-matches/<int:mid>"): PROJECT_WRITE,
    ("GET", "/api/projects/<int:pid>/approvals"): PROJECT_READ,
    ("GET", "/api/projects/<int:pid>/approvals/export"): PROJECT_READ,
    # The maker gets 403 from the service itself (tests/review/test_state.py).
    ("POST", "/api/projects/<int:pid>/approvals/<int:aid>/approve"): PROJECT_WRITE,
    ("POST", "/api/projects/<int:pid>/approvals/<int:aid>/reject"): PROJECT_WRITE,
    ("GET", "/static/<path:filename>"): PAGE_PUBLIC,
    ("GET", "/login"): PAGE_PUBLIC,
    ("POST", "/login"): PAGE_PUBLIC,
    ("POST", "/logout"): PAGE_ANY_USER,
    ("GET", "/"): PAGE_ANY_USER,
    ("POST", "/projects"): PAGE_ANY_USER,
    ("GET", WS): PAGE_READ,
    ("POST", f"{WS}/members"): PAGE_MANAGE,
    ("POST", f"{WS}/members/<id:uid>/remove"): PAGE_MANAGE,
    ("GET", f"{WS}/upload"): PAGE_READ,
    ("POST", f"{WS}/upload"): PAGE_WRITE,
    ("POST", f"{WS}/upload/preview"): PAGE_WRITE,
    ("GET", f"{WS}/sources/<id:sid>"): PAGE_READ,
    ("POST", f"{WS}/sources/<id:sid>/delete"): PAGE_WRITE,
    ("GET", f"{WS}/rules"): PAGE_READ,
    ("POST", f"{WS}/rules"): PAGE_WRITE,
    ("POST", f"{WS}/rules/check"): PAGE_WRITE,
    ("POST", f"{WS}/rules/dry-run"): PAGE_WRITE,
    ("GET", f"{WS}/rules/dry-run/<id:jid>"): PAGE_READ,
    ("POST", f"{WS}/jobs"): PAGE_WRITE,
    ("GET", f"{WS}/jobs/<id:jid>"): PAGE_READ,
    ("GET", f"{WS}/jobs/<id:jid>/progress"): PAGE_READ,
    ("POST", f"{WS}/jobs/<id:jid>/cancel"): PAGE_WRITE,
    ("GET", f"{WS}/jobs/<id:jid>/results"): PAGE_READ,
    ("GET", f"{WS}/jobs/<id:jid>/matches/<id:mid>"): PAGE_READ,
    ("GET", f"{WS}/jobs/<id:jid>/export.csv"): PAGE_READ,
    ("GET", f"{WS}/jobs/<id:jid>/export"): PAGE_READ,
    ("POST", f"{WS}/jobs/<id:jid>/sign-off"): PAGE_MANAGE,
    ("POST", f"{WS}/jobs/<id:jid>/manual-matches/<id:mid>/undo"): PAGE_WRITE,
    ("GET", f"{WS}/approvals"): PAGE_READ,
    ("GET", f"{WS}/approvals/export"): PAGE_READ,
    ("POST", f"{WS}/approvals/<id:aid>/<any(approve,reject):verdict>"): PAGE_WRITE,
    ("GET", f"{WS}/jobs/<id:jid>/match"): PAGE_READ,
    ("POST", f"{WS}/jobs/<id:jid>/match"): PAGE_WRITE,
    ("POST", f"{WS}/jobs/<id:jid>/match/balance"): PAGE_WRITE,
    ("GET", f"{WS}/exceptions"): PAGE_READ,
    ("GET", f"{WS}/exceptions/export"): PAGE_READ,
    ("POST", f"{WS}/exceptions/bulk"): PAGE_WRITE,
    ("GET", f"{WS}/exceptions/<id:eid>"): PAGE_READ,
    ("POST", f"{WS}/exceptions/<id:eid>/assign"): PAGE_WRITE,
    ("POST", f"{WS}/exceptions/<id:eid>/resolve"): PAGE_WRITE,
    ("POST", f"{WS}/exceptions/<id:eid>/<any(accept,reject):decision>"): PAGE_WRITE,
    ("POST", f"{WS}/exceptions/<id:eid>/comments"): PAGE_WRITE,
    ("GET", f"{WS}/analytics"): PAGE_READ,
    ("GET", f"{WS}/audit"): PAGE_READ,
    ("GET", f"{WS}/audit/export"): PAGE_READ,
}
DESTRUCTIVE_LAST = {"/api/projects/<int:pid>"}
# The workspace's removals act on spare objects, so later routes still find theirs (the API's
# DELETEs run last, on objects nothing after them needs).
SPARE = {
    "workspace.remove_member": {"uid": "spare_uid"},
    "workspace.delete_source": {"sid": "spare_sid"},
    # The comparison page takes an engine match id, not a manual match's.
    "workspace.match": {"mid": "engine_mid"},
}


def routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


def test_every_route_has_expected_answers(app):
    missing = [f"{m} {r.rule}" for m, r in routes(app) if (m, r.rule) not in EXPECTED]
    assert not missing, f"add these routes to EXPECTED in {__file__}: {missing}"


def _status_matches(status: int, expected: object) -> bool:
    if expected == OK:
        return status not in (401, 403, 404) and status < 500
    return status == expected


def _world(factory):
    owner, editor, viewer, outsider, spare = (factory.user() for _ in range(5))
    project = factory.project(
        members={
            owner: ProjectRole.owner,
            editor: ProjectRole.editor,
            viewer: ProjectRole.viewer,
            spare: ProjectRole.viewer,
        }
    )
    left, right = factory.source(project, owner), factory.source(project, owner)
    job = factory.job(project, left, right)
    exception = ReconException(
        project_id=project.id,
        job_id=job.id,
        pair_key=f"{left.id}:{right.id}",
        kind="unmatched",
        side="left",
        row=10**9,
        amount="1.00",
        scale=2,
    )
    db.session.add(exception)
    db.session.flush()
    match = ManualMatch(
        project_id=project.id, job_id=job.id, left_rows=[1], right_rows=[1], difference="0.00"
    )
    db.session.add(match)
    db.session.flush()
    approval = Approval(
        project_id=project.id,
        job_id=job.id,
        kind=ApprovalKind.resolution,
        exception_id=exception.id,
        write_off="1.00",
        currency="",
    )
    db.session.add(approval)
    db.session.commit()
    return {
        "users": {
            "outsider": outsider,
            "viewer": viewer,
            "editor": editor,
            "owner": owner,
            "admin": factory.user(role=Role.admin),
        },
        "values": {
            "pid": project.id,
            "uid": viewer.id,
            "jid": job.id,
            "eid": exception.id,
            "rid": job.ruleset_id,
            "user_id": factory.user().id,
            "sid": factory.source(project, owner).id,
            "mid": match.id,
            "aid": approval.id,
            "prid": create_profile(session=db.session, project=project, name="Bank CSV").id,
            "spare_uid": spare.id,
            "spare_sid": factory.source(project, owner).id,
            "engine_mid": 1,
            "filename": "app.css",
            "decision": "accept",
            "verdict": "reject",
        },
    }


def _page(client, who, factory, method, url):
    """Call a workspace route as the browser would: the token in the sign-in cookie, the CSRF
    token as htmx sends it (it belongs to the client's session cookie: fetched once)."""
    client.delete_cookie("recon_token")
    if not hasattr(client, "csrf_token"):
        page = client.get("/login").get_data(as_text=True)
        client.csrf_token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    if who is not None:
        client.set_cookie("recon_token", factory.token(who))
    return client.open(url, method=method, headers={"X-CSRFToken": client.csrf_token}, data={})


@pytest.mark.parametrize("caller", CALLERS)
def test_each_caller_gets_the_expected_answer(app, client, factory, caller):
    failures = []
    world = _world(factory)
    # Deletions last, the project's own very last: each acts on an object no later route
    # needs (a spare source, user or member), so one world serves the whole walk.
    ordered = sorted(
        routes(app),
        key=lambda mr: (mr[0] == "DELETE", mr[1].rule in DESTRUCTIVE_LAST, mr[1].rule),
    )
    for method, rule in ordered:
        expected = EXPECTED.get((method, rule.rule))
        if expected is None:
            continue
        who = world["users"].get(caller)
        values = world["values"]
        values = {**values, **{k: values[v] for k, v in SPARE.get(rule.endpoint, {}).items()}}
        url = rule.build(values, append_unknown=False)[1] if rule.arguments else rule.rule
        if rule.endpoint.startswith("workspace."):
            response = _page(client, who, factory, method, url)
        elif who is None:
            response = client.open(url, method=method)
        else:  # a fresh token each time: the logout route revokes the one it is sent
            response = AuthClient(client, who, factory.token(who)).open(method, url, json={})
        # A streamed body (the exports) is closed here, in its own turn: left to the garbage
        # collector, its generator would pop a later request's context.
        response.close()
        if not _status_matches(response.status_code, expected[caller]):
            failures.append(
                f"{method} {rule.rule}: {response.status_code}, expected {expected[caller]}"
            )
    assert not failures, "\n".join(failures)
