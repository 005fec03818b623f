"""Every loss against a hand-computed value."""
import math

import pytest
import torch
import torch.nn.functional as F

from introspect.methods import StepContext, available_methods, build_method
from introspect.methods.targets import le_targets
from introspect.models import Forward, build_model

LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]])
LABELS = torch.tensor([0, 2])


def ctx_for(logits=LOGITS, labels=LABELS, **kw):
    return StepContext(x=torch.zeros(len(labels), 1), y=labels, out=Forward(logits=logits), model=None,
                       epoch=kw.pop("epoch", 0), num_classes=logits.shape[1], **kw)


def log_softmax_rows():
    return [[logit - math.log(sum(math.exp(v) for v in row)) for logit in row] for row in LOGITS.tolist()]


def test_registry_and_hyperparameter_errors():
    assert {"ce", "dropout", "ls", "cp", "le", "le_permut"} <= set(available_methods())
    with pytest.raises(KeyError, match="unknown method 'xx'"):
        build_method("xx")
    with pytest.raises(ValueError, match="has no hyper-parameter.*alhpa"):
        build_method("ls", alhpa=0.9)
    with pytest.raises(ValueError, match="explainer"):
        build_method("le", explainer="lime")


def test_ce():
    lp = log_softmax_rows()
    expected = -(lp[0][0] + lp[1][2]) / 2
    assert build_method("ce").loss(ctx_for())["ce"].item() == pytest.approx(expected, rel=1e-6)


def test_dropout_is_ce_on_a_model_built_with_dropout():
    method = build_method("dropout", rate=0.25)
    assert method.model_options() == {"dropout": 0.25}
    assert method.loss(ctx_for())["ce"].item() == pytest.approx(build_method("ce").loss(ctx_for())["ce"].item())


def test_label_smoothing():
    lp = log_softmax_rows()
    a, off = 0.8, 0.1  # 0.2 spread over the 2 other classes
    row0 = -(a * lp[0][0] + off * lp[0][1] + off * lp[0][2])
    row1 = -(off * lp[1][0] + off * lp[1][1] + a * lp[1][2])
    got = build_method("ls", alpha=0.8).loss(ctx_for())["ce_smoothed"].item()
    assert got == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_confidence_penalty():
    lp = log_softmax_rows()
    entropy = sum(-sum(math.exp(v) * v for v in row) for row in lp) / 2
    ce = -(lp[0][0] + lp[1][2]) / 2
    terms = build_method("cp", beta=2.0).loss(ctx_for())
    assert terms["ce"].item() == pytest.approx(ce, rel=1e-6)
    assert terms["entropy_penalty"].item() == pytest.approx(-2.0 * entropy, rel=1e-6)


def test_le_warmup_is_one_hot_ce_and_stage_two_is_eq6_targets_plus_weighted_ce(seeded):
    model = build_model("resnet8", 3, (1, 16, 16))
    x = torch.randn(2, 1, 16, 16)
    out = model.forward_features(x)
    method = build_method("le", explainer="grad_cam", alpha=0.9, ce_weight=0.1, warmup_epochs=2)
    early = method.loss(StepContext(x, LABELS, out, model, epoch=1, num_classes=3))
    assert set(early) == {"ce"}
    assert early["ce"].item() == pytest.approx(F.cross_entropy(out.logits, LABELS).item())
    late = method.loss(StepContext(x, LABELS, out, model, epoch=2, num_classes=3))
    h, w = out.explain_features.shape[-2:]
    cams = F.relu(torch.einsum("kc,bchw->bkhw", model.fc.weight, out.explain_features)) / (h * w)
    q = le_targets(cams, LABELS, 0.9)
    log_p = F.log_softmax(out.logits, 1)
    assert late["le"].item() == pytest.approx(-(q * log_p).sum(1).mean().item(), rel=1e-5)
    assert late["ce"].item() == pytest.approx(0.1 * F.nll_loss(log_p, LABELS).item(), rel=1e-5)
    assert method.stage(1) == 1 and method.stage(2) == 2


def test_le_permut_uses_permuted_targets(seeded):
    model = build_model("mlp1024", 10, (1, 4, 4))
    x = torch.randn(8, 1, 4, 4, requires_grad=True)
    y = torch.randint(0, 10, (8,))
    out = model.forward_features(x)
    plain = build_method("le", explainer="grad").loss(StepContext(x, y, out, model, 0, 10))
    permuted = build_method("le_permut", explainer="grad").loss(
        StepContext(x, y, out, model, 0, 10, generator=torch.Generator().manual_seed(3)))
    assert permuted["ce"].item() == pytest.approx(plain["ce"].item())
    assert permuted["le"].item() != pytest.approx(plain["le"].item())
    assert build_method("le", explainer="grad").needs_input_grad(0)
    assert not build_method("le", explainer="grad_cam").needs_input_grad(0)
