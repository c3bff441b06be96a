"""Shared fixtures: ``app_url``, a ``plsim app`` server on a free port of 127.0.0.1 for the
browser tests (one per test module), and the Chromium they drive."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # Debian's (Playwright downloads no browser here)


def plsim_exe() -> str:
    exe = Path(sys.executable).with_name("plsim")
    return str(exe) if exe.exists() else shutil.which("plsim") or "plsim"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The address of a ``plsim app`` that listens on 127.0.0.1 only; skipped only where
    Chromium is not installed (``.ci/run`` installs it)."""
    if not Path(CHROMIUM).exists():
        msg = f"{CHROMIUM} is not installed (apt-get install -y chromium; .ci/run does it)"
        print(f"SKIP browser test: {msg}")
        pytest.skip(msg)
    pytest.importorskip("playwright", reason="playwright is in the dev extras")
    log = tmp_path_factory.mktemp("app") / "app.log"
    port = _free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([plsim_exe(), "app", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        for _ in range(240):
            if _listening(port) or proc.poll() is not None:
                break
            time.sleep(0.5)
        assert _listening(port), f"plsim app did not listen on {port}: {log.read_text()[-800:]}"
        listen = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
        mine = [line for line in listen.splitlines() if f":{port} " in line]
        assert mine and all("127.0.0.1:" in line for line in mine), mine
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
