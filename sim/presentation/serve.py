"""Serving the app: ``plsim app [--port N]`` on 127.0.0.1 only.

The front-end assets are put in place first (``sim.presentation.assets``), then this
process becomes Solara's server (``python -m sim.presentation.serve PORT``: Solara's own
``solara run sim.presentation.app --host 127.0.0.1 --port N --no-open --production``,
in-process), with Solara's usage telemetry and its "runs on Solara" badge off.

Before it serves, the server's asset route is replaced (``harden``). Solara's route
``/_solara/cdn/...`` is a caching proxy of a public CDN (``solara.server.cdn_helper.get_path``):
a request for a path it finds as a *folder* in its cache deletes that folder
(``shutil.rmtree``, a clean-up of an old cache layout) and then fetches the path from
the CDN; a missing file is fetched too. So a plain GET of ``/_solara/cdn/PACKAGE@VERSION``,
which any web page open in the same browser can make, deleted the installed front end and
left the page broken offline. Here the route serves the installed assets read-only
(``InstalledAssets``, Starlette's ``StaticFiles``): a file is sent, anything else (a folder,
a missing file, a path outside the folder) is a 404; nothing is fetched, written or deleted.
"""

from __future__ import annotations

import os
import re
import sys

from sim.presentation.assets import ensure_assets

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
APP = "sim.presentation.app"
# Solara's own settings through its environment: no usage telemetry (the server makes no
# request beyond 127.0.0.1), no badge over the page's results
ENVIRONMENT = {"SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False", "SOLARA_THEME_SHOW_BANNER": "False"}
_EXACT_VERSION = re.compile(r"@\d+\.\d+\.\d+(?:[-+][\w.]+)?/")


def solara_command(port: int) -> list[str]:
    """The command that serves the page (this module as a program)."""
    return [sys.executable, "-m", "sim.presentation.serve", str(int(port))]


def solara_arguments(port: int) -> list[str]:
    """Solara's ``run`` command line for the page on 127.0.0.1."""
    return ["run", APP, "--host", HOST, "--port", str(int(port)), "--no-open", "--production"]


def serve(port: int = DEFAULT_PORT) -> None:
    """Fetch any missing front-end asset (AssetError if it cannot), then serve; never
    returns."""
    ensure_assets(log=lambda msg: print(msg, flush=True))
    env = dict(os.environ, **ENVIRONMENT)
    print(f"plsim app: serving on http://{HOST}:{port}/ (Ctrl-C stops it)", flush=True)
    cmd = solara_command(port)
    os.execve(cmd[0], cmd, env)


def installed_assets_app(directory):
    """An ASGI app serving ``directory`` read-only (see the module's docstring)."""
    from starlette.staticfiles import StaticFiles

    class InstalledAssets(StaticFiles):
        """The installed front-end assets: files only, never fetched, never deleted."""

        async def get_response(self, path: str, scope):
            response = await super().get_response(path, scope)
            # the urls pin an exact npm version, whose content never changes
            if response.status_code in (200, 304) and _EXACT_VERSION.search(path + "/"):
                response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            return response

    return InstalledAssets(directory=str(directory), html=False, check_dir=False,
                           follow_symlink=False)


def harden(app=None, directory=None) -> int:
    """Replace the ``/_solara/cdn`` route of Solara's Starlette ``app`` (default: the
    server's) by :func:`installed_assets_app` of ``directory`` (default: Solara's asset
    cache); the number of routes replaced (0: it was absent and is now added)."""
    from solara.server import settings
    from solara.server.cdn_helper import cdn_url_path
    from starlette.routing import Mount

    if app is None:
        import solara.server.starlette as server

        app = server.app
    directory = settings.assets.proxy_cache_dir if directory is None else directory
    path = f"/{cdn_url_path}"
    routes = app.router.routes
    old = [i for i, r in enumerate(routes) if isinstance(r, Mount) and r.path == path]
    for i in reversed(old):
        del routes[i]
    routes.insert(0, Mount(path, app=installed_assets_app(directory)))
    return len(old)


def default_signals_in_forked_children() -> None:
    """Give every process forked from this one from now on the default SIGTERM and SIGINT.

    A run's worker processes are forked from the server (``experiments.runner``'s pool)
    and would inherit the server's (uvicorn's) Python handlers, which only ask the copied
    server to stop: a server stopped mid-run (SIGTERM to its process group) left its
    workers behind for good. Measured before: both workers alive after SIGTERM; after:
    both gone."""
    import signal

    def reset() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)

    os.register_at_fork(after_in_child=reset)


def main(argv: list[str] | None = None) -> None:
    """``python -m sim.presentation.serve PORT``: Solara's server for the page, hardened."""
    argv = sys.argv[1:] if argv is None else argv
    port = int(argv[0]) if argv else DEFAULT_PORT
    # what `solara run` sets before its server imports the app (Solara registers the page
    # when its server module is imported, which harden() does first)
    os.environ.update(ENVIRONMENT, SOLARA_APP=APP, SERVER_NAME=HOST, SERVER_PORT=str(port))
    from solara.server import settings

    settings.main.mode = "production"
    settings.assets.proxy = True  # the page's assets from /_solara/cdn, never the CDN's url
    settings.theme.show_banner = False
    harden()
    default_signals_in_forked_children()
    from solara.__main__ import cli

    cli(solara_arguments(port), prog_name="solara")


if __name__ == "__main__":
    main()
