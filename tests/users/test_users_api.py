from recon.users.models import Role


def test_admin_creates_lists_searches_reads_and_updates_users(admin, client):
    created = admin.post(
        "/api/users",
        json={
            "username": "zoe",
            "password": "long enough pw!",
            "role": "viewer",
            "email": "zoe@example.com",
        },
    )
    assert created.status_code == 201
    user = created.get_json()
    assert user["role"] == "viewer" and "password" not in user and "password_hash" not in user
    listing = admin.get("/api/users?q=ZO&per_page=10").get_json()
    assert [u["username"] for u in listing["items"]] == ["zoe"]
    assert listing["total"] == 1 and listing["page"] == 1 and listing["per_page"] == 10
    assert admin.get(f"/api/users/{user['id']}").get_json()["email"] == "zoe@example.com"
    changed = admin.patch(f"/api/users/{user['id']}", json={"role": "analyst"})
    assert changed.status_code == 200 and changed.get_json()["role"] == "analyst"
    # The new password works, the old one does not.
    admin.patch(f"/api/users/{user['id']}", json={"password": "another long pw!"})
    ok = client.post("/api/auth/login", json={"username": "zoe", "password": "another long pw!"})
    assert ok.status_code == 200
    bad = client.post("/api/auth/login", json={"username": "zoe", "password": "long enough pw!"})
    assert bad.status_code == 401


def test_pagination_is_capped_and_counts_everything(admin, factory):
    for i in range(7):
        factory.user(f"page-user-{i}")
    page = admin.get("/api/users?q=page-user&per_page=3&page=3").get_json()
    assert page["total"] == 7 and [u["username"] for u in page["items"]] == ["page-user-6"]
    assert admin.get("/api/users?per_page=501").status_code == 422
    assert admin.get("/api/users?page=0").status_code == 422


def test_duplicate_username_is_409_not_500(admin, factory):
    factory.user("taken")
    response = admin.post("/api/users", json={"username": "taken", "password": "long enough pw!"})
    assert response.status_code == 409
    assert response.get_json()["code"] == "username_taken"


def test_invalid_fields_are_listed(admin):
    response = admin.post("/api/users", json={"username": "a", "password": "short", "role": "god"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert fields == {"username", "password", "role"}


def test_role_change_takes_effect_on_the_next_request(admin, as_user):
    other = as_user(Role.admin)
    assert other.get("/api/users").status_code == 200
    admin.patch(f"/api/users/{other.user.id}", json={"role": "analyst"})
    # Changing the role revoked the old token: the next request is refused outright.
    assert other.get("/api/users").status_code == 401


def test_non_admins_can_not_touch_users_or_their_own_role(as_user):
    for role in (Role.analyst, Role.viewer):
        user = as_user(role)
        assert user.get("/api/users").status_code == 403
        assert user.patch(f"/api/users/{user.user.id}", json={"role": "admin"}).status_code == 403
        assert user.get("/api/auth/me").get_json()["role"] == role.value
