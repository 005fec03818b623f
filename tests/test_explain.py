"""Every explainer against an independent computation (a per-class autograd loop, or by hand)."""
import pytest
import torch
import torch.nn.functional as F

from introspect.explain import explain, explanations_for_step
from introspect.models import build_model

SHAPE = (1, 16, 16)


def per_class_input_gradients(model, x):
    """Independent reference: one autograd call per class."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    grads = [torch.autograd.grad(logits[:, k].sum(), x, retain_graph=True)[0] for k in range(logits.shape[1])]
    return torch.stack(grads, dim=1)


@pytest.mark.parametrize("name", ["resnet8", "cnn6", "mlp1024"])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_grad_and_grad_input_match_a_per_class_loop(name, mode, seeded):
    model = build_model(name, 10, SHAPE)
    getattr(model, mode)()
    x = torch.randn(5, *SHAPE)
    expected = per_class_input_gradients(model, x)
    got = explain(model, x, "grad")
    assert got.shape == (5, 10, *SHAPE)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(explain(model, x, "grad_input"), expected * x[:, None], rtol=1e-4, atol=1e-6)


def test_guided_backprop_matches_a_hand_computation_on_an_mlp(seeded):
    model = build_model("mlp1024", 4, (1, 3, 3)).eval()
    x = torch.randn(3, 1, 3, 3)
    w1, b1 = model.hidden[0].weight, model.hidden[0].bias
    w2, b2 = model.hidden[1].weight, model.hidden[1].bias
    w3 = model.out.weight
    flat = x.flatten(1)
    pre1 = flat @ w1.T + b1
    pre2 = F.relu(pre1) @ w2.T + b2
    expected = torch.zeros(3, 4, 9)
    for i in range(3):
        for k in range(4):
            g = w3[k]
            g = g.clamp(min=0) * (pre2[i] > 0)  # only positive gradients pass a ReLU...
            g = (g @ w2).clamp(min=0) * (pre1[i] > 0)  # ...where the forward activation was positive
            expected[i, k] = g @ w1
    got = explain(model, x, "guided_bp")
    torch.testing.assert_close(got.flatten(2), expected.detach(), rtol=1e-4, atol=1e-6)


def test_guided_backprop_differs_from_grad_and_keeps_training_backward_plain(seeded):
    model = build_model("resnet8", 10, SHAPE).eval()
    x = torch.randn(2, *SHAPE)
    assert not torch.allclose(explain(model, x, "guided_bp"), explain(model, x, "grad"))
    # after a guided explanation, ordinary forward/backward is the plain one again
    torch.testing.assert_close(explain(model, x, "grad"), per_class_input_gradients(model, x))


def per_class_grad_cam(model, x):
    """Independent Grad-CAM: a per-class loop over autograd, weights = spatial mean of the gradient."""
    out = model.forward_features(x)
    features = out.explain_features
    maps = []
    for k in range(out.logits.shape[1]):
        (grad,) = torch.autograd.grad(out.logits[:, k].sum(), features, retain_graph=True)
        weights = grad.mean(dim=(2, 3), keepdim=True)
        maps.append(F.relu((weights * features).sum(dim=1)))
    return torch.stack(maps, dim=1)


@pytest.mark.parametrize("name", ["resnet8", "resnet14", "cnn6", "cnn8"])
def test_grad_cam_matches_a_per_class_loop(name, seeded):
    model = build_model(name, 10, SHAPE).eval()
    x = torch.randn(4, *SHAPE)
    got = explain(model, x, "grad_cam")
    expected = per_class_grad_cam(model, x).detach()
    assert got.shape == expected.shape == (4, 10, *model.forward_features(x).explain_features.shape[-2:])
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_grad_cam_at_the_last_stage_of_a_gap_linear_network_is_the_cam_identity(mode, seeded):
    model = build_model("resnet14", 10, SHAPE)
    getattr(model, mode)()
    x = torch.randn(3, *SHAPE)
    out = model.forward_features(x)
    features = out.explain_features
    h, w = features.shape[-2:]
    cam = F.relu(torch.einsum("kc,bchw->bkhw", model.fc.weight, features)) / (h * w)  # ReLU(W_k · A)
    torch.testing.assert_close(explain(model, x, "grad_cam"), cam.detach(), rtol=1e-4, atol=1e-7)
    # the training step's closed form equals the autograd form
    closed = explanations_for_step(model, x, out, "grad_cam")
    torch.testing.assert_close(closed, cam.detach(), rtol=1e-4, atol=1e-7)


def test_grad_cam_at_a_named_layer(seeded):
    model = build_model("resnet8", 10, SHAPE).eval()
    x = torch.randn(2, *SHAPE)
    torch.testing.assert_close(explain(model, x, "grad_cam", layer="stages.2"), explain(model, x, "grad_cam"))
    middle = explain(model, x, "grad_cam", layer=model.stages[1])
    assert middle.shape == (2, 10, 8, 8)


def test_step_form_reuses_the_forward_pass_for_input_gradients(seeded):
    model = build_model("mlp1024", 10, SHAPE).train()
    x = torch.randn(4, *SHAPE).requires_grad_(True)
    out = model.forward_features(x)
    torch.testing.assert_close(explanations_for_step(model, x, out, "grad"), per_class_input_gradients(model, x))
    with pytest.raises(ValueError, match="requires_grad"):
        explanations_for_step(model, x.detach(), model.forward_features(x.detach()), "grad")


def test_create_graph_makes_explanations_differentiable_and_default_detaches(seeded):
    model = build_model("resnet8", 10, SHAPE)
    x = torch.randn(2, *SHAPE)
    assert not explain(model, x, "grad_cam").requires_grad
    maps = explain(model, x, "grad_cam", create_graph=True)
    assert maps.requires_grad
    maps.sum().backward()
    assert model.stages[0][0].conv1.weight.grad is not None
    assert model.stages[0][0].conv1.weight.grad.abs().sum() > 0


def test_errors_are_clear():
    mlp = build_model("mlp1024", 10, SHAPE)
    x = torch.randn(1, *SHAPE)
    with pytest.raises(ValueError, match="Grad-CAM does not apply"):
        explain(mlp, x, "grad_cam")
    with pytest.raises(ValueError, match="unknown explainer"):
        explain(mlp, x, "lrp")


def test_guided_bp_in_a_training_step_leaves_batchnorm_statistics_alone(seeded):
    model = build_model("resnet8", 10, SHAPE).train()
    x = torch.randn(4, *SHAPE)
    out = model.forward_features(x)
    before = [b.clone() for b in model.buffers()]
    maps = explanations_for_step(model, x, out, "guided_bp")
    assert maps.shape == (4, 10, *SHAPE)
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers()))
    out.logits.sum().backward()  # the step's own backward pass still works after the extra forward


@pytest.mark.parametrize("explainer", ["grad", "grad_input", "guided_bp", "grad_cam"])
def test_every_explainer_trains_an_le_step_on_a_resnet(explainer, seeded):
    from introspect.methods import build_method
    from introspect.train.loop import train_step
    from introspect.train.sgd import SGD

    model = build_model("resnet8", 10, SHAPE).train()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(8, *SHAPE), torch.randint(0, 10, (8,))
    terms, _ = train_step(build_method("le", explainer=explainer), model, optimizer, x, y, 5, 10, seeded)
    assert set(terms) == {"le", "ce"} and all(torch.isfinite(torch.tensor(v)) for v in terms.values())
