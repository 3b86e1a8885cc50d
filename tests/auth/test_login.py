from datetime import timedelta

import pytest

from recon.auth.models import Token
from recon.auth.service import hash_token
from recon.db_types import utcnow
from recon.extensions import db
from tests.conftest import PASSWORD


def login(client, username, password=PASSWORD, **kw):
    return client.post("/api/auth/login", json={"username": username, "password": password}, **kw)


def test_login_returns_an_opaque_token_stored_only_as_its_hash(client, factory):
    user = factory.user("alice")
    response = login(client, "alice")
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["user"]["username"] == "alice"
    raw = body["access_token"]
    assert len(raw) >= 43  # 32 random bytes, base64url
    stored = db.session.query(Token).filter_by(user_id=user.id).one()
    assert stored.token_hash == hash_token(raw)
    assert raw not in stored.token_hash
    assert timedelta(hours=11, minutes=59) < stored.expires_at - utcnow() <= timedelta(hours=12)


def test_me_with_the_token_and_401_without(client, factory):
    factory.user("bob")
    token = login(client, "bob").get_json()["access_token"]
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["username"] == "bob"
    missing = client.get("/api/auth/me")
    assert missing.status_code == 401
    assert missing.mimetype == "application/problem+json"
    assert missing.get_json()["code"] == "missing_token"
    bogus = client.get("/api/auth/me", headers={"Authorization": "Bearer nope"})
    assert bogus.status_code == 401 and bogus.get_json()["code"] == "invalid_token"


def test_logout_revokes_the_token_at_once(client, factory):
    factory.user("carol")
    token = login(client, "carol").get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/auth/me", headers=headers).status_code == 200  # now cached
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/auth/me", headers=headers).status_code == 401


def test_expired_token_is_refused(client, factory):
    user = factory.user("dave")
    raw = factory.token(user)
    token = db.session.query(Token).filter_by(token_hash=hash_token(raw)).one()
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 401


def test_unknown_user_and_wrong_password_get_the_same_answer(client, factory):
    factory.user("erin")
    unknown = login(client, "nobody")
    wrong = login(client, "erin", "wrong password!")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.get_json() | {"request_id": ""} == wrong.get_json() | {"request_id": ""}


def test_five_failures_lock_the_account_for_a_growing_interval(client, factory):
    user = factory.user("frank")
    for _ in range(5):
        assert login(client, "frank", "bad password").status_code == 401
    db.session.refresh(user)
    first_lock = user.locked_until
    assert first_lock is not None
    assert timedelta(seconds=55) < first_lock - utcnow() <= timedelta(seconds=60)
    # Locked: even the right password is refused, with the same answer.
    locked = login(client, "frank")
    assert locked.status_code == 401 and locked.get_json()["code"] == "invalid_credentials"
    # After the lock runs out, five more failures lock it for twice as long.
    user.locked_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    for _ in range(5):
        login(client, "frank", "bad password")
    db.session.refresh(user)
    assert timedelta(seconds=115) < user.locked_until - utcnow() <= timedelta(seconds=120)
    # A good login after the lock clears the count.
    user.locked_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert login(client, "frank").status_code == 200
    db.session.refresh(user)
    assert (user.failed_logins, user.lockouts, user.locked_until) == (0, 0, None)


def test_inactive_user_can_not_log_in_and_loses_tokens(client, factory, admin):
    user = factory.user("gina")
    token = login(client, "gina").get_json()["access_token"]
    assert admin.delete(f"/api/users/{user.id}").status_code == 200
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    assert login(client, "gina").status_code == 401


@pytest.mark.parametrize("body", [{}, {"username": "x"}, {"username": "", "password": "y"}])
def test_login_validation_lists_each_field(client, body):
    response = client.post("/api/auth/login", json=body)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_error"
    fields = {error["field"] for error in problem["errors"]}
    expected = {"username", "password"} - set(k for k, v in body.items() if v)
    assert expected <= fields
