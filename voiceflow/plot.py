"""Timeline plot of a diarization (PNG), optionally above its reference."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voiceflow.segments import Segment


def plot_timeline(
    path: str | Path,
    hypothesis: Sequence[Segment],
    reference: Sequence[Segment] | None = None,
    title: str = "",
    duration: float | None = None,
) -> None:
    """Write `timeline_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = timeline_figure(hypothesis, reference, title, duration)
    fig.savefig(str(path), dpi=100)
    plt.close(fig)


def timeline_figure(
    hypothesis: Sequence[Segment],
    reference: Sequence[Segment] | None = None,
    title: str = "",
    duration: float | None = None,
) -> Any:
    """One row per speaker; the reference's rows under the hypothesis's, on one time axis.

    The axis spans 0..`duration` (the whole file, silences at either end included), else 0..the
    last segment's end: a plot of a file must not zoom onto its speech."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    rows = [("hypothesis", hypothesis)] + ([("reference", reference)] if reference is not None else [])
    end = max([duration or 0.0] + [s.end for _, segs in rows for s in segs])
    heights = [max(1, len({s.speaker for s in segs})) for _, segs in rows]
    fig, axes = plt.subplots(
        len(rows),
        1,
        figsize=(12, 1.0 + 0.45 * sum(heights) + 0.5 * len(rows)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    cmap = plt.get_cmap("tab10")
    for ax, (name, segs) in zip(axes[:, 0], rows, strict=True):
        speakers = sorted({s.speaker for s in segs})
        for seg in segs:
            y = speakers.index(seg.speaker)
            ax.broken_barh([(seg.start, seg.duration)], (y - 0.4, 0.8), color=cmap(y % 10))
        ax.set_yticks(range(len(speakers)), speakers)
        ax.set_ylim(-0.6, max(len(speakers), 1) - 0.4)
        ax.set_ylabel(name)
    axes[-1, 0].set_xlim(0.0, end if end > 0 else 1.0)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
