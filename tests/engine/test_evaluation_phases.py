"""Scoring a dev set at several positions of the window grid (pipelines.evaluation.devsets.at_phases)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.evaluation.devsets import DevItem, at_phases, phase_offsets, score_items, shifted_item
from voiceflow import SAMPLE_RATE
from voiceflow.segments import Segment

DATA = Path(__file__).resolve().parents[1] / "data"


def item(seconds: float = 4.0) -> DevItem:
    audio = np.arange(round(seconds * SAMPLE_RATE), dtype=np.float32)
    reference = [Segment(0.0, 0.05, "a"), Segment(0.02, 1.5, "b"), Segment(2.0, 3.0, "a")]
    return DevItem("rec", audio, reference, [(0.0, 3.5)])


def test_a_shift_cuts_the_audio_and_moves_reference_and_uem_with_it() -> None:
    shifted = shifted_item(item(), 0.1)
    assert shifted.uri == "rec@100ms"
    assert shifted.audio[0] == round(0.1 * SAMPLE_RATE) and len(shifted.audio) == 4 * SAMPLE_RATE - 1600
    # a turn over before the cut is gone, one under way is clipped at the new start
    assert [(round(s.start, 6), round(s.end, 6), s.speaker) for s in shifted.reference] == [
        (0.0, 1.4, "b"),
        (1.9, 2.9, "a"),
    ]
    assert shifted.uem == [(0.0, pytest.approx(3.4))]
    assert shifted.num_speakers == 2


@pytest.mark.parametrize("seconds", [-0.01, 4.0, 10.0, float("nan"), float("inf")])
def test_a_shift_outside_the_recording_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="shift must be within"):
        shifted_item(item(), seconds)


def test_phases_spread_over_one_window_step() -> None:
    assert phase_offsets(5, 0.2) == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16])
    assert phase_offsets(1, 0.2) == [0.0]


@pytest.mark.parametrize("phases", [0, -3, 21, 2.0, True, "5", None])
def test_hostile_phase_counts_are_refused(phases: object) -> None:
    with pytest.raises(ValueError, match="phases must be an integer"):
        phase_offsets(phases, 0.2)  # type: ignore[arg-type]


def test_one_phase_is_the_set_itself_and_n_phases_are_n_copies_of_each_item() -> None:
    items = [item(), DevItem("other", np.zeros(3 * SAMPLE_RATE, np.float32), [Segment(0.5, 2.0, "x")], [(0, 3)])]
    assert at_phases(items, 1, 0.2) == items
    phased = at_phases(items, 4, 0.2)
    assert [p.uri for p in phased] == [f"{u}@{ms}ms" for u in ("rec", "other") for ms in (0, 50, 100, 150)]


def test_each_phase_is_scored_on_its_own_as_well_as_pooled() -> None:
    phased = at_phases([item()], 2, 0.2)

    def right_only_at_phase_zero(audio: np.ndarray, _count: int) -> list[Segment]:
        reference = item().reference
        return reference if audio[0] == 0 else [Segment(s.start, s.end, "z") for s in reference]

    row = score_items("set", phased, right_only_at_phase_zero).row()
    assert row["der_phase_min"] == 0.0
    assert row["der_phase_max"] > 0.3
    assert row["der_phase_min"] < row["der"] < row["der_phase_max"]
    plain = score_items("set", [item()], right_only_at_phase_zero).row()
    assert "der_phase_min" not in plain and plain["der"] == 0.0


def test_evaluate_at_phases_records_them_and_refuses_a_baseline_scored_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voiceflow.embedding import MODELS_DIR
    from voiceflow_cli.main import main

    ge2e = str(Path(MODELS_DIR) / "ge2e.onnx")
    once, phased = tmp_path / "once.json", tmp_path / "phased.json"
    common = ["evaluate", "--model", ge2e, "--data", str(DATA), "--no-manifest", "--speed-seconds", "0"]
    assert main([*common, "--json-out", str(once)]) == 0
    assert main([*common, "--phases", "2", "--json-out", str(phased)]) == 0
    report = json.loads(phased.read_text())["model"]
    assert report["sets_spec"]["phases"] == 2 and "phases" not in json.loads(once.read_text())["model"]["sets_spec"]
    row = report["der"]["data"]
    assert row["der_phase_min"] <= row["der"] <= row["der_phase_max"]
    capsys.readouterr()
    assert main([*common, "--phases", "2", "--gate", "--baseline-report", str(once)]) == 2
    assert "was scored on" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"der": ')
    assert main([*common, "--gate", "--baseline-report", str(corrupt)]) == 2
    assert "error:" in capsys.readouterr().err


def test_an_unshifted_uri_that_looks_like_a_phase_is_not_one() -> None:
    lookalike = DevItem("meeting@40ms", item().audio, item().reference, item().uem)
    assert "der_phase_min" not in score_items("set", [lookalike], lambda _a, _c: item().reference).row()
    assert shifted_item(lookalike, 0.04).phase == "40ms"


def test_the_cli_bound_is_the_engines() -> None:
    from pipelines.evaluation import cli_args
    from pipelines.evaluation import devsets as evaluation

    assert cli_args.MAX_PHASES == evaluation.MAX_PHASES


@pytest.mark.parametrize("value", ["0", "21", "two", "1.5"])
def test_the_cli_refuses_a_bad_phase_count(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    from voiceflow_cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", "m.onnx", "--phases", value])
    assert exit_info.value.code == 2
    assert "--phases must be" in capsys.readouterr().err


def test_a_report_spec_with_hostile_phases_is_refused() -> None:
    from pipelines.evaluation.harness import load_sets_from_spec

    with pytest.raises(ValueError, match="phases must be an integer"):
        load_sets_from_spec({"folder": str(DATA), "phases": "5"})
