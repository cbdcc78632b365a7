"""Helpers for the browser tests (tests/test_browser.py): a JupyterLab server, headless Chromium, and what to
look for in a notebook after "Run All".

Chromium is Debian's (`apt-get install chromium`), driven by Python playwright with `executable_path`
(`playwright install` would download a browser, which CI cannot). Nothing here is needed by students.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "browser"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Texts that mean an output did not render: ipywidgets' and JupyterLab's messages, and a widget's text repr
# (what JupyterLab shows when no widget manager could draw it).
FAILURE_TEXTS = ["error displaying widget", "model not found", "javascript error", "iprogress not found"]
WIDGET_REPR = re.compile(r"^\s*(?:[HV]Box\(children=|interactive\(children=|FigureWidget\(|"
                         r"[A-Z]\w*\((?:value|children|description|layout|options)=)")
LAB_SETTINGS = {  # a throw-away settings folder: no news check, no autosave (outputs never written back)
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},   # every cell in the DOM
}


def chromium() -> str | None:
    """Path of Chromium (``$COURSE_CHROMIUM``, else chromium on PATH), or None."""
    path = os.environ.get("COURSE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return path if path and Path(path).exists() else None


# --- JupyterLab -------------------------------------------------------------------------------------------
class Lab:
    """A JupyterLab server on localhost serving ``root``, started with a token and stopped by its PID."""

    def __init__(self, root: Path, tmp: Path, env: dict):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.token, self.base = secrets.token_hex(16), f"http://127.0.0.1:{self.port}"
        for name, value in LAB_SETTINGS.items():
            path = tmp / "settings" / (name + ".jupyterlab-settings")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}",
               "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={self.token}",
               f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
               f"--LabApp.user_settings_dir={tmp / 'settings'}", f"--LabApp.workspaces_dir={tmp / 'ws'}",
               f"--FileCheckpoints.checkpoint_dir={tmp / 'checkpoints'}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        env = dict(env, JUPYTER_CONFIG_DIR=str(tmp / "cfg"))
        self.log = open(tmp / "jupyterlab.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._wait()

    def _api(self, path: str, method: str = "GET") -> int:
        req = urllib.request.Request(self.base + path, method=method, data=b"" if method == "POST" else None,
                                     headers={"Authorization": "token " + self.token})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status

    def _wait(self) -> None:
        for _ in range(240):
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early (rc={self.proc.returncode}), see {self.log.name}")
            with contextlib.suppress(OSError):
                if self._api("/api/status") == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer in 120 s, see {self.log.name}")

    def url(self, notebook: str) -> str:
        return f"{self.base}/lab/tree/{urllib.parse.quote(notebook)}?reset&token={self.token}"

    def stop(self) -> None:
        for step in (lambda: self._api("/api/shutdown", "POST"), self.proc.terminate,
                     lambda: os.killpg(self.proc.pid, signal.SIGKILL)):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                if self.proc.poll() is None:
                    step()
                self.proc.wait(20)
                break
        self.log.close()


# --- What the page shows ------------------------------------------------------------------------------------
_FIND = ("(name) => { const app = window.jupyterapp; const nb = Array.from(app ? app.shell.widgets('main') : [])"
         ".find(w => w.context && w.context.path === name);")
MODEL_JS = _FIND + """
  if (!nb || !nb.context.isReady) return {phase: 'loading'};
  const cells = [], m = nb.content.model;
  for (let i = 0; i < m.cells.length; i++) {
    const c = m.cells.get(i); if (c.type !== 'code') continue;
    const outs = c.outputs.toJSON();
    cells.push({index: i, count: c.executionCount, empty: !c.sharedModel.getSource().trim(),
      errors: outs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
      widgets: outs.map(o => !!(o.data && o.data['""" + WIDGET_MIME + """']))});
  }
  const running = Array.from(nb.content.node.querySelectorAll('.jp-InputPrompt'))
                       .filter(e => e.textContent.includes('*')).length;
  return {phase: 'ready', id: nb.id, status: nb.sessionContext.kernelDisplayStatus, running,
          dialog: !!document.querySelector('.jp-Dialog'), cells};
}"""
# every output of every cell: its mime type, text, size and what it contains; tagged data-course-out=k
OUTPUTS_JS = _FIND + """
  const outs = [];
  nb.content.node.querySelectorAll('.jp-Cell').forEach((cell, ci) => {
    const area = cell.querySelector('.jp-Cell-outputArea'); if (!area) return;
    Array.from(area.children).filter(e => e.classList.contains('lm-Widget')).forEach((child, pos) => {
      const o = child.querySelector(':scope > .jp-OutputArea-output') || child, r = o.getBoundingClientRect();
      o.setAttribute('data-course-out', outs.length);
      outs.push({k: outs.length, cell: ci, pos, placeholder: !child.matches('.jp-OutputArea-child'),
        mime: o.getAttribute('data-mime-type') || '', text: (o.innerText || '').slice(0, 300),
        widget: o.querySelectorAll('.jupyter-widgets').length, plotly: o.querySelectorAll('.js-plotly-plot').length,
        img: o.querySelectorAll('img').length, height: Math.round(r.height)});
    });
  });
  return outs;
}"""


def wait_for(page, name: str, predicate, timeout: float, step_ms: int = 500):
    """Poll the notebook's model until predicate(state) holds; accept the kernel dialog if one opens."""
    end, state = time.time() + timeout, None
    while time.time() < end:
        state = page.evaluate(MODEL_JS, name)
        if state.get("dialog"):
            page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=5000)
        elif predicate(state):
            return state
        page.wait_for_timeout(step_ms)
    raise TimeoutError(f"{name}: waited {timeout:.0f} s, last state {json.dumps(state)[:400]}")


def run_all(page, lab: Lab, name: str, timeout: float) -> dict:
    """Open a notebook, Run All Cells from the menu, wait until the kernel is idle; return the model state."""
    page.goto(lab.url(name), wait_until="domcontentloaded")
    state = wait_for(page, name, lambda s: s.get("phase") == "ready" and s["status"] == "idle", 180)
    page.evaluate("(id) => { jupyterapp.shell.collapseLeft(); jupyterapp.shell.activateById(id); }", state["id"])
    before = [c["count"] for c in state["cells"]]
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click(timeout=10000)
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click(timeout=10000)
    wait_for(page, name, lambda s: s["running"] or [c["count"] for c in s["cells"]] != before, 30)
    quiet = [0]   # finished: kernel idle and no [*] prompt, three polls in a row

    def finished(s):
        quiet[0] = quiet[0] + 1 if s["running"] == 0 and s["status"] == "idle" else 0
        return quiet[0] >= 3
    state = wait_for(page, name, finished, timeout)
    previous = None   # let widgets and plotly finish drawing: until the outputs stop changing
    for _ in range(30):
        page.wait_for_timeout(1000)
        outs = page.evaluate(OUTPUTS_JS, name)
        summary = [(o["widget"], o["plotly"], o["img"], o["height"]) for o in outs]
        if summary == previous and "loading widget" not in " ".join(o["text"].lower() for o in outs):
            break
        previous = summary
    return state


def mark_widgets(state: dict, outputs: list[dict]) -> list[dict]:
    """Set o["is_widget"] on each page output whose notebook output is a widget view (same cell, same place)."""
    widget_at = {(c["index"], pos) for c in state["cells"] for pos, w in enumerate(c["widgets"]) if w}
    for o in outputs:
        o["is_widget"] = (o["cell"], o["pos"]) in widget_at
    return outputs


def problems(state: dict, outputs: list[dict]) -> list[str]:
    """Everything that went wrong: error outputs, cells not run, outputs that did not render."""
    mark_widgets(state, outputs)
    found = [f"cell {c['index']}: {e}" for c in state["cells"] for e in c["errors"]]
    found += [f"cell {c['index']}: not executed" for c in state["cells"] if c["count"] is None and not c["empty"]]
    for o in outputs:
        text = o["text"].lower()
        hit = next((f for f in FAILURE_TEXTS if f in text), None)
        if hit:
            found.append(f"cell {o['cell']}: output says {hit!r}: {o['text'][:120]!r}")
        elif o["placeholder"]:
            found.append(f"cell {o['cell']}: an output JupyterLab could not render ({o['mime'] or 'unknown type'})")
        elif o["mime"] == "text/plain" and WIDGET_REPR.search(o["text"]):
            found.append(f"cell {o['cell']}: a widget shown as text: {o['text'][:80]!r}")
        elif o["is_widget"] and not o["widget"] and not o["plotly"]:
            found.append(f"cell {o['cell']}: a widget output with no widget drawn ({o['height']} px high)")
    widget_outputs = sum(sum(c["widgets"]) for c in state["cells"])
    drawn = sum(1 for o in outputs if o["is_widget"] and (o["widget"] or o["plotly"]))
    if drawn < widget_outputs:
        found.append(f"{widget_outputs} widget outputs in the notebook, {drawn} drawn on the page")
    return found


# --- Interactions: one per kind of control, each must change what the widget shows -------------------------
def _slider(loc):
    handle = loc.locator(".widget-slider .noUi-handle").first
    handle.focus()
    at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
    handle.press("ArrowLeft" if at_end else "ArrowRight")       # a slider at its end (the last epoch) moves back


def _dropdown(loc):
    select = loc.locator(".widget-dropdown select").first
    options = select.locator("option").count()
    current = select.evaluate("s => s.selectedIndex")
    select.select_option(index=(current + 1) % max(options, 1))


def _checkbox(loc):
    loc.locator(".widget-checkbox input[type=checkbox]").first.click()


def _toggle_buttons(loc):
    loc.locator(".widget-toggle-buttons button:not(.mod-active)").first.click()


def _text(loc):
    box = loc.locator(".widget-text input[type=text]").first
    value = box.input_value()
    parts = [p for p in re.split(r"\s*,\s*", value) if p]
    box.fill(", ".join(parts[:-1]) if len(parts) > 1 else value + "0")
    box.press("Enter")


def _plot_hover(loc):
    point = loc.locator(".js-plotly-plot .scatterlayer .point").first
    point.hover(force=True)


INTERACTIONS = {  # kind -> (CSS selector that finds one, the action)
    "slider": (".widget-slider .noUi-handle", _slider),
    "dropdown": (".widget-dropdown select", _dropdown),
    "checkbox": (".widget-checkbox input[type=checkbox]", _checkbox),
    "toggle buttons": (".widget-toggle-buttons button:not(.mod-active)", _toggle_buttons),
    "text box": (".widget-text input[type=text]", _text),
    "plot hover": (".js-plotly-plot .scatterlayer .point", _plot_hover),
}


# What a widget shows, without its controls: its figures' data, shapes, images and titles, its images and its
# text readouts. A moved slider handle changes pixels even when the kernel never answers; this does not.
VIEW_JS = """(el) => JSON.stringify({
  plots: Array.from(el.querySelectorAll('.js-plotly-plot')).map(p => JSON.stringify(
    [p.data, (p.layout || {}).shapes, ((p.layout || {}).images || []).map(i => String(i.source).length + String(i.source).slice(-64)),
     (p.layout || {}).title, (p.layout || {}).annotations])),
  images: Array.from(el.querySelectorAll('img')).map(i => i.src.length + i.src.slice(-64)),
  text: Array.from(el.querySelectorAll('.widget-html-content, .jp-OutputArea-output')).map(t => t.innerText)})"""


def interact(page, name: str, state: dict, out_dir: Path, settle_ms: int = 1500, tries: int = 6) -> dict[str, str]:
    """For each kind of control in the notebook's widgets, act on one and check that what the widget shows changed.

    For controls, "what it shows" is VIEW_JS (figure data, images, readouts; not the controls themselves), so
    the change must come from the kernel's callback. For hovering a plot point it is the plot's picture (the
    tooltip is drawn by plotly in the browser).

    Returns {kind: "changed (cell N)" or "NOT changed: ..."}. A kind is tried on up to ``tries`` widget
    outputs (a control may legitimately change nothing in one view, e.g. a checkbox whose layer is empty).
    """
    outputs = mark_widgets(state, page.evaluate(OUTPUTS_JS, name))
    widgets = [o for o in outputs if o["is_widget"]]
    results = {}
    for kind, (selector, action) in INTERACTIONS.items():
        candidates = [o for o in widgets if page.locator(f'[data-course-out="{o["k"]}"] {selector}').count()]
        for o in candidates[:tries]:
            loc = page.locator(f'[data-course-out="{o["k"]}"]')
            loc.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            stem = out_dir / f"cell{o['cell']:02d}_{kind.replace(' ', '-')}"

            def view():
                return loc.screenshot(path=f"{stem}_after.png") if kind == "plot hover" else loc.evaluate(VIEW_JS)
            loc.screenshot(path=f"{stem}_before.png")
            before = view()
            action(loc)
            changed = False
            for _ in range(max(1, 6000 // settle_ms)):   # the kernel answers the change: give it a few seconds
                page.wait_for_timeout(settle_ms)
                if view() != before:
                    changed = True
                    break
            loc.screenshot(path=f"{stem}_after.png")
            results[kind] = f"changed (cell {o['cell']})" if changed else f"NOT changed (cell {o['cell']})"
            if changed:
                break
    return results


def shut_down_kernel(page, name: str) -> None:
    """Stop the notebook's kernel (closing the tab would leave it running, holding memory and CPU)."""
    page.evaluate(_FIND + " return nb ? nb.sessionContext.shutdown() : null; }", name)


def full_screenshot(page, name: str, path: Path) -> None:
    """The whole notebook in one picture (the window grown to fit, 16000 px at most)."""
    fit = _FIND + """
      const s = nb.content.node.querySelector('.jp-WindowedPanel-outer') || nb.content.node; s.scrollTop = 0; const c = s.querySelectorAll('.jp-Cell');
      return c.length ? Math.ceil(c[c.length - 1].getBoundingClientRect().bottom - s.getBoundingClientRect().bottom) : 0;
    }"""
    for _ in range(3):
        extra, height = page.evaluate(fit, name), page.viewport_size["height"]
        if extra <= 0 or height >= 16000:
            break
        page.set_viewport_size({"width": page.viewport_size["width"], "height": min(height + extra + 40, 16000)})
        page.wait_for_timeout(1000)
    page.evaluate(fit, name)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": page.viewport_size["width"], "height": 900})
