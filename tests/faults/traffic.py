"""Traffic against a running server while a test breaks what it depends on."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests


@dataclass
class Traffic:
    """GETs ``urls`` in a loop on a thread, recording (time, url, status, seconds)."""

    base: str
    token: str
    urls: list[str]
    pause: float = 0.02
    records: list[tuple[float, str, int, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        while not self._stop.is_set():
            for url in self.urls:
                started = time.monotonic()
                try:
                    status = session.get(self.base + url, timeout=10).status_code
                except requests.RequestException:
                    status = 0  # no answer at all
                self.records.append((started, url, status, time.monotonic() - started))
            time.sleep(self.pause)

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=20)

    def between(self, start: float, end: float) -> list[tuple[float, str, int, float]]:
        return [r for r in self.records if start <= r[0] < end]


def login(base: str, username: str, password: str) -> str:
    response = requests.post(
        f"{base}/api/auth/login", json={"username": username, "password": password}, timeout=10
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def upload(base: str, token: str, pid: int, name: str, text: str) -> int:
    response = requests.post(
        f"{base}/api/projects/{pid}/sources",
        headers={"Authorization": f"Bearer {token}"},
        data={"name": name},
        files={"file": (f"{name}.csv", text.encode(), "text/csv")},
        timeout=30,
    )
    response.raise_for_status()
    return int(response.json()["id"])
