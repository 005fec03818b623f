"""Table 1's dark-knowledge ablations against hand computations: CWTM and its permuted and random
variants, and DKPP."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from introspect.methods import StepContext, build_method
from introspect.methods.targets import permute_off_argmax

STUDENT = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
LABELS = torch.tensor([0, 1, 1])
TEACHER = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0], [0.0, math.log(4.0)]])  # max probs 3/4, 1/2, 4/5


def ctx(generator=None):
    return StepContext(x=None, y=LABELS, out=SimpleNamespace(logits=STUDENT), model=None, epoch=0, num_classes=2,
                       generator=generator, teacher=SimpleNamespace(logits=TEACHER))


def per_sample_ce():
    return F.cross_entropy(STUDENT, LABELS, reduction="none")


def test_cwtm_weights_by_teacher_max_normalised_over_the_batch():
    w = torch.tensor([0.75, 0.5, 0.8])
    expected = (w * per_sample_ce()).sum() / w.sum()
    torch.testing.assert_close(build_method("cwtm").loss(ctx())["weighted_ce"], expected)


def test_cwtm_permut_uses_a_permutation_of_the_same_weights():
    method = build_method("cwtm_permut")
    generator = torch.Generator().manual_seed(5)
    weights = method.weights(ctx(generator))
    torch.testing.assert_close(weights.sort().values, torch.tensor([0.5, 0.75, 0.8]))
    losses = {round(method.loss(ctx(torch.Generator().manual_seed(s)))["weighted_ce"].item(), 6) for s in range(20)}
    assert len(losses) > 1  # the pairing of weights and samples changes


def test_cwtm_random_weights_lie_in_beta_to_one_and_need_no_teacher():
    method = build_method("cwtm_random", beta=0.5)
    assert not method.needs_teacher
    generator = torch.Generator().manual_seed(0)
    weights = torch.cat([method.weights(ctx(generator)) for _ in range(300)])
    assert weights.min() >= 0.5 and weights.max() < 1.0
    assert abs(weights.mean().item() - 0.75) < 0.02


def test_permute_off_argmax_keeps_the_max_and_the_multiset(seeded):
    q = F.softmax(torch.randn(50, 10), dim=1)
    permuted = permute_off_argmax(q, seeded)
    rows = torch.arange(50)
    torch.testing.assert_close(permuted[rows, q.argmax(1)], q.max(1).values)
    torch.testing.assert_close(permuted.sort(1).values, q.sort(1).values)
    assert not torch.allclose(permuted, q)


def test_dkpp_with_two_classes_equals_kd():
    """With two classes there is one non-argmax entry: nothing to permute, so DKPP is KD."""
    dkpp = build_method("dkpp", temperature=2.0).loss(ctx(torch.Generator().manual_seed(0)))
    kd = build_method("kd", temperature=2.0).loss(ctx())
    torch.testing.assert_close(dkpp["kd_permuted"], kd["kd"])
    torch.testing.assert_close(dkpp["ce"], kd["ce"])


def test_dkpp_hand_computed_with_three_classes():
    student = torch.zeros(1, 3)
    teacher = torch.log(torch.tensor([[0.6, 0.3, 0.1]]))
    context = StepContext(x=None, y=torch.tensor([0]), out=SimpleNamespace(logits=student), model=None, epoch=0,
                          num_classes=3, generator=torch.Generator().manual_seed(0),
                          teacher=SimpleNamespace(logits=teacher))
    got = build_method("dkpp", temperature=1.0, ce_weight=0.0).loss(context)["kd_permuted"].item()
    # either permutation of (0.3, 0.1) gives the same KL to the uniform student: sum q log(q / (1/3))
    expected = sum(q * math.log(q * 3) for q in (0.6, 0.3, 0.1))
    assert got == pytest.approx(expected, rel=1e-5)
