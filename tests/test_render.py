"""The rendered course (course_lib/authoring/render.py) without a browser: static widget views, MathML, pages, index."""
import re

import ipywidgets as W
import nbformat
import plotly.graph_objects as go
import pytest

from course_lib.authoring import editions
from course_lib.authoring.render import (
    WIDGET_MIME,
    lesson_table,
    markdown_math_to_mathml,
    static_notebook,
    widget_html,
    write_index,
    write_page,
)


def test_widget_html_draws_controls_with_their_values_and_the_figure():
    fig = go.FigureWidget(data=[go.Scatter(x=[1, 2], y=[3, 4])])
    fig.data[0].y = [7, 8]                      # a change after creation must be what is drawn
    view = W.VBox([W.HBox([W.IntSlider(value=3, min=0, max=9, description="image"),
                           W.Dropdown(options=["head", "left hand"], value="left hand", description="joint"),
                           W.Checkbox(value=True, description="background"),
                           W.Text(value="10, 16", description="sizes"),
                           W.SelectionSlider(options=["1", "5", "10"], value="5", description="epoch"),
                           W.FloatRangeSlider(value=(0.3, 0.7), min=0, max=1, description="IoU")]),
                   fig, W.HTML("<b>readout</b>"), W.HTML("hidden", layout=W.Layout(display="none"))])
    page = widget_html(view)
    assert "Interactive in JupyterLab" in page
    assert re.search(r'image</span><input type="range" disabled min="0" max="9"[^>]*value="3"', page)
    assert "<option selected>left hand</option>" in page
    assert 'type="checkbox" disabled checked' in page
    assert 'value="10, 16"' in page
    assert ">5</span>" in page and "0.3 – 0.7" in page
    assert "<b>readout</b>" in page and "hidden" not in page
    assert "Plotly.newPlot" in page and "[7,8]" in page.replace(" ", "")
    assert len(page) < 20_000, "the figure's data only: no plotly.js and no widget state in the page"


def test_a_progress_bar_is_left_out_of_the_page():
    from tqdm.notebook import tqdm
    bar = tqdm(total=3, disable=False)
    assert widget_html(bar.container) == ""
    nb = _executed_notebook()
    nb.cells[1].outputs[0]["data"]["text/html"] = ""
    assert len(static_notebook(nb).cells[1].outputs) == 1


def test_widget_html_names_a_widget_it_cannot_draw():
    assert "ColorPicker: open the notebook in JupyterLab" in widget_html(W.ColorPicker())


@pytest.mark.parametrize("text, expected", [
    ("a $x^2$ b", r"a <math[^>]*><mrow><msup><mi>x</mi><mn>2</mn></msup></mrow></math> b"),
    ("$$ L = \\tfrac12 d^2 $$", r'^<math[^>]*display="block"'),
    ("cost `$x$` and ```\n$y$\n```", r"^cost `\$x\$` and ```\n\$y\$\n```$"),   # code is left alone
    ("no math here, 5 $ and more", r"^no math here, 5 \$ and more$"),
    ("it costs $5 per run; the $\\alpha$ margin", r"^it costs \$5 per run; the <math.*<mi>&#x003B1;</mi>.*</math> margin$"),
    ("* a list item:\n\n  $$ x^2 $$\n\n  goes on", r"^\* a list item:\n\n  <math[^>]*display=\"block\".*</math>\n\n  goes on$"),
])
def test_markdown_math_to_mathml(text, expected):
    assert re.search(expected, markdown_math_to_mathml(text)), markdown_math_to_mathml(text)


def _executed_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 03 — Title\n\n$a+b$"), nbformat.v4.new_code_cell("x")]
    nb.cells[1].outputs = [
        nbformat.v4.new_output("display_data", data={WIDGET_MIME: {"model_id": "m"}, "text/plain": "VBox(children=...)",
                                                     "text/html": "<div class='course-widget'>static</div>"}),
        nbformat.v4.new_output("display_data", data={WIDGET_MIME: {"model_id": "n"}, "text/plain": "HBox()"}),
    ]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"m": {"_esm": "x" * 1000}}}}
    return nb


def test_output_widgets_are_filled_from_the_recorded_widget_state():
    out = W.Output()
    nb = _executed_notebook()
    nb.cells[1].outputs[0]["data"]["text/html"] = widget_html(W.VBox([W.Dropdown(options=["a"]), out]))
    nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"][out.model_id] = {
        "model_name": "OutputModel", "state": {"outputs": [
            {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}}]}}
    page = static_notebook(nb).cells[1].outputs[0]["data"]["text/html"]
    assert f'data-course-output="{out.model_id}"><img alt="figure" src="data:image/png;base64,iVBORw0KGgo=">' in page


def test_an_empty_image_widget_is_left_out():
    assert "<img" not in widget_html(W.VBox([W.Image(value=b"")]))


def test_static_notebook_keeps_the_static_view_and_drops_widget_state():
    nb = static_notebook(_executed_notebook())
    first, second = (o["data"] for o in nb.cells[1].outputs)
    assert first == {"text/html": "<div class='course-widget'>static</div>"}
    assert list(second) == ["text/html"] and "Interactive in JupyterLab" in second["text/html"]
    assert "widgets" not in nb.metadata
    assert "<math" in nb.cells[0].source and "$" not in nb.cells[0].source


def test_page_has_no_network_script_and_links_to_the_shared_files(tmp_path):
    nb = static_notebook(_executed_notebook())
    page = write_page(nb, tmp_path / "03_x.html", "03 — Title", {"index": "index.html", "prev": "02_y.html",
                                                                 "next": "", "presentation": ""})
    text = page.read_text()
    assert '<script src="plotly.min.js">' in text and 'href="course.css"' in text
    assert 'href="02_y.html"' in text and "next &rarr;" not in text
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', text), "a page must not load anything from the network"
    assert "static" in text and "<math" in text


def test_lesson_table_reads_the_start_page():
    root = editions.Path(__file__).resolve().parents[1]
    lessons = lesson_table(root / "notebooks" / "00_start_here.ipynb")
    on_disk = sorted(p.name[:2] for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb") if p.name[:2] != "00")
    assert sorted(lessons) == on_disk                                 # every lesson has its row, and only those
    assert lessons["01"].title == "Siamese networks on MNIST" and "contrastive" in lessons["01"].shows


def test_index_lists_lessons_with_time_and_profile(tmp_path):
    rows = [dict(number="01", page="01_a.html", seconds=42.0, title="A", shows="things", lecture="L"),
            dict(number="02", page="02_b.html", seconds=300.0, title="B", shows="more", lecture="M")]
    text = write_index(tmp_path, rows, "standard", presentation=True).read_text()
    assert '<a href="01_a.html">A</a>' in text and "42 s" in text and "5.0 min" in text
    assert "<b>standard</b>" in text and "course-presentation" in text


def test_html_command_rejects_unknown_lessons(tmp_path, capsys):
    assert editions.main(["html", str(tmp_path), "--only", "42"]) == 1
    assert "--only '42' matches none of" in capsys.readouterr().err
