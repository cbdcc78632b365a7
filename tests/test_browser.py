"""Browser tests: every notebook run in JupyterLab in headless Chromium, and the rendered course opened offline.

    uv run --group browser pytest -m browser          # needs Debian's chromium (apt-get install chromium)

Not part of the plain `uv run pytest` (pyproject.toml deselects the marker), so students need no browser.
Each notebook runs in the quick profile with Run All; the test fails on an error output, a cell not run,
an output that did not render ("Error displaying widget", a widget shown as its text repr, an output type
JupyterLab could not draw), an uncaught JavaScript error, and on an interaction that changes nothing:
for every kind of control in the notebook's widgets (slider, dropdown, checkbox, toggle buttons, text box,
hovering a plot's point) one is used and the widget's picture must change. Screenshots go to
build/browser/ (named at the end of the test output).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from fnmatch import fnmatch
from pathlib import Path

import browserlab as B
import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
# last lesson first: the later lessons train longest, so parallel workers finish together
NOTEBOOKS = sorted((p.name for p in (ROOT / "notebooks").iterdir() if fnmatch(p.name, "[0-9][0-9]_*.ipynb")),
                   reverse=True)
RUN_TIMEOUT = 900   # seconds for Run All of one notebook in quick


@pytest.fixture(scope="session")
def browser_context():
    """A JupyterLab server over notebooks/ and one headless Chromium, for this test process."""
    chrome = B.chromium()
    if chrome is None:
        pytest.skip("BROWSER TESTS SKIPPED: no Chromium found (apt-get install chromium, or set COURSE_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("BROWSER TESTS SKIPPED: playwright is not installed (uv run --group browser pytest -m browser)")
    tmp = Path(tempfile.mkdtemp(prefix="course-browser-"))
    env = dict(os.environ, COURSE_PROFILE=os.environ.get("COURSE_PROFILE", "quick"), COURSE_OFFLINE="1",
               COURSE_STRICT="1")
    env.pop("MPLBACKEND", None)   # conftest's Agg would hide every matplotlib figure in the browser
    lab = B.Lab(ROOT / "notebooks", tmp, env)
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(tmp / "chromium"), executable_path=chrome, headless=True, args=B.CHROME_ARGS,
                viewport={"width": 1400, "height": 900})
            try:
                yield lab, context
            finally:
                context.close()
    finally:
        lab.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _page(context, errors: list, console: list | None = None):
    """A new tab; uncaught JavaScript errors go to errors (tests fail on them), console errors to console."""
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(f"JavaScript error: {e}"[:300]))
    if console is not None:
        page.on("console", lambda m: m.type == "error" and len(console) < 20 and console.append(m.text[:200]))
    return page


RENDERED = os.environ.get("COURSE_BROWSER_RENDER", "01")   # lessons rendered here ("all" for every one)


@pytest.fixture(scope="session")
def rendered_course():
    from course_lib.authoring.render import render_course
    site = B.SCREENSHOTS / "site"
    shutil.rmtree(site, ignore_errors=True)
    only = None if RENDERED == "all" else {n.strip() for n in RENDERED.split(",")}
    chosen = [ROOT / "notebooks" / n for n in sorted(NOTEBOOKS) if only is None or n[:2] in only]
    render_course(site, chosen, profile="quick", timeout=RUN_TIMEOUT, log=lambda *a: None)
    return site


def test_rendered_course_opens_offline_with_every_figure_drawn(browser_context, rendered_course):
    _, context = browser_context
    site = rendered_course
    pages = sorted(site.glob("[0-9][0-9]_*.html"))
    assert pages, f"no lesson page in {site}"
    report = {}
    for path in [site / "index.html", *pages]:
        errors, outside = [], []
        page = _page(context, errors)
        page.route("**/*", lambda route: (route.continue_() if route.request.url.startswith("file://")
                                          else (outside.append(route.request.url), route.abort())))
        try:
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_timeout(1000)
            seen = page.evaluate("""() => ({
              plots: document.querySelectorAll('.plotly-graph-div').length,
              drawn: Array.from(document.querySelectorAll('.plotly-graph-div')).filter(d => d.querySelector('.main-svg')).length,
              images: document.images.length,
              broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length,
              math: document.querySelectorAll('math').length,
              missing: document.querySelectorAll('.course-missing').length,
              empty_outputs: Array.from(document.querySelectorAll('.course-output')).filter(o => !o.innerHTML.trim()).length,
              links: Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))})""")
            page.screenshot(path=str(B.SCREENSHOTS / f"site_{path.stem}.png"), full_page=True)
        finally:
            page.close()
        assert not outside, f"{path.name} asked the network for {outside[:3]}"
        assert not errors, f"{path.name}: {errors[:3]}"
        assert seen["drawn"] == seen["plots"], f"{path.name}: {seen['plots'] - seen['drawn']} plotly figures not drawn"
        assert not seen["broken"], f"{path.name}: {seen['broken']} images did not load"
        assert not seen["missing"], f"{path.name}: {seen['missing']} widget parts drawn as 'open in JupyterLab'"
        assert not seen["empty_outputs"], f"{path.name}: {seen['empty_outputs']} Output widgets drawn empty"
        for link in seen["links"]:
            if link and not link.startswith(("http", "#", "mailto:")):
                assert (site / link.split("#")[0]).exists(), f"{path.name} links to {link}, which was not written"
        size_mb = path.stat().st_size / 1e6
        assert size_mb < 5, f"{path.name} is {size_mb:.1f} MB; pages should stay small (plotly.min.js is shared)"
        report[path.name] = dict(seen, links=len(seen["links"]), mb=round(size_mb, 2))
    (B.SCREENSHOTS / "site_report.json").write_text(json.dumps(report, indent=1))
    assert any(v["plots"] for v in report.values()), "no plotly figure on any page: the check checked nothing"
    assert any(v["math"] for v in report.values()), "no formula on any page: MathML conversion did nothing"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab_and_its_widgets_respond(browser_context, name):
    lab, context = browser_context
    out = B.SCREENSHOTS / Path(name).stem
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    errors: list[str] = []
    console: list[str] = []
    page = _page(context, errors, console)
    seconds, report = {}, dict(notebook=name, interactions={}, problems=[], page_errors=errors, console_errors=console)
    try:
        start = time.perf_counter()
        state = B.run_all(page, lab, name, RUN_TIMEOUT)
        outputs = page.evaluate(B.OUTPUTS_JS, name)
        seconds["open and run all"] = time.perf_counter() - start
        B.full_screenshot(page, name, out / "notebook.png")
        seconds["screenshot"] = time.perf_counter() - start - sum(seconds.values())
        report["problems"] = found = B.problems(state, outputs)
        assert not found, f"{name}: " + "; ".join(found) + f" (screenshots: {out})"
        report["interactions"] = done = B.interact(page, name, state, out)
        seconds["interactions"] = time.perf_counter() - start - sum(seconds.values())
        unchanged = {k: v for k, v in done.items() if not v.startswith("changed")}
        assert not unchanged, f"{name}: using a control changed nothing: {unchanged} (screenshots: {out})"
        if any(o["is_widget"] for o in outputs):
            assert done, f"{name}: widgets on the page but none of them has a control the test knows"
        assert not errors, f"{name}: " + "; ".join(errors[:5])
    finally:
        report["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
        (out / "report.json").write_text(json.dumps(report, indent=1))   # also when the test failed
        with contextlib.suppress(Exception):
            B.shut_down_kernel(page, name)
        page.close()
