"""A small plot of the driver's and the output's mouth opening over time (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["opening_plot"]


def opening_plot(driver: np.ndarray, output: np.ndarray, fps: float, out: Path) -> Path:
    """Inner-lip opening (gap / mouth width) per frame of the driver [T] and the output [T]
    (NaN where no face was found) -> a PNG at `out`."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    t = np.arange(len(driver)) / fps
    fig = Figure(figsize=(6.4, 2.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(t, driver, label="driver", color="tab:blue")
    ax.plot(t, output, label="output", color="tab:orange")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("opening (gap / width)")
    ax.set_title("inner-lip opening over time", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    fig.savefig(out)
    return out
