"""The migrations build exactly the models' schema, so autogenerate finds nothing to add."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from recon.extensions import db


def test_migrations_match_the_models(app):
    with app.app_context():
        # The test's own connection: SQLite would make a second one wait for its lock.
        diff = compare_metadata(MigrationContext.configure(db.session.connection()), db.metadata)
    assert diff == [], f"run `flask --app wsgi db migrate`: the models differ: {diff}"
