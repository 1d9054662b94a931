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
    hyp_speakers = sorted({s.speaker for s in hypothesis})
    colours = {("hypothesis", spk): i for i, spk in enumerate(hyp_speakers)}
    if reference is not None:
        colours |= {("reference", spk): i for spk, i in reference_colours(hypothesis, reference).items()}
    for ax, (name, segs) in zip(axes[:, 0], rows, strict=True):
        speakers = sorted({s.speaker for s in segs})
        for seg in segs:
            y = speakers.index(seg.speaker)
            colour = cmap(colours[(name, seg.speaker)] % 10)
            ax.broken_barh([(seg.start, seg.duration)], (y - 0.4, 0.8), color=colour)
        ax.set_yticks(range(len(speakers)), speakers)
        ax.set_ylim(-0.6, max(len(speakers), 1) - 0.4)
        ax.set_ylabel(name)
    axes[-1, 0].set_xlim(0.0, end if end > 0 else 1.0)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def reference_colours(hypothesis: Sequence[Segment], reference: Sequence[Segment]) -> dict[str, int]:
    """A colour index per reference speaker: the hypothesis speaker it overlaps most (one-to-one,
    as DER maps them) lends its colour, so a right answer looks the same in both rows; unmatched
    reference speakers get colours no hypothesis speaker uses."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    hyp = sorted({s.speaker for s in hypothesis})
    ref = sorted({s.speaker for s in reference})
    overlap = np.zeros((len(ref), len(hyp)))
    for r in reference:
        for h in hypothesis:
            overlap[ref.index(r.speaker), hyp.index(h.speaker)] += max(0.0, min(r.end, h.end) - max(r.start, h.start))
    rows, cols = linear_sum_assignment(-overlap)
    colours = {ref[i]: j for i, j in zip(rows, cols, strict=True) if overlap[i, j] > 0}
    spare = iter(range(len(hyp), len(hyp) + len(ref)))
    return {spk: colours[spk] if spk in colours else next(spare) for spk in ref}
