"""A full data directory: an upload answers 507 insufficient_storage and leaves nothing behind.

The data directory is a small tmpfs mounted by the test (root only), so the
disk really fills: first while the upload is copied in, then while its Parquet
file is written.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from recon import create_app
from recon.extensions import db
from recon.sources.models import Source
from tests.conftest import AuthClient, Factory, app_config, migrate_schema

TMPFS_BYTES = 2 * 1024 * 1024


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    mountpoint = tmp_path / "data"
    mountpoint.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"could not mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


@pytest.fixture
def client_on_small_disk(tmp_path: Path, full_disk: Path) -> Iterator[tuple[AuthClient, int, Path]]:
    app = create_app(
        app_config(tmp_path, f"sqlite:///{tmp_path / 'recon.db'}", RECON_DATA_DIR=str(full_disk))
    )
    migrate_schema(app)
    with app.app_context():
        factory = Factory(app)
        user = factory.user()
        project = factory.project(members={user: "owner"})
        yield AuthClient(app.test_client(), user, factory.token(user)), project.id, full_disk
        db.session.remove()
        db.engine.dispose()


def _csv(rows: int, seed: int) -> bytes:
    # Random references and text: the Parquet file can not compress it away.
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    lines = ["Reference,Amount,Date,Description"]
    for i in range(rows):
        text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(40))
        lines.append(
            f"R{rng.getrandbits(64):x}-{i},{rng.randint(1, 10**6) / 100:.2f},2024-01-02,{text}"
        )
    return ("\n".join(lines) + "\n").encode()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _upload(client: AuthClient, pid: int, data: bytes):
    return client.post(
        f"/api/projects/{pid}/sources",
        data={"name": "Big", "file": (io.BytesIO(data), "big.csv")},
        content_type="multipart/form-data",
    )


@pytest.mark.parametrize(
    "rows, stage",
    [
        (60_000, "copy"),  # ~4 MB: the disk fills while the upload is copied in
        (20_000, "parquet"),  # ~1.7 MB: the copy fits, the Parquet and work files do not
    ],
)
def test_a_full_data_directory_is_507_and_leaves_no_row_and_no_file(
    client_on_small_disk, rows, stage
):
    client, pid, root = client_on_small_disk
    data = _csv(rows, seed=rows)
    assert (len(data) > TMPFS_BYTES) == (stage == "copy")
    response = _upload(client, pid, data)
    assert response.status_code == 507, response.get_json()
    body = response.get_json()
    assert body["code"] == "insufficient_storage"
    assert "full" in body["detail"]
    assert db.session.query(Source).count() == 0
    assert _files(root) == []
    # Once space is there again, a small upload goes through.
    small = _upload(client, pid, _csv(10, seed=1))
    assert small.status_code == 201, small.get_json()
