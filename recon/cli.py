"""Flask commands: ``flask --app wsgi create-user NAME --role admin --password-stdin`` and more."""

from __future__ import annotations

import secrets
import sys

import click
from flask import Flask
from flask.cli import with_appcontext

from recon.errors import Conflict
from recon.extensions import db
from recon.users.models import Role


@click.command("create-user")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.analyst.value,
    show_default=True,
)
@click.option("--email", default=None)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (else one is generated and printed).",
)
@with_appcontext
def create_user_command(username: str, role: str, email: str | None, password_stdin: bool) -> None:
    """Create a user."""
    from recon.users.service import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 12:
            raise click.UsageError("The password needs at least 12 characters.")
    else:
        password = secrets.token_urlsafe(18)
    try:
        create_user(
            session=db.session, username=username, password=password, role=Role(role), email=email
        )
    except Conflict as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"created {role} {username!r}")
    if not password_stdin:
        click.echo(f"password: {password}")


@click.command("bootstrap")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write a generated admin password (mode 0600).",
)
@with_appcontext
def bootstrap_command(password_file: str | None) -> None:
    """Prepare the embedded server (`make run`): an admin, and no job left hanging.

    With the in-process runner, jobs that were queued or running when the server
    stopped died with it; they are marked failed so their sources can run again.
    """
    from flask import current_app
    from sqlalchemy import select

    from recon.jobs.service import fail_interrupted_jobs
    from recon.jobs.tasks import ThreadRunner
    from recon.users.models import User
    from recon.users.service import create_user

    config = current_app.config
    if isinstance(current_app.extensions["recon_enqueue"], ThreadRunner):
        interrupted = fail_interrupted_jobs(session=db.session)
        if interrupted:
            click.echo(f"{interrupted} job(s) interrupted by the last shutdown marked failed")
    name = config["RECON_ADMIN_USERNAME"]
    if db.session.scalar(select(User.id).limit(1)) is None:
        password = config["RECON_ADMIN_PASSWORD"] or secrets.token_urlsafe(18)
        create_user(session=db.session, username=name, password=password, role=Role.admin)
        if config["RECON_ADMIN_PASSWORD"]:
            click.echo(f"admin user: {name}  password: from RECON_ADMIN_PASSWORD")
        else:
            click.echo(f"admin user: {name}  password (shown once): {password}")
            if password_file:
                _write_secret(password_file, password)
                click.echo(f"the password is also in {password_file}")
    else:
        where = "RECON_ADMIN_PASSWORD" if config["RECON_ADMIN_PASSWORD"] else password_file
        click.echo(f"admin user: {name}  password: as before ({where or 'set when first created'})")


def _write_secret(path: str, secret: str) -> None:
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")


@click.command("worker", context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@with_appcontext
def worker_command(celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker for jobs (needs RECON_REDIS_URL); extra arguments go to Celery."""
    from flask import current_app

    celery = current_app.extensions.get("celery")
    if celery is None:
        raise click.ClickException(
            "RECON_REDIS_URL is not set: without Redis, jobs run inside the web process."
        )
    celery.worker_main(["worker", "--loglevel=INFO", *celery_args])


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Load the demo project (bank vs ledger) with a finished job; does nothing if it exists."""
    from flask import current_app
    from sqlalchemy import select

    from recon.demo import PROJECT, load_demo
    from recon.jobs.tasks import InlineRunner
    from recon.users.models import User

    owner = db.session.scalar(select(User.id).where(User.role == Role.admin).order_by(User.id))
    if owner is None:
        raise click.ClickException("Create an admin first (flask --app wsgi bootstrap).")
    job = load_demo(
        session=db.session,
        storage=current_app.extensions["recon_storage"],
        owner_id=owner,
        enqueue=InlineRunner(current_app._get_current_object()),  # type: ignore[attr-defined]
    )
    if job is None:
        click.echo(f"demo: {PROJECT!r} is already loaded")
        return
    db.session.refresh(job)
    rate = (job.summary or {}).get("match_rate")
    click.echo(
        f"demo: project {job.project_id} {PROJECT!r}, job {job.id} {job.status.value}"
        + (f", match rate {rate:.1%}" if rate is not None else "")
    )


def register(app: Flask) -> None:
    app.cli.add_command(create_user_command)
    app.cli.add_command(bootstrap_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(demo_command)
