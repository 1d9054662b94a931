"""Powerset encoding/decoding and the permutation-aware loss against brute force.

The brute-force side never calls the module under test: the 7 classes and the 6 permutations are
written out by hand, and cross-entropy is computed frame by frame in plain Python.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipelines.segmentation import powerset as ps

torch.set_num_threads(1)

# The documented class order, by hand.
CLASSES = [frozenset(), {0}, {1}, {2}, {0, 1}, {0, 2}, {1, 2}]
CLASS_OF = {frozenset(c): i for i, c in enumerate(CLASSES)}
# All orderings of 3 speakers, by hand (itertools order: identity first).
PERMS = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]


def brute_class(frame: list[int]) -> int:
    return CLASS_OF[frozenset(s for s, on in enumerate(frame) if on)]


def brute_chunk_loss(log_probs: np.ndarray, activity: np.ndarray, perm: tuple[int, ...]) -> float:
    total = 0.0
    for f in range(activity.shape[0]):
        permuted = [int(activity[f, perm[s]]) for s in range(3)]
        total -= float(log_probs[f, brute_class(permuted)])
    return total / activity.shape[0]


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_mapping_is_the_documented_order() -> None:
    mapping = ps.powerset_mapping()
    assert mapping.shape == (7, 3)
    assert [set(np.flatnonzero(row)) for row in mapping] == [set(c) for c in CLASSES]
    assert ps.num_classes() == 7
    assert ps.num_classes(2, 2) == 4
    assert ps.num_classes(4, 2) == 11  # 1 + 4 + 6


def test_every_representable_frame_round_trips() -> None:
    frames = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1) if a + b + c <= 2])
    classes = ps.multilabel_to_powerset(frames)
    assert classes.tolist() == [brute_class(list(f)) for f in frames]
    np.testing.assert_array_equal(ps.powerset_to_multilabel(classes), frames)


def test_batched_shapes_are_kept() -> None:
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 7, size=(4, 5, 11))
    activity = ps.powerset_to_multilabel(classes)
    assert activity.shape == (4, 5, 11, 3)
    np.testing.assert_array_equal(ps.multilabel_to_powerset(activity), classes)


def test_three_speakers_at_once_is_refused() -> None:
    with pytest.raises(ValueError, match="more than 2"):
        ps.multilabel_to_powerset(np.array([[1, 1, 1]]))


def test_decode_is_argmax_then_mapping() -> None:
    scores = np.full((3, 7), -5.0)
    scores[0, 0] = 0.0  # silence
    scores[1, 5] = 0.0  # {0, 2}
    scores[2, 2] = 0.0  # {1}
    np.testing.assert_array_equal(ps.decode(scores), [[0, 0, 0], [1, 0, 1], [0, 1, 0]])


def test_soft_activity_sums_class_mass() -> None:
    probs = np.array([0.1, 0.2, 0.05, 0.05, 0.3, 0.25, 0.05])
    soft = ps.soft_activity(torch.tensor(np.log(probs))[None]).numpy()[0]
    expected = [sum(probs[c] for c, members in enumerate(CLASSES) if s in members) for s in range(3)]
    np.testing.assert_allclose(soft, expected, rtol=1e-6)


def test_permutations_match_hand_list() -> None:
    assert ps.speaker_permutations(3) == PERMS


@pytest.mark.parametrize("seed", range(8))
def test_permutation_losses_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    batch, frames = 3, 6
    log_probs = log_softmax(rng.normal(size=(batch, frames, 7)) * 2)
    classes = rng.integers(0, 7, size=(batch, frames))
    activity = np.array([[sorted_frame(CLASSES[c]) for c in chunk] for chunk in classes])
    got = ps.permutation_losses(torch.tensor(log_probs), torch.tensor(activity, dtype=torch.float32)).numpy()
    for b in range(batch):
        expected = [brute_chunk_loss(log_probs[b], activity[b], p) for p in PERMS]
        np.testing.assert_allclose(got[b], expected, rtol=1e-12)
    loss, chosen = ps.permutation_invariant_powerset_loss(
        torch.tensor(log_probs), torch.tensor(activity, dtype=torch.float32)
    )
    best = [brute_best(log_probs[b], activity[b]) for b in range(batch)]
    assert [tuple(p) for p in chosen.tolist()] == [PERMS[i] for i in best]
    brute_mean = np.mean([brute_chunk_loss(log_probs[b], activity[b], PERMS[best[b]]) for b in range(batch)])
    assert math.isclose(loss.item(), brute_mean, rel_tol=1e-12)


def brute_best(log_probs: np.ndarray, activity: np.ndarray) -> int:
    """Index in PERMS of the smallest loss, the first one on ties."""
    losses = [brute_chunk_loss(log_probs, activity, p) for p in PERMS]
    return next(i for i, value in enumerate(losses) if value == min(losses))


def sorted_frame(members: set[int] | frozenset[int]) -> list[int]:
    return [1 if s in members else 0 for s in range(3)]


def test_prediction_with_swapped_speakers_costs_nothing_extra() -> None:
    # The network calls speaker 0 "2" and speaker 2 "0": the loss must be that of a perfect match.
    activity = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 1], [0, 0, 0]])
    swapped = activity[:, [2, 1, 0]]
    log_probs = np.log(np.full((4, 7), 0.01))
    for f, frame in enumerate(swapped):
        log_probs[f, brute_class(list(frame))] = math.log(0.94)
    loss, chosen = ps.permutation_invariant_powerset_loss(
        torch.tensor(log_probs)[None], torch.tensor(activity, dtype=torch.float32)[None]
    )
    assert math.isclose(loss.item(), -math.log(0.94), rel_tol=1e-12)
    # The chosen reordering of the reference is exactly the prediction's speaker order.
    assert chosen[0].tolist() == [2, 1, 0]
    reordered = activity[:, list(chosen[0].tolist())]
    np.testing.assert_array_equal(reordered, swapped)


def test_empty_chunk_ties_resolve_to_identity() -> None:
    rng = np.random.default_rng(3)
    log_probs = torch.tensor(log_softmax(rng.normal(size=(1, 5, 7))))
    losses = ps.permutation_losses(log_probs, torch.zeros(1, 5, 3))
    assert torch.all(losses == losses[0, 0])  # every permutation of silence is the same target
    loss, chosen = ps.permutation_invariant_powerset_loss(log_probs, torch.zeros(1, 5, 3))
    assert chosen.tolist() == [[0, 1, 2]]
    assert math.isclose(loss.item(), -float(log_probs[0, :, 0].mean()), rel_tol=1e-12)


def test_identical_speakers_tie_exactly_and_pick_first() -> None:
    # Speakers 0 and 1 talk at exactly the same frames: swapping them changes nothing.
    activity = torch.tensor([[[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]]], dtype=torch.float32)
    rng = np.random.default_rng(5)
    log_probs = torch.tensor(log_softmax(rng.normal(size=(1, 4, 7))))
    losses = ps.permutation_losses(log_probs, activity)[0]
    assert losses[0] == losses[2]  # (0,1,2) vs (1,0,2)
    assert losses[1] == losses[3]  # (0,2,1) vs (1,2,0)
    assert losses[4] == losses[5]  # (2,0,1) vs (2,1,0)
    _, chosen = ps.permutation_invariant_powerset_loss(log_probs, activity)
    first_min = min(range(6), key=lambda i: (float(losses[i]), i))
    assert tuple(chosen[0].tolist()) == PERMS[first_min]


def test_fewer_reference_speakers_are_padded_silent() -> None:
    rng = np.random.default_rng(7)
    log_probs = torch.tensor(log_softmax(rng.normal(size=(2, 5, 7))))
    two = torch.tensor(rng.integers(0, 2, size=(2, 5, 2)), dtype=torch.float32)
    padded = torch.cat([two, torch.zeros(2, 5, 1)], dim=-1)
    torch.testing.assert_close(ps.permutation_losses(log_probs, two), ps.permutation_losses(log_probs, padded))
    with pytest.raises(ValueError, match="4 speakers"):
        ps.permutation_losses(log_probs, torch.zeros(2, 5, 4))


def test_gradient_flows_through_the_chosen_permutation_only() -> None:
    rng = np.random.default_rng(11)
    logits = torch.tensor(rng.normal(size=(1, 4, 7)), requires_grad=True)
    activity = torch.tensor([[[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]]], dtype=torch.float32)
    loss, chosen = ps.permutation_invariant_powerset_loss(torch.log_softmax(logits, -1), activity)
    loss.backward()
    assert logits.grad is not None
    target = ps.multilabel_to_powerset(activity[0].numpy()[:, chosen[0].tolist()])
    expected = torch.softmax(logits.detach(), -1)[0].clone()
    expected[torch.arange(4), torch.from_numpy(target)] -= 1.0
    torch.testing.assert_close(logits.grad[0], expected / 4)
