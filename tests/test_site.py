"""The course site: a Sphinx book built from the committed executed notebooks (nothing re-run), offline, linked,
and a browser check that fails on what a reader would see broken."""

import json
import re
import shutil
import subprocess
import sys
from urllib.parse import urlparse

import nbformat
import pytest

from mh.io import PROJECT_ROOT
from mh.repro.browser import SiteCheckFailed, check_site, find_chromium, site_pages, unrendered_tex
from mh.repro.outputs import output_folder, presented_profile
from mh.repro.reproduce import NOTEBOOKS
from mh.repro.site import (
    FOLD_CELL,
    FOLD_INPUT,
    MATHJAX_CONFIG,
    WIDGET_NOTE,
    WIDGET_STATE,
    WIDGET_VIEW,
    SiteError,
    build_site,
    first_paragraph,
    fold_setup_cells,
    without_widget_views,
)

PRESENTED = presented_profile(PROJECT_ROOT)
EXECUTED = PROJECT_ROOT / output_folder("executed", PRESENTED)
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="no chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build_site(out, EXECUTED)
    return out


def test_every_notebook_has_a_page_with_its_figures_and_the_course_in_its_sidebar(site):
    for name in NOTEBOOKS:
        page = (site / f"{name}.html").read_text()
        figures = re.findall(r'<img [^>]*src="(_images/[^"]+)"', page)
        assert figures and all((site / figure).exists() for figure in figures), f"{name}.html shows no figure"
        sidebar = page[page.index("bd-sidebar-primary") :]
        assert all(f'href="{other}.html"' in sidebar or other == name for other in NOTEBOOKS), name


def test_every_internal_link_and_source_resolves(site):
    for page in [site / "index.html", *(site / f"{name}.html" for name in NOTEBOOKS)]:
        for target in re.findall(r'(?:href|src)="([^"#]+)', page.read_text()):
            parsed = urlparse(target)
            if parsed.scheme in ("http", "https", "mailto", "data"):
                continue
            assert (page.parent / parsed.path).resolve().exists(), f"{page.name} links to missing {target}"


def test_the_pages_load_nothing_from_the_network_and_mathjax_is_local_with_its_fonts(site):
    for name in ["index", "search", *NOTEBOOKS]:
        page = (site / f"{name}.html").read_text()
        assert not re.search(r'<script[^>]+src="(https?:)?//', page), f"{name}.html loads a script from the network"
        assert not re.search(r'<link[^>]+href="(https?:)?//', page), f"{name}.html loads a stylesheet from the network"
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert list((site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


def test_the_index_lists_the_course_in_order_with_the_paper_and_search_covers_it(site):
    index = (site / "index.html").read_text()
    body = index[index.index('id="main-content"') :]
    positions = [body.index(f'href="{name}.html"') for name in NOTEBOOKS]
    assert positions == sorted(positions) and "arXiv:2506.16353" in body and f"<strong>{PRESENTED}</strong>" in body
    search_index = (site / "searchindex.js").read_text()
    assert all(name in search_index for name in NOTEBOOKS) and "zoh" in search_index


def test_each_page_folds_the_injected_parameters_and_the_set_up_code(site):
    for name in NOTEBOOKS:
        page = (site / f"{name}.html").read_text()
        folded = re.findall(r'<details class="[^"]*hide[^"]*">(.*?)</details>', page, flags=re.S)
        assert any("Parameters" in block for block in folded), f"{name}: the injected cell is not folded"
        assert any("import" in block for block in folded), f"{name}: the set-up cell is not folded"


def test_folding_tags_the_injected_cell_and_the_set_up_cell_only():
    cells = [
        nbformat.v4.new_code_cell("PROFILE = 'auto'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("PROFILE = 'cpu'", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("import torch\nfrom mh import ssm\n\nws = open_workspace()"),
        nbformat.v4.new_code_cell("x = 1\nimport numpy"),
        nbformat.v4.new_code_cell("%matplotlib inline\nimport numpy"),
    ]
    tags = [cell.metadata.get("tags", []) for cell in fold_setup_cells(nbformat.v4.new_notebook(cells=cells)).cells]
    assert tags == [["parameters"], ["injected-parameters", FOLD_CELL], [FOLD_INPUT], [], []]


def test_a_missing_executed_notebook_says_to_run_reproduce(tmp_path):
    with pytest.raises(SiteError, match="make reproduce"):
        build_site(tmp_path / "site", tmp_path)


def test_index_summaries_end_between_words():
    long = "**What this shows.** " + " ".join(["selective"] * 80) + "\n\nnext"
    summary = first_paragraph(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(long)]))
    assert summary.endswith("selective …") and len(summary) <= 402


def widget_model(name: str, **state) -> dict:
    return {"model_name": name, "state": state}


def test_a_page_replaces_controls_by_a_note_and_progress_bars_by_their_last_count():
    picture = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})
    control = nbformat.v4.new_output(
        "display_data", data={WIDGET_VIEW: {"model_id": "c"}, "text/plain": "interactive(…)"}
    )
    bar = nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "bar"}, "text/plain": "0%"})
    models = {
        "bar": widget_model("HBoxModel", children=["IPY_MODEL_label", "IPY_MODEL_progress", "IPY_MODEL_count"]),
        "label": widget_model("HTMLModel", value="decode\u20075000\u2007images\u2007once:\u2007\u2007\u20070%"),
        "progress": widget_model("FloatProgressModel", value=20.0, max=20.0),
        "count": widget_model("HTMLModel", value="\u20070/20\u2007[00:00&lt;?,\u2007?it/s]"),
        "c": widget_model("VBoxModel", children=[]),
    }
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("explore", outputs=[picture, bar, control])],
        metadata={"widgets": {WIDGET_STATE: {"state": models}}},
    )
    cleaned = without_widget_views(notebook)
    outputs = cleaned.cells[0].outputs
    assert outputs[0] == picture and outputs[1].text == "decode 5000 images once: 20/20 (100%)\n"
    assert outputs[2].data["text/html"] == WIDGET_NOTE and len(outputs) == 3
    assert "widgets" not in cleaned.metadata  # the saved state would make the page fetch the widget manager


def test_unrendered_tex_finds_delimiters_and_control_words_but_not_plain_prose():
    assert unrendered_tex("the exact rule \\(\\bar{A} = e^{\\Delta A}\\) holds")
    assert unrendered_tex("a fraction \\frac{1}{2} left as text")
    assert unrendered_tex("display $$x$$ math") and not unrendered_tex("costs $5 and 3 % — Ā = exp(ΔA)")


@pytest.mark.slow
@needs_chromium
def test_the_site_opens_in_headless_chromium_without_errors(site):
    result = subprocess.run(
        [sys.executable, "-m", "mh.repro.site", "check", "--out", str(site)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in site_pages(site):
        assert (site / "_screenshots" / name.replace(".html", ".png")).stat().st_size > 10_000
    assert (site / "_screenshots" / "01_ssm_zoh_discretization-first-formula.png").exists()
    assert re.search(r"search\.html\?q=\w+: [1-9]\d* pages found", result.stdout)


def one_page_site(tmp_path, body: str, mathjax=None):
    """A one-page site with ``body`` as its text, loading MathJax from ``mathjax`` (a path) with the site's
    configuration when given."""
    broken = tmp_path / "broken"
    broken.mkdir()
    config = f"<script>window.MathJax = {json.dumps(MATHJAX_CONFIG)};</script>"
    script = f'{config}<script defer src="{mathjax.as_uri()}"></script>' if mathjax else ""
    (broken / "index.html").write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8">{script}</head><body><main><p>{body}</p></main></body></html>'
    )
    return broken


@pytest.mark.slow
@needs_chromium
def test_the_browser_check_fails_on_a_formula_mathjax_cannot_typeset(site, tmp_path):
    mathjax = site / "_static" / "mathjax" / "tex-chtml.js"
    broken = one_page_site(tmp_path, r"The rule \(\bar{A} = \exp(\Delta \notamacro{A})\) is exact.", mathjax)
    with pytest.raises(SiteCheckFailed, match="MathJax could not typeset 1 of 1 formulas"):
        check_site(broken, ["index.html"], search=False)


@pytest.mark.slow
@needs_chromium
def test_the_browser_check_fails_on_tex_left_as_text(tmp_path):
    broken = one_page_site(tmp_path, r"The rule \(\bar{A}\) is exact.")  # no MathJax on the page: TeX stays text
    with pytest.raises(SiteCheckFailed, match="TeX left as text"):
        check_site(broken, ["index.html"], search=False)


@pytest.mark.slow
@needs_chromium
def test_the_browser_check_fails_when_mathjax_draws_without_its_fonts(site, tmp_path):
    mathjax = tmp_path / "mathjax"
    shutil.copytree(site / "_static" / "mathjax", mathjax, ignore=shutil.ignore_patterns("*.woff"))
    broken = one_page_site(tmp_path, r"The rule \(\bar{A} = \exp(\Delta A)\) is exact.", mathjax / "tex-chtml.js")
    with pytest.raises(SiteCheckFailed, match="web fonts did not load"):
        check_site(broken, ["index.html"], search=False)
