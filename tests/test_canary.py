"""A canary pair: the first test commits a row, the second must not see it."""

from recon.extensions import db
from recon.users.models import User

CANARY = "canary-user"


def test_canary_commits_a_row(factory):
    factory.user(CANARY)
    assert db.session.query(User).filter_by(username=CANARY).count() == 1


def test_canary_row_was_rolled_back(factory):
    assert db.session.query(User).filter_by(username=CANARY).count() == 0
