"""The epoch loop's running sums: per step on the CPU, in batches on a GPU."""

from __future__ import annotations

import pytest
import torch

from workers.ml.epoch_sums import FOLD_EVERY, EpochSums, Predictions

CPU = torch.device("cpu")


def _batches(steps: int) -> list[tuple[torch.Tensor, int, Predictions]]:
    generator = torch.Generator().manual_seed(3)
    counts = [8] * (steps - 1) + [5]  # a smaller last batch, as at an epoch's end
    return [
        (
            torch.rand((), generator=generator) * 3,
            count,
            Predictions(
                # Each row a permutation of 0..3: no ties, exact in bfloat16 too.
                torch.rand(count, 4, generator=generator).argsort(dim=1).float(),
                torch.randint(0, 4, (count,), generator=generator),
            ),
        )
        for count in counts
    ]


def _exact(batches: list[tuple[torch.Tensor, int, Predictions]]) -> tuple[float, float]:
    seen = sum(count for _, count, _ in batches)
    loss = sum(float(loss) * count for loss, count, _ in batches) / seen
    hits = sum(int((p.logits.argmax(dim=1) == p.targets).sum()) for _, _, p in batches)
    return loss, hits / seen


@pytest.mark.parametrize("steps", [1, 7, 2 * FOLD_EVERY + 3])
@pytest.mark.parametrize("as_counts", [False, True])
def test_deferred_sums_match_the_step_by_step_ones(steps: int, as_counts: bool) -> None:
    batches = _batches(steps)
    if as_counts:  # steps that count their hits themselves
        batches = [(loss, count, p.hits()) for loss, count, p in batches]  # type: ignore[misc]
    exact_loss, exact_accuracy = _exact(_batches(steps))
    now = EpochSums(CPU, deferred=False)
    later = EpochSums(CPU, deferred=True)
    for loss, count, correct in batches:
        now.add(loss, count, correct)
        later.add(loss, count, correct)
    for sums in (now, later):
        loss, accuracy = sums.means()
        assert loss == pytest.approx(exact_loss, rel=1e-6)
        assert accuracy == exact_accuracy
    # Reading now and then on the way gives what one read at the end gives.
    middle = EpochSums(CPU, deferred=True)
    for i, (loss, count, correct) in enumerate(batches):
        middle.add(loss, count, correct)
        if i % 5 == 0:
            middle.means()
    assert middle.means() == pytest.approx((exact_loss, exact_accuracy), rel=1e-6)


def test_step_by_step_sums_are_those_of_a_plain_loop() -> None:
    batches = _batches(20)
    loss_sum = torch.zeros(())
    hits = 0
    sums = EpochSums(CPU, deferred=False)
    for loss, count, predictions in batches:
        loss_sum += loss * count
        hits += int((predictions.logits.argmax(dim=1) == predictions.targets).sum())
        sums.add(loss, count, predictions)
    seen = sum(count for _, count, _ in batches)
    assert sums.means() == (loss_sum.item() / seen, hits / seen)  # bit for bit


def test_sums_without_accuracy() -> None:
    for deferred in (False, True):
        sums = EpochSums(CPU, deferred=deferred)
        sums.add(torch.tensor(2.0), 4, None)
        sums.add(torch.tensor(1.0), 2, None)
        assert sums.means() == (pytest.approx(10.0 / 6), None)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_deferred_sums_on_cuda() -> None:
    batches = [
        (loss.cuda(), count, Predictions(p.logits.cuda().bfloat16(), p.targets.cuda()))
        for loss, count, p in _batches(FOLD_EVERY + 9)
    ]
    sums = EpochSums(torch.device("cuda"), deferred=True)
    for loss, count, predictions in batches:
        sums.add(loss, count, predictions)
    exact = _exact(
        [
            (loss.cpu(), count, Predictions(p.logits.float().cpu(), p.targets.cpu()))
            for loss, count, p in batches
        ]
    )
    assert sums.means() == pytest.approx(exact, rel=1e-6)
