from datetime import timedelta

import pytest

from recon.auth.models import LoginFailures, Token
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


def _from(address):
    return {"environ_base": {"REMOTE_ADDR": address}}


def _failures(user, address):
    return db.session.query(LoginFailures).filter_by(user_id=user.id, address=address).one_or_none()


def test_five_failures_lock_the_account_from_that_address_for_a_growing_interval(client, factory):
    user = factory.user("frank")
    here = "10.0.0.1"
    for _ in range(5):
        assert login(client, "frank", "bad password", **_from(here)).status_code == 401
    lock = _failures(user, here)
    assert lock is not None and lock.locked_until is not None
    assert timedelta(seconds=55) < lock.locked_until - utcnow() <= timedelta(seconds=60)
    # Locked: even the right password is refused from there, with the same answer.
    locked = login(client, "frank", **_from(here))
    assert locked.status_code == 401 and locked.get_json()["code"] == "invalid_credentials"
    # After the lock runs out, five more failures lock it for twice as long.
    lock.locked_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    for _ in range(5):
        login(client, "frank", "bad password", **_from(here))
    db.session.refresh(lock)
    assert timedelta(seconds=115) < lock.locked_until - utcnow() <= timedelta(seconds=120)
    # A good login after the lock clears the count.
    lock.locked_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert login(client, "frank", **_from(here)).status_code == 200
    assert _failures(user, here) is None


def test_failures_from_one_address_never_lock_the_owner_out_from_another(client, factory):
    """An attacker failing on purpose only locks themselves out (issue 11, item 8)."""
    user = factory.user("admin2")
    attacker, owner = "203.0.113.9", "198.51.100.7"
    for _ in range(25):  # five locks' worth, doubling each time
        assert login(client, "admin2", "guess guess", **_from(attacker)).status_code == 401
    assert login(client, "admin2", **_from(attacker)).status_code == 401  # locked there
    response = login(client, "admin2", **_from(owner))
    assert response.status_code == 200, response.get_json()
    assert _failures(user, owner) is None
    assert _failures(user, attacker).locked_until > utcnow()


def test_reactivating_a_user_forgets_its_failed_logins(client, factory, admin):
    user = factory.user("hank")
    for _ in range(5):
        login(client, "hank", "bad password", **_from("10.0.0.2"))
    assert _failures(user, "10.0.0.2").locked_until is not None
    assert admin.delete(f"/api/users/{user.id}").status_code == 200
    assert admin.patch(f"/api/users/{user.id}", json={"active": True}).status_code == 200
    assert _failures(user, "10.0.0.2") is None
    assert login(client, "hank", **_from("10.0.0.2")).status_code == 200


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
