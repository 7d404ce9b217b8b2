"""The course site in a real headless browser: Debian's ``chromium`` driven by Playwright.

``check_site`` opens ``index.html`` and one notebook page from ``file://``, waits for MathJax, saves
full-page screenshots to ``site/_screenshots/`` and fails (``SiteCheckFailed``) on any console error,
uncaught page error, failed request or image that did not load. Playwright drives the system's Chromium
(``executable_path``): its own browser downloads are not available here, and none is needed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CHECKED_PAGES = ("index.html", "01_ssm_zoh_discretization.html")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class SiteCheckFailed(AssertionError):
    """The browser saw errors or missing images; the message lists them."""


class SiteNotCheckable(RuntimeError):
    """The check cannot start (no Chromium, or no site built); the message says what to do."""


def find_chromium() -> str | None:
    """Path of an installed Chromium, or None."""
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def _broken_images(page) -> list[str]:
    return page.evaluate(
        "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => (i.getAttribute('src') || '').slice(0, 80))"
    )


def _wait_for_mathjax(page) -> int:
    """Wait until MathJax has typeset the page (when it has MathJax); returns how many formulas it rendered."""
    if not page.evaluate("typeof window.MathJax !== 'undefined'"):
        return 0
    page.wait_for_function(
        "window.MathJax && MathJax.Hub && MathJax.Hub.queue && MathJax.Hub.queue.pending === 0 "
        "&& MathJax.Hub.queue.running === 0",
        timeout=60_000,
    )
    return page.evaluate("document.querySelectorAll('.MathJax, mjx-container, .MathJax_CHTML').length")


def check_site(site: Path, pages: tuple[str, ...] = CHECKED_PAGES) -> list[str]:
    """Open ``pages`` of ``site``; returns one line per page; raises SiteCheckFailed listing every problem."""
    from playwright.sync_api import sync_playwright

    site = Path(site).resolve()
    executable = find_chromium()
    if executable is None:
        raise SiteNotCheckable(
            "no Chromium found (looked for chromium, chromium-browser, google-chrome): apt-get install chromium"
        )
    missing = [name for name in pages if not (site / name).exists()]
    if missing:
        raise SiteNotCheckable(f"{site} lacks {missing}: run make site first")
    shots = site / "_screenshots"
    shots.mkdir(exist_ok=True)
    problems, report = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        for name in pages:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("console", lambda message, log=errors: message.type == "error" and log.append(message.text))
            page.on("pageerror", lambda error, log=errors: log.append(f"uncaught: {error}"))
            page.on("requestfailed", lambda request, log=errors: log.append(f"failed to load {request.url[:120]}"))
            page.goto((site / name).as_uri(), wait_until="load")
            formulas = _wait_for_mathjax(page)
            broken = _broken_images(page)
            images = page.evaluate("document.images.length")
            shot = shots / f"{Path(name).stem}.png"
            page.screenshot(path=str(shot), full_page=True)
            problems += [f"{name}: {error}" for error in errors] + [
                f"{name}: image not loaded: {src}" for src in broken
            ]
            report.append(f"{name}: {images} images, {formulas} formulas typeset, screenshot {shot.relative_to(site)}")
            page.close()
        browser.close()
    if problems:
        raise SiteCheckFailed("the browser check found problems:\n" + "\n".join(problems))
    return report
