import math

import pytest
import torch

from introspect.methods.targets import le_targets, permute_off_argmax, smoothed_targets, soft_cross_entropy


def test_le_targets_hand_computed_example():
    # one sample, 3 classes, ground truth 0; 2-d explanations chosen for easy cosines
    e = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])  # cos(e1,e0)=1, cos(e2,e0)=0
    q = le_targets(e, torch.tensor([0]), alpha=0.9)
    # others: (1-0.9) * (1+1, 0+1) / 3
    expected = torch.tensor([[0.9, 0.1 * 2 / 3, 0.1 * 1 / 3]])
    torch.testing.assert_close(q, expected)


def test_le_targets_with_opposite_explanations():
    e = torch.tensor([[[0.0, 2.0], [0.0, -1.0], [3.0, 0.0], [0.0, 5.0]]])  # cos to e_3: -1, 0, ...
    q = le_targets(e, torch.tensor([3]), alpha=0.8)
    # non-truth similarities + 1: class0 cos=1 -> 2, class1 cos=-1 -> 0, class2 cos=0 -> 1
    expected = torch.tensor([[0.2 * 2 / 3, 0.0, 0.2 * 1 / 3, 0.8]])
    torch.testing.assert_close(q, expected)


def test_le_targets_invariants(seeded):
    e = torch.randn(16, 10, 4, 4)
    y = torch.randint(0, 10, (16,))
    for permute in (False, True):
        q = le_targets(e, y, alpha=0.7, permute=permute, generator=seeded)
        torch.testing.assert_close(q.sum(dim=1), torch.ones(16))
        torch.testing.assert_close(q[torch.arange(16), y], torch.full((16,), 0.7))
        assert (q >= 0).all()
        assert not q.requires_grad


def test_permutation_keeps_each_rows_multiset_and_moves_entries(seeded):
    e = torch.randn(32, 10, 5)
    y = torch.randint(0, 10, (32,))
    plain = le_targets(e, y)
    permuted = le_targets(e, y, permute=True, generator=seeded)
    torch.testing.assert_close(plain.sort(dim=1).values, permuted.sort(dim=1).values)
    assert not torch.allclose(plain, permuted)
    torch.testing.assert_close(permuted[torch.arange(32), y], plain[torch.arange(32), y])


def test_permute_off_argmax_equals_a_row_by_row_shuffle():
    """Reference: per row, list the non-argmax entries, reorder them by the argsort of that row's
    noise (the same draws: rand(batch, classes - 1)) and put them back in the free columns in order."""
    probabilities = torch.randn(6, 5).softmax(dim=1)
    ours = permute_off_argmax(probabilities, torch.Generator().manual_seed(4))
    noise = torch.rand(6, 4, generator=torch.Generator().manual_seed(4))
    for row in range(6):
        top = int(probabilities[row].argmax())
        columns = [c for c in range(5) if c != top]
        order = sorted(range(4), key=lambda k: float(noise[row, k]))
        expected = probabilities[row].clone()
        for column, k in zip(columns, order):
            expected[column] = probabilities[row, columns[k]]
        assert torch.equal(ours[row], expected)


def test_targets_are_detached_even_from_differentiable_explanations():
    e = torch.randn(2, 3, 4, requires_grad=True)
    assert not le_targets(e, torch.tensor([0, 2])).requires_grad


def test_dead_explanations_fall_back_to_uniform_off_truth():
    q = le_targets(torch.zeros(1, 5, 3), torch.tensor([2]), alpha=0.6)
    torch.testing.assert_close(q, torch.tensor([[0.1, 0.1, 0.6, 0.1, 0.1]]))


def test_smoothed_targets_put_alpha_on_truth_and_spread_the_rest_over_other_classes():
    q = smoothed_targets(torch.tensor([1]), 5, alpha=0.6)
    torch.testing.assert_close(q, torch.tensor([[0.1, 0.6, 0.1, 0.1, 0.1]]))


def test_soft_cross_entropy_hand_computed():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p = (1/4, 3/4)
    q = torch.tensor([[0.5, 0.5]])
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert soft_cross_entropy(logits, q).item() == pytest.approx(expected)
