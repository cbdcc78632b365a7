"""One look for every figure: large type and colour-blind-safe colours that read on a projector.

Presentation mode (``COURSE_PRESENTATION=1``, read when ``course_lib.viz`` is first imported, so set it
before starting JupyterLab or pass ``--presentation`` to the rendered course) makes every plotly font
20 px instead of 16 and enlarges matplotlib's type, lines and figures for the back of a lecture hall.
"""
from __future__ import annotations

import io
import os

import numpy as np
import torch

__all__ = ["PALETTE", "FONT_SIZE", "PRESENTATION", "MATPLOTLIB_PRESENTATION", "color_of", "plotly_layout",
           "image_png"]

# Okabe & Ito (2008) colour-blind-safe colours (their yellow darkened to read on white),
# extended with brown and grey for 10 classes.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7",
           "#56B4E9", "#B8A200", "#000000", "#8C564B", "#7F7F7F"]
PRESENTATION = os.environ.get("COURSE_PRESENTATION", "").strip().lower() in ("1", "true", "yes", "on")
FONT_SIZE = 20 if PRESENTATION else 16
# matplotlib's defaults are 10 pt type on 100-dpi figures: fine on a laptop, too small for a projector.
MATPLOTLIB_PRESENTATION = {"font.size": 15, "axes.titlesize": 17, "axes.labelsize": 16, "xtick.labelsize": 14,
                           "ytick.labelsize": 14, "legend.fontsize": 14, "figure.titlesize": 18,
                           "lines.linewidth": 2.5, "figure.dpi": 110}
if PRESENTATION:
    import matplotlib
    matplotlib.rcParams.update(MATPLOTLIB_PRESENTATION)


def color_of(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def plotly_layout(**overrides) -> dict:
    """Shared plotly layout: white background, large fonts, legend that does not hide the data."""
    layout = dict(template="plotly_white", font=dict(size=FONT_SIZE), margin=dict(l=60, r=20, t=60, b=50),
                  legend=dict(font=dict(size=FONT_SIZE)), hoverlabel=dict(font_size=FONT_SIZE))
    layout.update(overrides)
    return layout


def image_png(image: torch.Tensor | np.ndarray, scale: int = 5) -> bytes:
    """A (1, H, W) or (H, W) image in [0, 1] as PNG bytes, enlarged ``scale`` times with square pixels."""
    from PIL import Image
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    a = np.squeeze(a)
    if a.ndim != 2:
        raise ValueError(f"image must be (H, W) or (1, H, W), got shape {a.shape}")
    img = Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8), mode="L")
    img = img.resize((a.shape[1] * scale, a.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
