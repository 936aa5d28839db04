"""The learning curve of a proxy model as a PNG: k-fold agreement with the LM against the
number of LM labels, and the fitted power law (matplotlib, from the ``bench`` extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semql.errors import ExecutionError
from semql.executors.proxy.proxy_model import power_law


def save_report_curve(report, path: str | Path) -> Path:
    """The curve of a ``ProxyReport`` (``Connection.proxy_reports()``)."""
    title = f"{report.embedder or 'proxy'} + {report.classifier or '?'}"
    return save_curve(report.curve, report.curve_params, path, rows=report.rows, title=title)


def save_curve(
    curve: list, params: tuple | None, path: str | Path, *, rows: int | None = None, title=""
) -> Path:
    """Draw learning-curve points (labels, mean, std) and the fit ``params`` to ``path``."""
    if not curve:
        raise ExecutionError("the proxy has no learning curve to draw (it was not trained)")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ExecutionError(
            "drawing the curve needs matplotlib: pip install 'semql[bench]'"
        ) from None
    n = [p[0] for p in curve]
    fig, ax = plt.subplots(figsize=(6, 4))
    means, stds = [p[1] for p in curve], [p[2] for p in curve]
    ax.errorbar(n, means, yerr=stds, fmt="o", label="k-fold agreement with the LM")
    if params:
        grid = np.linspace(max(min(n), 1), rows or 2 * max(n), 200)
        ax.plot(grid, power_law(grid, *params), label="power-law fit")
    ax.set_xlabel("LM labels (training rows)")
    ax.set_ylabel("agreement with the LM")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
