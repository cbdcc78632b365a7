"""The browser tests' verdicts (tests/browserlab.py), checked on made-up page states: no browser needed."""
import browserlab as B


def _state(*cells):
    return {"cells": [dict(index=i, count=1, empty=False, errors=[], widgets=[]) | c for i, c in enumerate(cells)]}


def _out(cell, pos=0, **kw):
    return dict(dict(k=0, cell=cell, pos=pos, placeholder=False, mime="text/plain", text="", widget=0, plotly=0,
                     img=0, height=20), **kw)


def test_a_clean_page_has_no_problems():
    state = _state({"widgets": [True]}, {})
    outputs = [_out(0, mime=B.WIDGET_MIME, widget=3), _out(1, text="0.5")]
    assert B.problems(state, outputs) == []


def test_error_outputs_and_cells_not_run_are_problems():
    state = _state({"errors": ["ValueError: bad"]}, {"count": None}, {"count": None, "empty": True})
    found = B.problems(state, [])
    assert found == ["cell 0: ValueError: bad", "cell 1: not executed"]


def test_widgets_that_did_not_render_are_problems():
    state = _state({"widgets": [True]}, {"widgets": [True]}, {"widgets": [True]}, {"widgets": [False]})
    outputs = [_out(0, text="Error displaying widget: model not found"),
               _out(1, text="VBox(children=(IntSlider(value=0),))"),
               _out(2, mime=B.WIDGET_MIME, widget=0, height=0),
               _out(3, placeholder=True, mime="")]
    found = B.problems(state, outputs)
    assert any("cell 0: output says 'error displaying widget'" in f for f in found)
    assert any("cell 1: a widget shown as text" in f for f in found)
    assert any("cell 2: a widget output with no widget drawn" in f for f in found)
    assert any("cell 3: an output JupyterLab could not render" in f for f in found)
    assert any("3 widget outputs in the notebook, 0 drawn" in f for f in found)


def test_a_widget_output_missing_from_the_page_is_a_problem():
    assert B.problems(_state({"widgets": [True, True]}), [_out(0, mime=B.WIDGET_MIME, widget=1)]) == [
        "2 widget outputs in the notebook, 1 drawn on the page"]
