"""Shared test fixtures: where the real CIFAR-10 copy is, and a skip marker without it.

The data is decoded once per machine into the array cache (~/.cache/ttq/arrays, or
$TTQ_CACHE_DIR); nothing is ever written beside ../shared/data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CIFAR_ARCHIVE = Path(os.environ.get("TTQ_TEST_ARCHIVE",
                                    REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))

# Skip without the data on a developer's machine, but never in CI (CI=true), where
# ../shared is always beside the checkout: a missing archive there must fail loudly.
needs_cifar = pytest.mark.skipif(not CIFAR_ARCHIVE.exists() and not os.environ.get("CI"),
                                 reason=f"real CIFAR-10 archive not found at {CIFAR_ARCHIVE}")


# ----------------------------------------------------------------------------- HTML checks

def external_references(html: str) -> list[str]:
    """URLs and src/href attributes that would make a report need the network (the SVG
    namespace URIs are not fetched and do not count)."""
    import re
    from html.parser import HTMLParser

    found = [u for u in re.findall(r"https?://[^\s\"'<>)]+", html)
             if not u.startswith("http://www.w3.org/")]

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            d = dict(attrs)
            if tag in ("script", "img", "iframe") and "src" in d:
                found.append(f"<{tag} src={d['src']}>")
            if tag == "link" and "href" in d:
                found.append(f"<link href={d['href']}>")

    Collector().feed(html)
    return found


def chromium_console_errors(html_path: Path, workdir: Path) -> list[str]:
    """Open ``html_path`` in headless Chromium, screenshot it, return console errors."""
    import subprocess
    shot = workdir / "shot.png"
    r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--no-first-run", "--disable-sync", f"--user-data-dir={workdir / 'u'}",
                        "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
                        "--window-size=1280,2400", Path(html_path).as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000, r.stderr[-2000:]
    return [line for line in r.stderr.splitlines()
            if "CONSOLE" in line and ("ERROR" in line or "Uncaught" in line)]
