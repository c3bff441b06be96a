"""Serving the app: ``plsim app [--port N]`` on 127.0.0.1 only.

The front-end assets are put in place first (``sim.presentation.assets``), then Solara's
own server replaces this process: ``solara run sim.presentation.app --host 127.0.0.1
--port N --no-open --production``, with Solara's usage telemetry off (the page makes no
request beyond 127.0.0.1, and neither does the server).
"""

from __future__ import annotations

import os
import sys

from sim.presentation.assets import ensure_assets

HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def solara_command(port: int) -> list[str]:
    """The command that serves the page."""
    return [sys.executable, "-m", "solara", "run", "sim.presentation.app", "--host", HOST,
            "--port", str(port), "--no-open", "--production"]


def serve(port: int = DEFAULT_PORT) -> None:
    """Fetch any missing front-end asset (AssetError if it cannot), then serve; never
    returns."""
    ensure_assets(log=lambda msg: print(msg, flush=True))
    env = dict(os.environ, SOLARA_TELEMETRY_MIXPANEL_ENABLE="False")
    print(f"plsim app: serving on http://{HOST}:{port}/ (Ctrl-C stops it)", flush=True)
    cmd = solara_command(port)
    os.execve(cmd[0], cmd, env)
