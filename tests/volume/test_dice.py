"""Dice and accuracy against hand-computed values, including classes absent from prediction and target."""

import math

import torch

from hilovit.train.metrics import SegmentationEvaluation, confusion_counts, dice_scores, mean_dice


def test_dice_per_class_and_mean_by_hand():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 0]])
    predicted = torch.tensor([[0, 1, 1, 1], [2, 2, 0, 0]])
    confusion = confusion_counts(predicted, target, 4)
    # class 0: |P|=3, |T|=3, overlap 2 -> 4/6; class 1: |P|=3, |T|=2, overlap 2 -> 4/5;
    # class 2: |P|=2, |T|=3, overlap 2 -> 4/5; class 3: absent from both -> undefined (NaN)
    scores = dice_scores(confusion)
    torch.testing.assert_close(scores[:3], torch.tensor([4 / 6, 4 / 5, 4 / 5], dtype=torch.float64))
    assert math.isnan(scores[3])
    assert math.isclose(mean_dice(scores), 0.8)  # foreground classes 1, 2; class 3 left out
    assert math.isclose(mean_dice(scores, background=None), (4 / 6 + 0.8 + 0.8) / 3)
    evaluation = SegmentationEvaluation(0.5, confusion)
    assert math.isclose(evaluation.accuracy, 100 * 6 / 8)
    assert evaluation.scalars()["test_dice"] == mean_dice(scores)


def test_class_in_one_side_only_scores_zero_and_all_empty_is_nan():
    scores = dice_scores(confusion_counts(torch.tensor([1, 1]), torch.tensor([0, 0]), 2))
    assert scores.tolist() == [0.0, 0.0]
    assert math.isnan(mean_dice(dice_scores(torch.zeros(3, 3, dtype=torch.int64))))
