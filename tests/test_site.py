"""The course site: built from the committed executed notebooks (nothing re-run), offline, linked."""

import re
import subprocess
import sys
from urllib.parse import urlparse

import nbformat
import pytest

from mh.io import PROJECT_ROOT
from mh.repro.browser import find_chromium
from mh.repro.outputs import output_folder, presented_profile
from mh.repro.reproduce import NOTEBOOKS
from mh.repro.site import WIDGET_NOTE, WIDGET_VIEW, SiteError, build_site, without_widget_views

PRESENTED = presented_profile(PROJECT_ROOT)
EXECUTED = PROJECT_ROOT / output_folder("executed", PRESENTED)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build_site(out, EXECUTED)
    return out


def test_every_notebook_has_a_page_with_its_figures_inline(site):
    for name in NOTEBOOKS:
        page = (site / f"{name}.html").read_text()
        assert page.count('src="data:image/png;base64,') >= 1, f"{name}.html shows no figure"
        assert 'class="course"' in page


def test_every_internal_link_and_source_resolves(site):
    pages = [site / "index.html", *(site / f"{name}.html" for name in NOTEBOOKS)]
    for page in pages:
        for target in re.findall(r'(?:href|src)="([^"#]+)', page.read_text()):
            parsed = urlparse(target)
            if parsed.scheme in ("http", "https", "mailto", "data") or target.startswith("data:"):
                continue
            assert (page.parent / parsed.path).resolve().exists(), f"{page.name} links to missing {target}"


def test_the_pages_load_nothing_from_the_network(site):
    for name in NOTEBOOKS:
        page = (site / f"{name}.html").read_text()
        assert not re.search(r'<script[^>]+src="https?://', page), f"{name}.html loads a script from the network"
        assert not re.search(r'<link[^>]+href="https?://', page)
    assert (site / "_static" / "mathjax" / "MathJax.js").exists()


def test_the_index_lists_the_course_in_order_with_the_paper(site):
    index = (site / "index.html").read_text()
    positions = [index.index(f'href="{name}.html"') for name in NOTEBOOKS]
    assert positions == sorted(positions) and "arXiv:2506.16353" in index


def test_a_missing_executed_notebook_says_to_run_reproduce(tmp_path):
    with pytest.raises(SiteError, match="make reproduce"):
        build_site(tmp_path / "site", tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="site check skipped: no chromium (apt-get install chromium)")
def test_the_site_opens_in_headless_chromium_without_errors(site):
    result = subprocess.run(
        [sys.executable, "-m", "mh.repro.site", "check", "--out", str(site)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (site / "_screenshots" / "index.png").stat().st_size > 10_000
    assert (site / "_screenshots" / "01_ssm_zoh_discretization.png").exists()


def test_index_summaries_end_between_words():
    import nbformat

    from mh.repro.site import first_paragraph

    long = "**What this shows.** " + " ".join(["selective"] * 80) + "\n\nnext"
    summary = first_paragraph(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(long)]))
    assert summary.endswith("selective …") and len(summary) <= 402


def test_a_page_replaces_widget_views_by_a_note_and_keeps_the_static_picture():
    picture = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})
    widget = nbformat.v4.new_output(
        "display_data", data={WIDGET_VIEW: {"model_id": "abc"}, "text/plain": "interactive(children=(...))"}
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("explorer", outputs=[picture, widget])])
    outputs = without_widget_views(notebook).cells[0].outputs
    assert [list(output.data) for output in outputs] == [["image/png"], ["text/html"]]
    assert outputs[1].data["text/html"] == WIDGET_NOTE and "interactive(" not in str(outputs)
