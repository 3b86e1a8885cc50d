"""Where files live: everything under ``RECON_DATA_DIR``.

    projects/<project>/sources/<uuid>.parquet                an ingested source
    projects/<project>/jobs/<job>/attempt-<n>/results.parquet  one attempt's results
    tmp/                                      uploads in flight, DuckDB spill files

Paths stored in the DB are relative to the root, so the volume can move.
Temporary files are created under ``tmp/`` and always removed, so a rejected
upload leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


class Storage:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def path(self, relative: str) -> Path:
        """Return the absolute path of a stored relative path, refusing escapes from the root."""
        full = (self.root / relative).resolve()
        if not full.is_relative_to(self.root):
            raise ValueError(f"{relative!r} is outside the data directory")
        return full

    def project_dir(self, project_id: int) -> str:
        return f"projects/{project_id}"

    def new_source_path(self, project_id: int) -> str:
        """Return a fresh relative path for a source of ``project_id``."""
        return f"{self.project_dir(project_id)}/sources/{uuid.uuid4().hex}.parquet"

    def search_path(self, source_path: str) -> str:
        """Return the relative path of a source's search file (recon.jobs.results), beside
        its Parquet: built on the first text search of its records, removed with it."""
        return source_path.removesuffix(".parquet") + ".search.parquet"

    def job_dir(self, project_id: int, job_id: int) -> str:
        return f"{self.project_dir(project_id)}/jobs/{job_id}"

    def job_attempt_dir(self, project_id: int, job_id: int, attempt: int) -> str:
        """Return the relative directory of one attempt's results."""
        return f"{self.job_dir(project_id, job_id)}/attempt-{attempt}"

    @contextlib.contextmanager
    def temp_path(self, suffix: str = "") -> Iterator[Path]:
        """Yield a path under tmp/ that is removed on exit, whatever happens."""
        path = self.tmp_dir / f"{uuid.uuid4().hex}{suffix}"
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    def move_into_place(self, src: Path, relative: str) -> Path:
        """Atomically move ``src`` to the stored path ``relative`` and return it."""
        dest = self.path(relative)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        return dest

    def remove(self, relative: str) -> None:
        """Delete a stored file or directory; a missing one is fine."""
        path = self.path(relative)
        with contextlib.suppress(FileNotFoundError):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
