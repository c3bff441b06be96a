"""The app's front-end assets, served locally: no CDN at run time.

Solara's server hands the browser its front end (the Vuetify app, RequireJS, Font
Awesome) from ``/_solara/cdn/PACKAGE@VERSION/...``, which it fills on demand from a public
CDN into ``solara.server.settings.assets.proxy_cache_dir`` (under the virtual
environment). Offline, or where that CDN is unreachable, every such asset is a 404 and the
page stays blank. This module puts those packages into that folder beforehand, from the
npm registry (``npm pack PACKAGE@VERSION``), at the versions the installed Solara asks for
(read from its page template), so the server never needs the CDN.

``python -m sim.presentation.assets`` (run by ``make`` setup, and by ``plsim app`` when a
package is missing) fetches what is missing; ``--check`` only reports.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


class AssetError(Exception):
    """An asset could not be put in place (the message says which and why)."""


def _solara_root() -> Path:
    import solara

    return Path(solara.__file__).resolve().parent


def cache_dir() -> Path:
    """The folder Solara's server serves ``/_solara/cdn/`` from."""
    from solara.server import settings

    return Path(settings.assets.proxy_cache_dir)


def required_packages() -> list[tuple[str, str]]:
    """(npm name, version) of every package the installed Solara's page loads through its
    CDN proxy, for the installed ipyvuetify (Vuetify 2 app for ipyvuetify 1, Vuetify 3 app
    for ipyvuetify 3)."""
    import ipyvuetify
    from solara.server import settings

    template = (_solara_root() / "server" / "templates" / "solara.html.j2").read_text()
    found = re.findall(r"\{\{\s*cdn\s*\}\}/((?:@[\w.-]+/)?[\w.-]+)@(\d[\w.-]*)/", template)
    fa = re.match(r"/?((?:@[\w.-]+/)?[\w.-]+)@(\d[\w.-]*)/", settings.assets.fontawesome_path)
    if fa:
        found.append(fa.groups())
    vuetify3 = int(ipyvuetify.__version__.split(".")[0]) >= 3
    out = []
    for name, version in found:
        if name.endswith("vuetify3-app") != vuetify3 and "vuetify" in name:
            continue
        if (name, version) not in out:
            out.append((name, version))
    return out


def missing(directory: Path | None = None) -> list[tuple[str, str]]:
    directory = cache_dir() if directory is None else directory
    return [(n, v) for n, v in required_packages()
            if not (directory / f"{n}@{v}" / "package.json").is_file()]


def ensure_assets(directory: Path | None = None, npm: str = "npm",
                  log=print) -> list[str]:
    """Fetch every missing package into the cache folder; the ones fetched. Each package is
    unpacked into a temporary folder and renamed into place (never half there)."""
    directory = cache_dir() if directory is None else directory
    todo = missing(directory)
    if not todo:
        return []
    exe = shutil.which(npm)
    if exe is None:
        raise AssetError(f"the app's front-end assets are missing from {directory} and "
                         f"'{npm}' is not installed to fetch them "
                         f"({', '.join(f'{n}@{v}' for n, v in todo)})")
    directory.mkdir(parents=True, exist_ok=True)
    done = []
    for name, version in todo:
        spec = f"{name}@{version}"
        log(f"fetching front-end asset {spec} (npm registry) into {directory}")
        with tempfile.TemporaryDirectory(dir=directory, prefix=".fetch-") as tmp:
            try:
                out = subprocess.run([exe, "pack", spec, "--silent", "--pack-destination", tmp],
                                     capture_output=True, text=True, timeout=300, cwd=tmp)
            except (OSError, subprocess.SubprocessError) as exc:
                raise AssetError(f"npm pack {spec} failed: {exc}") from None
            tarballs = sorted(Path(tmp).glob("*.tgz"))
            if out.returncode != 0 or not tarballs:
                why = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no tarball"]
                raise AssetError(f"npm pack {spec} failed: {why[0]}")
            unpacked = Path(tmp) / "unpacked"
            with tarfile.open(tarballs[0]) as tar:
                tar.extractall(unpacked, filter="data")
            root = unpacked / "package"
            if not (root / "package.json").is_file():
                raise AssetError(f"npm pack {spec}: no package/package.json in the tarball")
            target = directory / spec
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            root.rename(target)
        done.append(spec)
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.presentation.assets",
                                description="Put the app's front-end assets in Solara's "
                                            "proxy cache (no CDN at run time).")
    p.add_argument("--check", action="store_true", help="only report what is missing")
    args = p.parse_args(argv)
    if args.check:
        gone = missing()
        for n, v in gone:
            print(f"missing: {n}@{v}")
        print(f"{len(required_packages()) - len(gone)} of {len(required_packages())} "
              f"front-end packages in {cache_dir()}")
        return 1 if gone else 0
    try:
        fetched = ensure_assets()
    except AssetError as err:
        print(f"plsim: error: {err}", file=sys.stderr)
        return 2
    print(f"front-end assets in {cache_dir()}: "
          f"{'fetched ' + ', '.join(fetched) if fetched else 'all present'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
