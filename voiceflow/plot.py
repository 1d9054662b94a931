"""Timeline plot of a diarization (PNG), optionally above its reference."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from voiceflow.segments import Segment


def plot_timeline(
    path: str | Path, hypothesis: Sequence[Segment], reference: Sequence[Segment] | None = None, title: str = ""
) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    rows = [("hypothesis", hypothesis)] + ([("reference", reference)] if reference is not None else [])
    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 1.4 + 1.2 * len(rows)), sharex=True, squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (name, segs) in zip(axes[:, 0], rows, strict=True):
        speakers = sorted({s.speaker for s in segs})
        for seg in segs:
            y = speakers.index(seg.speaker)
            ax.broken_barh([(seg.start, seg.duration)], (y - 0.4, 0.8), color=cmap(y % 10))
        ax.set_yticks(range(len(speakers)), speakers)
        ax.set_ylabel(name)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)
