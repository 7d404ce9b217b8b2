"""The course site in a real headless browser: Debian's ``chromium`` driven by Playwright.

``check_site`` opens every page of the built site from ``file://`` — the index, each notebook, and the search
page with a query — waits for MathJax to finish, saves a screenshot of each page's first screen (and, where it
has formulas, of its first formula) to ``site/_screenshots/``, and fails (``SiteCheckFailed``) on any console
error, uncaught page error, failed request, image that did not load, formula MathJax could not typeset
(``mjx-merror``; the site makes an undefined macro one, ``mh.repro.site.MATHJAX_CONFIG``), formulas drawn without
MathJax's web fonts, TeX left as text in what a reader sees (``unrendered_tex``), or a search that finds nothing.
Playwright drives the system's Chromium (``executable_path``): its own browser downloads are not available here,
and none is needed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
SEARCH_PROBE = "selective"  # a word every build of the course contains (notebook 01 is about selective SSMs)
# TeX a reader should never see as text: math delimiters, or a control word such as \bar or \frac{…}
TEX_IN_TEXT = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\(?:begin|end|frac|mathbf|mathrm|bar|overline|left|right|sum)\b")
VISIBLE_PROSE = """() => {
    const root = (document.querySelector('main') || document.body).cloneNode(true);
    const hidden = 'pre, code, script, style, mjx-container, .MathJax, mjx-assistive-mml';
    root.querySelectorAll(hidden).forEach(e => e.remove());
    return root.innerText;
}"""
MATHJAX_DONE = """() => (window.MathJax && MathJax.startup && MathJax.startup.promise)
    ? MathJax.startup.promise.then(() => true) : false"""
# MathJax's CHTML fonts (families MJXTEX…, MJXZERO) once the page's fonts settled: without them bars float above
# letters and brackets shrink, the formulas still "render"
MATHJAX_FONTS = """async () => {
    await document.fonts.ready;
    return Array.from(document.fonts).filter(f => /MJX/.test(f.family)).map(f => f.status);
}"""


class SiteCheckFailed(AssertionError):
    """The browser saw errors, missing images, broken or unrendered math; the message lists them."""


class SiteNotCheckable(RuntimeError):
    """The check cannot start (no Chromium, or no site built); the message says what to do."""


def find_chromium() -> str | None:
    """Path of an installed Chromium, or None."""
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def unrendered_tex(text: str) -> list[str]:
    """The TeX fragments in ``text`` (a page's visible prose, code removed), each with a little context."""
    spans = [(max(match.start() - 20, 0), match.end() + 20) for match in TEX_IN_TEXT.finditer(text)]
    return [text[start:end].replace("\n", " ") for start, end in spans]


def site_pages(site: Path) -> list[str]:
    """The pages to open: index.html first, then every other top-level page but Sphinx's generated index."""
    pages = sorted(path.name for path in site.glob("*.html") if path.name not in ("index.html", "genindex.html"))
    return ["index.html", *(name for name in pages if name != "search.html")]


def _broken_images(page) -> list[str]:
    return page.evaluate(
        "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => (i.getAttribute('src') || '').slice(0, 80))"
    )


def _typeset(page) -> tuple[int, int, bool]:
    """Wait until MathJax (when the page loads it) has typeset; returns (formulas, formulas with an error,
    whether MathJax's web fonts loaded — True when there is nothing to typeset)."""
    if page.evaluate("typeof window.MathJax !== 'undefined'"):
        page.wait_for_function("window.MathJax && window.MathJax.startup !== undefined", timeout=60_000)
        page.evaluate(MATHJAX_DONE)
    formulas = page.evaluate("document.querySelectorAll('mjx-container').length")
    errors = page.evaluate("document.querySelectorAll('mjx-container mjx-merror').length")
    fonts_loaded = not formulas or "loaded" in page.evaluate(MATHJAX_FONTS)
    return formulas, errors, fonts_loaded


def _open(browser, url: str, problems: list[str], label: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda message: message.type == "error" and problems.append(f"{label}: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"{label}: uncaught {error}"))
    page.on("requestfailed", lambda request: problems.append(f"{label}: failed to load {request.url[:120]}"))
    page.goto(url, wait_until="load")
    return page


def _check_page(browser, site: Path, name: str, shots: Path, problems: list[str]) -> str:
    page = _open(browser, (site / name).as_uri(), problems, name)
    formulas, math_errors, fonts_loaded = _typeset(page)
    problems += [f"{name}: image not loaded: {src}" for src in _broken_images(page)]
    problems += [f"{name}: TeX left as text: …{fragment}…" for fragment in unrendered_tex(page.evaluate(VISIBLE_PROSE))]
    if math_errors:
        problems.append(f"{name}: MathJax could not typeset {math_errors} of {formulas} formulas")
    if not fonts_loaded:
        problems.append(f"{name}: MathJax's web fonts did not load: its {formulas} formulas are drawn in other fonts")
    stem = Path(name).stem
    page.screenshot(path=str(shots / f"{stem}.png"))
    if formulas:
        page.locator("mjx-container").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / f"{stem}-first-formula.png"))
    images = page.evaluate("document.images.length")
    page.close()
    return f"{name}: {images} images, {formulas} formulas typeset"


def _check_search(browser, site: Path, shots: Path, problems: list[str]) -> str:
    page = _open(browser, (site / "search.html").as_uri() + f"?q={SEARCH_PROBE}", problems, "search.html")
    try:
        page.wait_for_selector("#search-results ul.search li", timeout=30_000)
    except Exception:  # Playwright's TimeoutError: the search listed nothing
        problems.append(f"search.html: searching for {SEARCH_PROBE!r} found no page")
    hits = page.locator("#search-results ul.search li").count()
    page.screenshot(path=str(shots / "search.png"))
    page.close()
    return f"search.html?q={SEARCH_PROBE}: {hits} pages found"


def check_site(site: Path, pages: list[str] | None = None, search: bool = True) -> list[str]:
    """Open ``pages`` of ``site`` (default ``site_pages``) and, when ``search``, its search page; returns one line
    per page; raises SiteCheckFailed listing every problem."""
    from playwright.sync_api import sync_playwright

    site = Path(site).resolve()
    executable = find_chromium()
    if executable is None:
        raise SiteNotCheckable(
            "no Chromium found (looked for chromium, chromium-browser, google-chrome): apt-get install chromium"
        )
    if not (site / "index.html").exists():
        raise SiteNotCheckable(f"{site} has no index.html: run make site first")
    pages = site_pages(site) if pages is None else pages
    shots = site / "_screenshots"
    shots.mkdir(exist_ok=True)
    problems, report = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        report += [_check_page(browser, site, name, shots, problems) for name in pages]
        if search:
            report.append(_check_search(browser, site, shots, problems))
        browser.close()
    if problems:
        raise SiteCheckFailed("the browser check found problems:\n" + "\n".join(problems))
    return report
