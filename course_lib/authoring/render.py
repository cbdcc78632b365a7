"""The rendered course: every lesson executed and written out as static HTML that opens without Python.

    uv run python -m course_lib.authoring.editions html site/ --profile standard [--presentation] [--only 01,03]

writes

    site/index.html        the lessons: what each one shows, how long it took to run, in which profile
    site/NN_name.html      one page per notebook: text, formulas, code, printed results and every figure
    site/plotly.min.js     plotly's JavaScript, once for all pages
    site/course.css        the pages' look (larger type with --presentation)

Open ``site/index.html`` in a browser; nothing is fetched from the network.

How the pages stay small and offline:

* A plotly figure is a ``<div>`` and one ``Plotly.newPlot`` call that uses the shared plotly.min.js
  (plotly's notebook output would embed its 4.7 MB script in every page).
* An interactive view (ipywidgets) is drawn as it first appeared: its figures, its text and its controls
  (greyed out, showing their values), under a note that it is interactive in JupyterLab. The widget
  state is not embedded: a plotly ``FigureWidget`` carries ~5 MB of JavaScript in its state, and the
  callbacks that make a widget respond need a running kernel anyway.
* Formulas are converted to MathML when the page is written (Chromium, Firefox and Safari draw MathML),
  so no MathJax is fetched; nbconvert's template is used without its CDN scripts (require.js, MathJax,
  the widget manager).

The kernel side is ``install_static_display()``: the exporter runs it in a first cell that it removes
again, so the notebooks themselves are unchanged.
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..core.runtime import format_seconds

__all__ = ["ROOT", "TEMPLATES", "WIDGET_MIME", "PLOTLY_CONFIG", "SETUP_SOURCE", "WIDGET_NOTE", "widget_html",
           "install_static_display", "markdown_math_to_mathml", "Lesson", "lesson_table", "environment",
           "execute_notebook", "static_notebook", "write_page", "write_index", "render_course", "RenderError"]


ROOT = Path(__file__).resolve().parents[2]


TEMPLATES = Path(__file__).resolve().parent / "templates"


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


SETUP_SOURCE = "import course_lib.authoring.render as _course_render\n_course_render.install_static_display()"


WIDGET_NOTE = "Interactive in JupyterLab: shown here as it first appears."


# --- Kernel side: how figures and widgets display while the course is being rendered ------------------------
def _plotly_div(fig) -> str:
    """A plotly figure (go.Figure, FigureWidget or dict) as a <div> drawn by the page's shared plotly.min.js."""
    import plotly.io as pio
    return pio.to_html(fig, include_plotlyjs=False, full_html=False, config=PLOTLY_CONFIG)


def _hidden(w) -> bool:
    layout = getattr(w, "layout", None)
    return getattr(layout, "display", None) == "none" or getattr(layout, "visibility", None) == "hidden"


def _control(w) -> str:
    """A control (slider, dropdown, checkbox, text box, ...) drawn disabled, showing its value."""
    import ipywidgets as W
    desc = html.escape(str(getattr(w, "description", "") or ""))
    label = f'<span class="course-control-label">{desc}</span>' if desc else ""
    if isinstance(w, (W.SelectionSlider, W.SelectionRangeSlider)):
        labels = [str(label) for label in w._options_labels]
        chosen = w.index if isinstance(w, W.SelectionRangeSlider) else (w.index,)
        body = (f'<input type="range" disabled min="0" max="{max(len(labels) - 1, 0)}" value="{chosen[0]}">'
                f'<span class="course-control-value">{html.escape(" – ".join(labels[i] for i in chosen))}</span>')
    elif isinstance(w, (W.IntRangeSlider, W.FloatRangeSlider)):
        lo, hi = w.value
        body = (f'<input type="range" disabled min="{w.min}" max="{w.max}" step="any" value="{lo}">'
                f'<span class="course-control-value">{lo:g} – {hi:g}</span>')
    elif isinstance(w, (W.IntSlider, W.FloatSlider, W.FloatLogSlider)):
        body = (f'<input type="range" disabled min="{w.min}" max="{w.max}" step="any" value="{w.value}">'
                f'<span class="course-control-value">{w.value:g}</span>')
    elif isinstance(w, (W.Dropdown, W.Select)):
        chosen = w.label if w.label is not None else ""
        body = f'<select disabled><option selected>{html.escape(str(chosen))}</option></select>'
    elif isinstance(w, (W.ToggleButtons, W.RadioButtons)):
        body = "".join(f'<button disabled class="{"course-on" if lab == w.label else ""}">{html.escape(str(lab))}'
                       f'</button>' for lab in w._options_labels)
    elif isinstance(w, (W.Checkbox, W.ToggleButton)):
        body = f'<input type="checkbox" disabled{" checked" if w.value else ""}>'
    elif isinstance(w, (W.Text, W.Textarea, W.IntText, W.FloatText, W.BoundedIntText, W.BoundedFloatText)):
        body = f'<input type="text" disabled value="{html.escape(str(w.value))}">'
    elif isinstance(w, W.Play):
        body = f'<button disabled>▶</button><span class="course-control-value">{w.value}</span>'
    elif isinstance(w, W.Button):
        body = f'<button disabled>{html.escape(w.description or "")}</button>'
        label = ""
    elif isinstance(w, (W.FloatProgress, W.IntProgress)):
        share = 0 if w.max == w.min else (w.value - w.min) / (w.max - w.min)
        body = f'<progress value="{share:.3f}" max="1"></progress>'
    else:
        return ""
    return f'<div class="course-control">{label}{body}</div>'


def _output_html(output: dict) -> str:
    data = output.get("data", {})
    if "image/png" in data:
        return f'<img alt="figure" src="data:image/png;base64,{data["image/png"]}">'
    if "text/html" in data:
        return data["text/html"]
    if output.get("output_type") == "stream":
        return f'<pre>{html.escape(output.get("text", ""))}</pre>'
    if "text/plain" in data:
        return f'<pre>{html.escape(data["text/plain"])}</pre>'
    return ""


def _widget_body(w) -> str:
    import ipywidgets as W
    import plotly.graph_objects as go
    if _hidden(w):
        return ""
    if isinstance(w, go.FigureWidget):
        return f'<div class="course-figure">{_plotly_div(go.Figure(w))}</div>'
    if isinstance(w, W.Box):
        kind = "row" if isinstance(w, W.HBox) else "column"
        return f'<div class="course-{kind}">{"".join(_widget_body(c) for c in w.children)}</div>'
    if isinstance(w, (W.HTML, W.HTMLMath)):
        return f'<div class="course-html">{w.value}</div>'
    if isinstance(w, W.Label):
        return f'<span class="course-label">{html.escape(w.value)}</span>'
    if isinstance(w, W.Image):
        if not w.value:
            return ""
        data = base64.b64encode(bytes(w.value)).decode()
        return f'<img alt="image" src="data:image/{w.format or "png"};base64,{data}">'
    if isinstance(w, W.Output):
        # What `with out: display(...)` shows lives in the front end (nbclient's widget state), not here:
        # static_notebook fills this placeholder from that state.
        return (f'<div class="course-output" data-course-output="{w.model_id}">'
                f'{"".join(_output_html(o) for o in w.outputs)}</div>')
    control = _control(w)
    return control or f'<div class="course-missing">({type(w).__name__}: open the notebook in JupyterLab)</div>'


def _is_progress_bar(widget) -> bool:
    import ipywidgets as W
    return isinstance(widget, W.Box) and any(isinstance(c, (W.FloatProgress, W.IntProgress)) for c in widget.children)


def widget_html(widget) -> str:
    """Static HTML of a live ipywidgets view as it looks now: figures, text and disabled controls.

    A progress bar (tqdm's) gives "": at display time it is empty, and the page is better without it.
    """
    if _is_progress_bar(widget):
        return ""
    return (f'<div class="course-widget"><div class="course-widget-note">{WIDGET_NOTE}</div>'
            f'{_widget_body(widget)}</div>')


def install_static_display() -> None:
    """In a kernel: plotly figures become shared-script <div>s and widgets also get a static HTML view.

    Only the course exporter calls this (in a first cell it adds and removes); in JupyterLab the
    figures and widgets stay live.
    """
    import ipywidgets as W
    import plotly.io as pio
    from IPython import get_ipython
    from plotly.io.base_renderers import MimetypeRenderer

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("install_static_display() runs inside a Jupyter kernel (the course exporter's)")

    class _StaticHtml(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            return {"text/html": _plotly_div(fig_dict)}

    pio.renderers["course_static"] = _StaticHtml()
    pio.renderers.default = "course_static"
    shell.display_formatter.formatters["text/html"].for_type(W.Widget, widget_html)


# --- Markdown: formulas as MathML -----------------------------------------------------------------------
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)


# $$...$$, or $...$ whose first character is not a space or a digit and last not a space (so "$5 and $6"
# stays text); a backslash-escaped \$ is never a delimiter
_MATH = re.compile(r"(?<!\\)\$\$(?P<block>.+?)\$\$|(?<![\\$])\$(?P<inline>[^\s\d$][^$\n]*?)(?<![\s\\])\$(?!\d)", re.S)


def markdown_math_to_mathml(text: str) -> str:
    """Replace $...$ and $$...$$ in markdown (not inside code) by MathML, so a page needs no MathJax."""
    from latex2mathml.converter import convert

    def math(m: re.Match) -> str:
        if m["block"] is not None:   # in place: inside a list item it must stay in the item
            return convert(m["block"].strip(), display="block")
        return convert(m["inline"].strip())

    parts = _CODE.split(text)   # odd items are code: left alone
    return "".join(p if i % 2 else _MATH.sub(math, p) for i, p in enumerate(parts))


# --- Executing and exporting ------------------------------------------------------------------------------
@dataclass
class Lesson:
    number: str        # "01"
    title: str
    shows: str         # what the lesson shows (from the start page's table)
    lecture: str


def lesson_table(start_page: Path | str) -> dict[str, Lesson]:
    """The lessons as listed in the table of notebooks/00_start_here.ipynb, keyed by number ("01")."""
    nb = json.loads(Path(start_page).read_text(encoding="utf-8"))
    lessons = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for line in "".join(cell["source"]).splitlines():
            cols = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cols) == 4 and re.fullmatch(r"\d\d", cols[0]):
                lessons[cols[0]] = Lesson(cols[0], cols[1].strip("*"), cols[2], cols[3])
    return lessons


def _set_environment(values: dict[str, str | None]) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextmanager
def environment(**values: str | None):
    """Set (None: unset) environment variables for the kernels started inside the block."""
    old = {k: os.environ.get(k) for k in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(old)


def execute_notebook(path: Path | str, profile: str = "standard", presentation: bool = False,
                     timeout: int = 3600, offline: bool | None = None):
    """Run a notebook top to bottom in a fresh kernel, as the rendered course shows it.

    Returns (executed notebook, seconds). Raises nbclient's CellExecutionError, naming the cell, if a cell
    fails. Matplotlib draws inline even when MPLBACKEND is set for tests; progress bars are dropped from
    the page by widget_html.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP_SOURCE))
    env = dict(COURSE_PROFILE=profile, COURSE_PRESENTATION="1" if presentation else None, MPLBACKEND=None,
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    if offline is not None:
        env["COURSE_OFFLINE"] = "1" if offline else None
    start = time.perf_counter()
    with environment(**env):
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    nb.cells.pop(0)
    return nb, seconds


_OUTPUT_SLOT = re.compile(r'(<div class="course-output" data-course-output="(?P<id>\w+)">)</div>')


def _fill_output_widgets(html_text: str, state: dict) -> str:
    """Put each Output widget's recorded outputs (nbclient's widget state) into its empty placeholder."""
    def fill(m: re.Match) -> str:
        outputs = state.get(m["id"], {}).get("state", {}).get("outputs", [])
        return m[1] + "".join(_output_html(o) for o in outputs) + "</div>"
    return _OUTPUT_SLOT.sub(fill, html_text)


def static_notebook(nb):
    """The executed notebook made static: widget views replaced by their HTML, formulas by MathML."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = markdown_math_to_mathml(cell.source)
            continue
        cell.outputs = [o for o in cell.get("outputs", []) if o.get("data", {}).get("text/html", None) != ""]
        for out in cell.outputs:
            data = out.get("data")
            if data and WIDGET_MIME in data:
                data.pop(WIDGET_MIME)
                if "text/html" in data:
                    data.pop("text/plain", None)   # the widget's repr, e.g. "VBox(children=...)"
                    data["text/html"] = _fill_output_widgets(data["text/html"], state)
                else:
                    data["text/html"] = f'<div class="course-missing">{WIDGET_NOTE}</div>'
                    data.pop("text/plain", None)
    nb.metadata.pop("widgets", None)
    return nb


def write_page(nb, out: Path, title: str, nav: dict[str, str]) -> Path:
    """Write one static page with nbconvert (the course template: no CDN scripts)."""
    from nbconvert import HTMLExporter

    nb.metadata["title"] = title   # the page's <title>
    exporter = HTMLExporter(template_name="course", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb, resources={"course": dict(nav, title=title)})
    out.write_text(body, encoding="utf-8")
    return out


def write_index(out_dir: Path, rows: list[dict], profile: str, presentation: bool) -> Path:
    """index.html: one row per lesson with what it shows, its run time and the profile it ran in."""
    items = []
    for r in rows:
        took = "failed" if not r["page"] else format_seconds(r["seconds"])
        link = (f'<a href="{html.escape(r["page"])}">{html.escape(r["title"])}</a>' if r["page"]
                else html.escape(r["title"]))
        items.append(f'<tr><td>{r["number"]}</td><td>{link}'
                     f'</td><td>{html.escape(r["shows"])}</td><td>{html.escape(r["lecture"])}</td>'
                     f'<td class="course-num">{took}</td></tr>')
    total = sum(r["seconds"] for r in rows) / 60
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Similarity learning and vision architectures</title><link rel="stylesheet" href="course.css"></head>
<body class="course-index{' course-presentation' if presentation else ''}"><main>
<h1>Similarity learning and vision architectures</h1>
<p>An interactive PyTorch course, rendered: every notebook below was run top to bottom in the
<b>{html.escape(profile)}</b> profile ({total:.1f} min in all) and saved with its results. The widgets are
interactive only in JupyterLab (<code>uv run jupyter lab notebooks/00_start_here.ipynb</code>); here they show
their first view.</p>
<table><thead><tr><th>#</th><th>lesson</th><th>what you will see</th><th>lecture</th><th>run time</th></tr></thead>
<tbody>{"".join(items)}</tbody></table>
</main></body></html>
"""
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _summary(nb) -> str:
    """The first sentence of the notebook's first paragraph of text (for lessons the start page does not list)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for para in re.split(r"\n\s*\n", cell.source):
                para = para.strip()
                if para and not para.startswith(("#", "|", "*", "-", "<")):
                    text = re.sub(r"[*_`]", "", " ".join(para.split()))
                    return re.split(r"(?<=[.:;])\s", text, maxsplit=1)[0]
    return ""


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return re.sub(r"[*_`]", "", m[1]).strip()
    return fallback


def render_course(out_dir: Path | str, notebooks: list[Path], profile: str = "standard",
                  presentation: bool = False, timeout: int = 3600, log=print) -> Path:
    """Execute each notebook and write the static course into out_dir; return index.html's path."""
    import plotly

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", out_dir / "plotly.min.js")
    css = (TEMPLATES / "course.css").read_text(encoding="utf-8")
    if presentation:
        css += "\n" + (TEMPLATES / "presentation.css").read_text(encoding="utf-8")
    (out_dir / "course.css").write_text(css, encoding="utf-8")
    start_page = notebooks[0].parent / "00_start_here.ipynb" if notebooks else None
    if start_page is None or not start_page.exists():
        start_page = ROOT / "notebooks" / "00_start_here.ipynb"
    table = lesson_table(start_page) if start_page.exists() else {}
    pages = [p.with_suffix(".html").name for p in notebooks]
    rows, failed = [], []
    for i, path in enumerate(notebooks):
        log(f"[{i + 1}/{len(notebooks)}] {path.name} ({profile}) ...")
        number, lesson = path.name[:2], table.get(path.name[:2])
        try:
            nb, seconds = execute_notebook(path, profile, presentation, timeout)
        except Exception as err:   # one broken lesson must not cost the others (or the index)
            first = (str(err).strip().splitlines() or [type(err).__name__])[-1][:300]
            log(f"    FAILED: {first}")
            failed.append(path.name)
            rows.append(dict(number=number, page="", seconds=0.0, title=lesson.title if lesson else path.stem,
                             shows=f"failed to run: {first}", lecture=lesson.lecture if lesson else ""))
            continue
        title = _title(nb, path.stem)
        nav = {"index": "index.html", "prev": pages[i - 1] if i else "", "next": pages[i + 1] if i + 1 < len(pages) else "",
               "presentation": "course-presentation" if presentation else ""}
        page = write_page(static_notebook(nb), out_dir / pages[i], title, nav)
        rows.append(dict(number=number, page=pages[i], seconds=seconds,
                         title=lesson.title if lesson else title, shows=lesson.shows if lesson else _summary(nb),
                         lecture=lesson.lecture if lesson else ""))
        log(f"    {format_seconds(seconds)}, {page.stat().st_size / 1e6:.2f} MB -> {page}")
    index = write_index(out_dir, rows, profile, presentation)
    if failed:
        raise RenderError(f"{len(failed)} of {len(notebooks)} notebooks failed ({', '.join(failed)}); the others "
                          f"and the index are in {out_dir}")
    return index


class RenderError(RuntimeError):
    """Some notebooks failed to run; the pages of the others and the index were written."""
