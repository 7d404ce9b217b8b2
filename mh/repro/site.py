"""``make site``: the executed notebooks as a course book that works offline, from ``file://`` or any web server.

    python -m mh.repro.site build [--out site]     # from notebooks/executed/<profile>/, without re-running anything
    python -m mh.repro.site check [--out site]     # headless Chromium: every page, screenshots (mh.repro.browser)

Built with Sphinx, MyST-NB and the Sphinx Book Theme — the stack Jupyter Book 1 is made of, driven directly so that
the one configuration lives here (``sphinx_config``) rather than in a second set of files. That gives the course a
sidebar table of contents, Sphinx's own search (its index is a script file, so it works from ``file://``), previous
and next links, and folding of code cells. Formulas are typeset by MathJax 3 with its web fonts, served from the
site itself (the ``sphinx-mathjax-offline`` package ships them). Nothing is executed again: MyST-NB reads the
outputs the notebooks already hold.

Before Sphinx sees a notebook, the build folds what a reader need not read first: papermill's injected
parameters cell is collapsed behind a toggle (it is provenance, not narrative) and the set-up cell (imports, then
the workspace) has its code folded, its output kept (``fold_setup_cells``); widget views, which need a live kernel,
become text — a progress bar its last count, a control a note (``without_widget_views``).
"""

from __future__ import annotations

import ast
import html
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

from mh.cli import OneLineParser, add_debug_flag, cli_errors, returns_status
from mh.io import PROJECT_ROOT
from mh.repro.browser import SiteNotCheckable, check_site
from mh.repro.outputs import output_folder, presented_profile
from mh.repro.reproduce import NOTEBOOKS

SITE_TITLE = "MambaHash companion"
PAPER = (
    "Chao He and Hongxi Wei. *MambaHash: Visual State Space Deep Hashing Model for Large-Scale Image Retrieval.* "
    "ICMR 2025. [arXiv:2506.16353](https://arxiv.org/abs/2506.16353)"
)
# MathJax 3 draws an undefined macro as red text by default (its noundefined package); without it, an error the
# browser check sees (mh.repro.browser)
MATHJAX_CONFIG = {"tex": {"packages": {"[-]": ["noundefined"]}}}
INJECTED_PARAMETERS = "injected-parameters"
FOLD_CELL, FOLD_INPUT = "hide-cell", "hide-input"  # MyST-NB's tags: a collapsed cell, a collapsed source


class SiteError(RuntimeError):
    """The site cannot be built or fails its browser check; the message says why and what to do."""


def notebook_title(notebook) -> str:
    """The first markdown heading, without its ``#``; the file name when there is none."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.metadata.get("papermill", {}).get("output_path", "notebook")


def first_paragraph(notebook) -> str:
    """The opening cell's "What this shows" paragraph, as plain text, for the index."""
    source = notebook.cells[0].source if notebook.cells else ""
    match = re.search(r"\*\*What this shows\.\*\*(.*?)(\n#\s*\n|\n\n|$)", source, flags=re.S)
    text = match.group(1) if match else ""
    plain = re.sub(r"[`*]", "", " ".join(text.split()))
    return plain if len(plain) <= 400 else plain[:400].rsplit(" ", 1)[0] + " …"  # cut between words


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_NOTE = (
    '<p class="widget-note"><em>Interactive controls here: they need a live kernel. Open this notebook in '
    "JupyterLab (<code>make lab</code>) to use them; the static picture above shows their default.</em></p>"
)


def progress_bar_text(model_id: str, models: dict) -> str | None:
    """The last state of a tqdm progress bar (an HBox of a label, a progress and a counter) as one line,
    ``"decode 5000 images once: 20/20 (100%)"``; None when ``model_id`` is not such a bar. The saved state's
    labels are those of the bar's first draw, so the count comes from the progress model."""
    children = models.get(model_id, {}).get("state", {}).get("children", [])
    parts = [models.get(child.removeprefix("IPY_MODEL_"), {}) for child in children]
    names = [part.get("model_name") for part in parts]
    if names != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    label = re.sub(r"[\s\u2007]*\d+%$", "", html.unescape(parts[0]["state"].get("value", ""))).replace("\u2007", " ")
    done, total = parts[1]["state"].get("value", 0), parts[1]["state"].get("max") or 1
    return f"{label} {done:g}/{total:g} ({100 * done / total:.0f}%)".strip()


def without_widget_views(notebook):
    """Replace every ipywidgets view in ``notebook``'s outputs (they need a live kernel; a static page would show
    their text form, ``interactive(children=…)``): a tqdm progress bar by its last count as text, any other
    control by one note that says where to use it; and drop the saved widget state, which would make the page
    load the widget manager from a CDN. Edits in place and returns the notebook."""
    models = notebook.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs, controls = [], False
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                outputs.append(output)
            elif (bar := progress_bar_text(view.get("model_id", ""), models)) is not None:
                outputs.append(nbformat.v4.new_output("stream", name="stdout", text=bar + "\n"))
            else:
                controls = True
        if controls:
            outputs.append(nbformat.v4.new_output("display_data", data={"text/html": WIDGET_NOTE}))
        cell["outputs"] = outputs
    return notebook


def is_setup_cell(cell) -> bool:
    """A code cell that opens with an import: each notebook's set-up cell (imports, then opening the workspace)."""
    if cell.cell_type != "code":
        return False
    try:
        statements = ast.parse(cell.source).body
    except SyntaxError:  # IPython magics are not Python
        return False
    return bool(statements) and isinstance(statements[0], ast.Import | ast.ImportFrom)


def fold_setup_cells(notebook):
    """Tag papermill's injected parameters cell to be collapsed whole and the set-up cell to have its source
    collapsed, its output kept (MyST-NB's ``hide-cell`` / ``hide-input``): one visible parameters cell, then
    narrative. Edits in place and returns the notebook."""
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if INJECTED_PARAMETERS in tags and FOLD_CELL not in tags:
            tags.append(FOLD_CELL)
        elif is_setup_cell(cell) and FOLD_INPUT not in tags:
            tags.append(FOLD_INPUT)
    return notebook


def index_markdown(names: list[str], titles: dict[str, str], summaries: dict[str, str], profile: str) -> str:
    """The book's front page: what the course is, the paper, the notebooks in order (also the sidebar's toctree)."""
    items = "\n".join(f"1. [{titles[name]}]({name}.ipynb)  \n   {summaries[name]}" for name in names)
    toctree = "\n".join(names)
    return f"""# {SITE_TITLE}: the course

The notebooks of `mambahash-companion`, executed by `make reproduce`, in reading order. Every number in them says
where it came from: the paper, or a run of this project under a named profile. These pages show the
**{html.escape(profile)}** profile's run (the most trained profile whose outputs are in the repository).

**Paper.** {PAPER}

{items}

Open and run them yourself with `make lab`; regenerate every table and figure with `make reproduce`.

```{{toctree}}
:hidden:
:maxdepth: 1

{toctree}
```
"""


def sphinx_config() -> dict:
    """Sphinx's configuration for the book (written as the source tree's ``conf.py``)."""
    return {
        "project": SITE_TITLE,
        "html_title": SITE_TITLE,
        "extensions": ["myst_nb", "sphinx-mathjax-offline"],
        "html_theme": "sphinx_book_theme",
        "html_theme_options": {
            "home_page_in_toc": True,
            "show_toc_level": 2,
            "use_download_button": True,
            "use_fullscreen_button": False,
        },
        "html_context": {"default_mode": "light"},  # without it the theme logs an error on a first visit
        "html_show_search_summary": False,  # summaries fetch each page, which browsers refuse from file://
        "nb_ipywidgets_js": {},  # widget views are replaced before the build (without_widget_views)
        "nb_execution_mode": "off",
        "nb_merge_streams": True,
        "myst_enable_extensions": ["dollarmath", "amsmath"],
        "mathjax3_config": MATHJAX_CONFIG,
        "exclude_patterns": ["_build", "**.ipynb_checkpoints"],
        "suppress_warnings": ["mystnb.unknown_mime_type"],
    }


def write_source(source: Path, executed: Path, profile: str) -> None:
    """The book's source tree in ``source``: the prepared notebooks, the solutions they link, the index."""
    notebooks = {name: nbformat.read(executed / f"{name}.ipynb", as_version=4) for name in NOTEBOOKS}
    for name, notebook in notebooks.items():
        nbformat.write(fold_setup_cells(without_widget_views(notebook)), source / f"{name}.ipynb")
    shutil.copytree(executed.parent.parent / "solutions", source / "solutions")  # notebooks/executed/<p>/ → notebooks/
    titles = {name: notebook_title(nb) for name, nb in notebooks.items()}
    summaries = {name: first_paragraph(nb) for name, nb in notebooks.items()}
    (source / "index.md").write_text(index_markdown(list(NOTEBOOKS), titles, summaries, profile), encoding="utf-8")


def build_site(out: Path | None = None, executed: Path | None = None) -> list[Path]:
    """Write the book into ``out`` (index.html, one page per executed notebook, search, local MathJax); returns the
    notebook pages. ``executed``: notebooks/executed/<profile>/ (default: the most trained profile present,
    ``mh.repro.outputs.presented_profile``). Raises SiteError when notebooks are missing or Sphinx fails."""
    from sphinx.application import Sphinx

    out = Path(out or PROJECT_ROOT / "site")
    if executed is None:
        try:
            executed = PROJECT_ROOT / output_folder("executed", presented_profile(PROJECT_ROOT))
        except FileNotFoundError as error:
            raise SiteError(str(error)) from None
    executed = Path(executed)
    missing = [name for name in NOTEBOOKS if not (executed / f"{name}.ipynb").exists()]
    if missing:
        raise SiteError(f"{executed} lacks the executed notebooks {missing}: run make reproduce first")
    with tempfile.TemporaryDirectory(prefix="mh-site-") as scratch:
        source, doctrees = Path(scratch) / "source", Path(scratch) / "doctrees"
        source.mkdir()
        write_source(source, executed, executed.name)
        conf = "".join(f"{name} = {value!r}\n" for name, value in sphinx_config().items())
        (source / "conf.py").write_text(conf, encoding="utf-8")
        # built inside the scratch folder, then copied: MyST-NB writes a jupyter_execute/ folder beside its output
        html_out = Path(scratch) / "html"
        app = Sphinx(str(source), str(source), str(html_out), str(doctrees), "html", status=None)
        app.build()
        if app.statuscode != 0:
            raise SiteError(f"Sphinx could not build the site (status {app.statuscode}); see the messages above")
        shutil.copytree(html_out, out, dirs_exist_ok=True)
    return [out / f"{name}.html" for name in NOTEBOOKS]


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m mh.repro.site", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "check"])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "site")
    args = add_debug_flag(parser).parse_args(argv)
    with cli_errors(args.debug, user_errors=(SiteError, SiteNotCheckable)):
        if args.action == "build":
            pages = build_site(args.out)
            print(f"[site] {len(pages)} notebook pages, index.html and search.html in {args.out}")
        else:
            for line in check_site(args.out):
                print(f"[site-check] {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
