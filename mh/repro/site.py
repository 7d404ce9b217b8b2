"""``make site``: the executed notebooks as a static course site that works offline, from ``file://``.

    python -m mh.repro.site build [--out site]     # from notebooks/executed/, without re-running anything
    python -m mh.repro.site check [--out site]     # headless Chromium: screenshots, console errors, images

Built with nbconvert's HTML exporter — the renderer Jupyter itself uses, already installed with JupyterLab,
so a page looks like the notebook a reader opens, and nothing is executed again. (jupyter-book and
mkdocs-jupyter would add a site generator and a theme for the same pages.) The ``companion`` template
(``site_template/``) extends nbconvert's lab template and drops what it loads from CDNs: require.js and
mermaid are not needed, and MathJax comes from the copy that the ``jupyter-server-mathjax`` package ships,
copied into ``site/_static/mathjax``. Figures are already inline in the executed notebooks (data URIs).
Widget views (``mh.repro.play``) need a kernel: a page replaces each with a note. Links between notebooks
(``03_training.ipynb``) become links between pages, the worked solutions are copied
beside them, and other repository files are linked where they lie; ``site/index.html`` lists the course in
order with the paper's reference.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path

import nbformat

from mh.cli import OneLineParser, add_debug_flag, cli_errors, returns_status
from mh.io import PROJECT_ROOT
from mh.repro.browser import SiteNotCheckable, check_site
from mh.repro.outputs import output_folder, presented_profile
from mh.repro.reproduce import NOTEBOOKS

TEMPLATE_DIR = Path(__file__).parent / "site_template"
MATHJAX_DIR = "_static/mathjax"
PAPER = (
    "Chao He and Hongxi Wei. <em>MambaHash: Visual State Space Deep Hashing Model for Large-Scale Image "
    "Retrieval.</em> ICMR 2025. "
    '<a href="https://arxiv.org/abs/2506.16353">arXiv:2506.16353</a>'
)
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")
NOTEBOOK_PAGE = re.compile(r"^(\d\d_\w+)\.ipynb$")


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


def navigation(names: list[str], titles: dict[str, str], current: str) -> str:
    """The bar above and below each page: index, previous and next notebook."""
    position = names.index(current)
    links = ['<a href="index.html">⌂ Course index</a>']
    if position > 0:
        links.append(f'<a href="{names[position - 1]}.html">← {html.escape(titles[names[position - 1]])}</a>')
    if position + 1 < len(names):
        links.append(f'<a href="{names[position + 1]}.html">{html.escape(titles[names[position + 1]])} →</a>')
    return f'<nav class="course">{"".join(links)}</nav>'


def index_page(names: list[str], titles: dict[str, str], summaries: dict[str, str], profile: str) -> str:
    items = "\n".join(
        f'<li><a href="{name}.html">{html.escape(titles[name])}</a><br><span>{html.escape(summaries[name])}</span></li>'
        for name in names
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MambaHash companion — course</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em; line-height: 1.5; }}
li {{ margin-bottom: 0.9em; }} li span {{ color: #555; font-size: 0.92em; }}
</style></head>
<body>
<h1>MambaHash companion: the course</h1>
<p>The notebooks of <code>mambahash-companion</code>, executed by <code>make reproduce</code>, in reading order.
Every number in them says where it came from: the paper, or a run of this project under a named profile.
These pages show the <strong>{html.escape(profile)}</strong> profile's run (the most trained profile whose outputs
are in the repository).</p>
<p><strong>Paper.</strong> {PAPER}</p>
<ol>
{items}
</ol>
<p>Open and run them yourself with <code>make lab</code>; regenerate every table and figure with
<code>make reproduce</code>.</p>
</body></html>
"""


def first_paragraph(notebook) -> str:
    """The opening cell's "What this shows" paragraph, as plain text, for the index."""
    source = notebook.cells[0].source if notebook.cells else ""
    match = re.search(r"\*\*What this shows\.\*\*(.*?)(\n#\s*\n|\n\n|$)", source, flags=re.S)
    text = match.group(1) if match else ""
    plain = re.sub(r"[`*]", "", " ".join(text.split()))
    return plain if len(plain) <= 400 else plain[:400].rsplit(" ", 1)[0] + " …"  # cut between words


def relink(source: str, notebooks_dir: Path, out: Path) -> str:
    """Markdown links of a notebook, made to work from ``out``: a notebook becomes its page, a solution its
    copy in ``out/solutions``, any other repository file a relative path from ``out`` to it."""

    def target(match: re.Match) -> str:
        link, anchor = match.group(1), match.group(2) or ""
        if re.match(r"^[a-z]+:", link):
            return match.group(0)
        page = NOTEBOOK_PAGE.match(link)
        if page:
            return f"]({page.group(1)}.html{anchor})"
        if link.startswith("solutions/"):
            return match.group(0)
        return f"]({os.path.relpath((notebooks_dir / link).resolve(), out.resolve())}{anchor})"

    return MARKDOWN_LINK.sub(target, source)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = (
    '<p class="widget-note"><em>Interactive controls here: they need a live kernel. Open this notebook in '
    "JupyterLab (<code>make lab</code>) to use them; the static picture above shows their default.</em></p>"
)


def without_widget_views(notebook):
    """Replace every ipywidgets view in ``notebook``'s outputs (they need a live kernel; a static page would show
    their text form, ``interactive(children=…)``) by one note that says where to use them. Edits in place and
    returns the notebook."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs = [output for output in cell.get("outputs", []) if WIDGET_VIEW not in output.get("data", {})]
        if len(outputs) < len(cell.get("outputs", [])):
            outputs.append(nbformat.v4.new_output("display_data", data={"text/html": WIDGET_NOTE}))
        cell["outputs"] = outputs
    return notebook


def build_site(out: Path | None = None, executed: Path | None = None) -> list[Path]:
    """Write ``out``/index.html, one page per executed notebook and the local MathJax; returns the pages.
    ``executed``: notebooks/executed/<profile>/ (default: the most trained profile present,
    ``mh.repro.outputs.presented_profile``)."""
    import jupyter_server_mathjax
    from nbconvert import HTMLExporter

    out = Path(out or PROJECT_ROOT / "site")
    if executed is None:
        try:
            profile = presented_profile(PROJECT_ROOT)
        except FileNotFoundError as error:
            raise SiteError(str(error)) from None
        executed = PROJECT_ROOT / output_folder("executed", profile)
    executed = Path(executed)
    missing = [name for name in NOTEBOOKS if not (executed / f"{name}.ipynb").exists()]
    if missing:
        raise SiteError(f"{executed} lacks the executed notebooks {missing}: run make reproduce first")
    notebooks = {name: nbformat.read(executed / f"{name}.ipynb", as_version=4) for name in NOTEBOOKS}
    titles = {name: notebook_title(nb) for name, nb in notebooks.items()}
    out.mkdir(parents=True, exist_ok=True)
    mathjax_source = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(mathjax_source, out / MATHJAX_DIR, dirs_exist_ok=True)
    exporter = HTMLExporter(
        template_name="companion",
        extra_template_basedirs=[str(TEMPLATE_DIR)],
        mathjax_url=f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe",
    )
    pages = []
    notebooks_dir = executed.parent.parent  # notebooks/executed/<profile>/ → notebooks/
    shutil.copytree(notebooks_dir / "solutions", out / "solutions", dirs_exist_ok=True)
    for name, notebook in notebooks.items():
        without_widget_views(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = relink(cell.source, notebooks_dir, out)
        resources = {"course_navigation": navigation(list(NOTEBOOKS), titles, name), "metadata": {"name": titles[name]}}
        body, _ = exporter.from_notebook_node(notebook, resources=resources)
        page = out / f"{name}.html"
        page.write_text(body, encoding="utf-8")
        pages.append(page)
    summaries = {name: first_paragraph(nb) for name, nb in notebooks.items()}
    index = index_page(list(NOTEBOOKS), titles, summaries, executed.name)
    (out / "index.html").write_text(index, encoding="utf-8")
    return pages


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m mh.repro.site", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "check"])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "site")
    args = add_debug_flag(parser).parse_args(argv)
    with cli_errors(args.debug, user_errors=(SiteError, SiteNotCheckable)):
        if args.action == "build":
            pages = build_site(args.out)
            print(f"[site] {len(pages)} notebook pages and index.html in {args.out}")
        else:
            for line in check_site(args.out):
                print(f"[site-check] {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
