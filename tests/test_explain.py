"""Every explainer against an independent computation: a per-class autograd loop, a per-sample loop
over an eval-mode copy holding the batch's statistics, or a backward pass written by hand."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from introspect.explain import EXPLAINERS, explain, explanations_for_step, grad_cam_of_class
from introspect.models import build_model
from introspect.models.base import Forward

SHAPE = (1, 16, 16)


def per_class_input_gradients(model, x):
    """Independent reference where samples are independent (eval mode, no BatchNorm): one autograd
    call per class on the batch-summed logit."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    grads = [torch.autograd.grad(logits[:, k].sum(), x, retain_graph=True)[0] for k in range(logits.shape[1])]
    return torch.stack(grads, dim=1)


def with_batch_statistics(model, x):
    """An eval-mode copy of ``model`` whose running statistics are the batch's (biased variance), as
    the train-mode forward of ``x`` sees them at every BatchNorm: fed one sample, it computes that
    sample's forward in the batch with the statistics held constant."""
    train_copy, stats = copy.deepcopy(model).train(), {}

    def record(name):
        def hook(_module, args):
            dims = [0, *range(2, args[0].dim())]
            stats[name] = (args[0].mean(dims), args[0].var(dims, unbiased=False))
        return hook

    for name, m in train_copy.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.register_forward_pre_hook(record(name))
    with torch.no_grad():
        train_copy(x)
    frozen = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, (mean, var) in stats.items():
            frozen.get_submodule(name).running_mean.copy_(mean)
            frozen.get_submodule(name).running_var.copy_(var)
    return frozen


def one_sample_one_class(model, x, explanation):
    """``explanation(frozen_model, x_i, k)`` for every sample i and class k, stacked ``(B, K, ...)``."""
    frozen = with_batch_statistics(model, x)
    classes = frozen(x[:1]).shape[1]
    return torch.stack([torch.stack([explanation(frozen, x[i:i + 1], k) for k in range(classes)])
                        for i in range(x.shape[0])])


def input_gradient(model, xi, k):
    xi = xi.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xi)[0, k], xi)
    return grad[0]


def gradient_times_input(model, xi, k):
    return input_gradient(model, xi, k) * xi[0]


def hook_guided_relu(x, inplace=False):
    """Guided ReLU written another way: a tensor hook keeps the positive part of the incoming gradient,
    the clamp's own backward then masks where the input was negative."""
    y = torch.clamp(x, min=0)
    if y.requires_grad:
        y.register_hook(lambda grad: grad.clamp(min=0))
    return y


def guided_input_gradient(model, xi, k):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.functional, "relu", hook_guided_relu)
        return input_gradient(model, xi, k)


def textbook_grad_cam(model, xi, k, layer=None):
    """Gradient of the class score w.r.t. the feature map, channel weights = its spatial mean, ReLU of
    the weighted sum of channels."""
    if layer is None:
        out = model.forward_features(xi)
        logits, features = out.logits, out.explain_features
    else:
        captured = []
        handle = model.get_submodule(layer).register_forward_hook(lambda m, i, o: captured.append(o))
        logits = model(xi)
        handle.remove()
        features = captured[0]
    (grad,) = torch.autograd.grad(logits[0, k], features)
    weights = grad[0].mean(dim=(1, 2))
    return F.relu(torch.einsum("c,chw->hw", weights, features[0]))


REFERENCES = {"grad": input_gradient, "grad_input": gradient_times_input, "guided_bp": guided_input_gradient,
              "grad_cam": textbook_grad_cam}


@pytest.mark.parametrize("name", ["resnet8", "cnn6", "mlp1024"])
def test_grad_and_grad_input_match_a_per_class_loop_where_samples_are_independent(name, seeded):
    model = build_model(name, 10, SHAPE).eval()
    x = torch.randn(5, *SHAPE)
    expected = per_class_input_gradients(model, x)
    got = explain(model, x, "grad")
    assert got.shape == (5, 10, *SHAPE)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(explain(model, x, "grad_input"), expected * x[:, None], rtol=1e-4, atol=1e-6)
    mlp = build_model("mlp1024", 10, SHAPE).train()  # no BatchNorm: train mode is per-sample as it is
    torch.testing.assert_close(explain(mlp, x, "grad"), per_class_input_gradients(mlp, x), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["resnet8", "cnn6"])
@pytest.mark.parametrize("method", EXPLAINERS)
def test_every_explainer_is_each_samples_own_derivative_under_train_mode_batchnorm(name, method, seeded):
    model = build_model(name, 10, SHAPE).train()
    x = torch.randn(4, *SHAPE)
    expected = one_sample_one_class(model, x, REFERENCES[method])
    torch.testing.assert_close(explain(model, x, method), expected, rtol=1e-4, atol=1e-5)


def test_the_per_sample_reference_is_not_the_gradient_of_the_batch_sum(seeded):
    model = build_model("resnet8", 10, SHAPE).train()
    x = torch.randn(4, *SHAPE)
    own = one_sample_one_class(model, x, input_gradient)
    batch_sum = per_class_input_gradients(model, x)
    assert (own - batch_sum).abs().max() > 0.1 * own.abs().max()


@pytest.mark.parametrize("method", EXPLAINERS)
def test_a_training_steps_explanations_are_each_samples_own_and_leave_its_statistics(method, seeded):
    model = build_model("resnet8", 10, SHAPE, dropout=0.0).train()
    x = torch.randn(4, *SHAPE)
    expected = one_sample_one_class(model, x, REFERENCES[method])
    inputs = x.clone().requires_grad_(True)
    out = model.forward_features(inputs)
    after_step_forward = copy.deepcopy(model.state_dict())
    got = explanations_for_step(model, inputs, out, method)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    for key, value in model.state_dict().items():
        assert torch.equal(value, after_step_forward[key]), key
    out.logits.sum().backward()  # the step's own backward pass still works after the explanation


class ConvBatchNormReLU(nn.Sequential):
    """A model built from torch modules only: nn.ReLU (one in place), train-mode BatchNorm, no
    forward_features."""

    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
            nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 5),
        )


@pytest.mark.parametrize("method", ["grad", "grad_input", "guided_bp"])
def test_input_gradient_explainers_on_a_plain_torch_model_in_train_mode(method, seeded):
    model = ConvBatchNormReLU().train()
    x = torch.randn(3, *SHAPE)
    expected = one_sample_one_class(model, x, REFERENCES[method])
    torch.testing.assert_close(explain(model, x, method), expected, rtol=1e-4, atol=1e-6)


def test_grad_cam_at_a_layer_of_a_plain_torch_model_followed_by_batchnorm(seeded):
    model = ConvBatchNormReLU().train()
    x = torch.randn(3, *SHAPE)
    expected = one_sample_one_class(model, x, lambda m, xi, k: textbook_grad_cam(m, xi, k, layer="2"))
    torch.testing.assert_close(explain(model, x, "grad_cam", layer="2"), expected, rtol=1e-4, atol=1e-6)


def test_guided_backprop_on_a_plain_relu_mlp_matches_a_hand_computed_backward(seeded):
    model = nn.Sequential(nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 6), nn.ReLU(inplace=True), nn.Linear(6, 4))
    x = torch.randn(3, 9)
    w1, b1, w2, b2, w3 = model[0].weight, model[0].bias, model[2].weight, model[2].bias, model[4].weight
    pre1 = x @ w1.T + b1
    pre2 = F.relu(pre1) @ w2.T + b2
    expected = torch.zeros(3, 4, 9)
    for i in range(3):
        for k in range(4):
            g = w3[k].clamp(min=0) * (pre2[i] > 0)  # only positive gradients pass a ReLU...
            g = (g @ w2).clamp(min=0) * (pre1[i] > 0)  # ...where the forward activation was positive
            expected[i, k] = g @ w1
    got = explain(model, x, "guided_bp")
    torch.testing.assert_close(got, expected.detach(), rtol=1e-4, atol=1e-6)
    assert (got - explain(model, x, "grad")).abs().max() > 1e-3  # plain gradients would not pass


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("method", EXPLAINERS)
def test_explain_has_no_side_effects(method, mode, seeded):
    model = getattr(build_model("resnet8", 10, SHAPE, dropout=0.5), mode)()
    model(torch.randn(4, *SHAPE))  # num_batches_tracked > 0 in train mode
    before = copy.deepcopy(model.state_dict())
    x = torch.randn(4, *SHAPE)
    rng = torch.get_rng_state()
    first = explain(model, x, method)
    assert all(m.training == (mode == "train") for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert torch.equal(torch.get_rng_state(), rng)
    torch.testing.assert_close(explain(model, x, method), first)  # the same dropout draws again


class BatchNormAfterTheExplanationLayer(nn.Module):
    """A model whose explanation layer is followed by a train-mode BatchNorm: Grad-CAM from the
    step's own forward would mix the samples."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))

    def forward_features(self, x):
        features = self.trunk(x)
        return Forward(logits=self.head(features), explain_features=features)

    def forward(self, x):
        return self.forward_features(x).logits


def test_grad_cam_of_a_training_step_with_batchnorm_after_the_explanation_layer(seeded):
    model = BatchNormAfterTheExplanationLayer().train()
    x = torch.randn(4, *SHAPE)
    expected = one_sample_one_class(model, x, textbook_grad_cam)
    out = model.forward_features(x)
    torch.testing.assert_close(explanations_for_step(model, x, out, "grad_cam"), expected, rtol=1e-4, atol=1e-6)
    classes = torch.tensor([3, 0, 4, 4])
    one_class = grad_cam_of_class(model, out, classes, x=x)
    torch.testing.assert_close(one_class, expected[torch.arange(4), classes], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="pass x="):
        grad_cam_of_class(model, out, classes)


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
    missing = r"cam_layer 'stages.9': CifarResNet has no such submodule \(it has e.g. stem, "
    with pytest.raises(ValueError, match=missing):
        explain(model, x, "grad_cam", layer="stages.9")


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
    from introspect.train.sgd import SGD
    from introspect.train.step import train_step

    model = build_model("resnet8", 10, SHAPE).train()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(8, *SHAPE), torch.randint(0, 10, (8,))
    terms, _ = train_step(build_method("le", explainer=explainer), model, optimizer, x, y, 5, 10, seeded)
    assert set(terms) == {"le", "ce"} and all(torch.isfinite(torch.tensor(v)) for v in terms.values())


def test_explainer_behaviour_is_declared_by_its_registry_entry(seeded):
    """The attributes callers ask instead of comparing names: an explainer that reuses the step's
    forward pass needs the input to require grad (and says so); guided backprop cannot run compiled."""
    from introspect.explain import available_explainers, explainer_entry, register_explainer

    assert available_explainers() == EXPLAINERS
    mlp = build_model("mlp1024", 10, SHAPE).eval()
    x = torch.randn(2, *SHAPE)
    out = mlp.forward_features(x)
    for name in ("grad", "grad_input", "guided_bp"):
        entry = explainer_entry(name)
        if entry.needs_input_grad:
            with pytest.raises(ValueError, match="requires_grad"):
                entry.for_step(mlp, x, out, create_graph=False)
        else:
            assert entry.for_step(mlp, x, out, create_graph=False) is None  # runs its own forward pass
    assert not explainer_entry("guided_bp").supports_compile and explainer_entry("grad").supports_compile
    with pytest.raises(ValueError, match="registered twice"):
        register_explainer(type(explainer_entry("grad")))


def test_le_explains_the_layer_it_is_given_with_each_samples_own_maps():
    """LE's cam_layer: Grad-CAM at the second ResNet stage in a training step equals explain() at that layer
    (train mode, constant batch statistics) and is wider than the last stage's map."""
    from introspect.methods import build_method

    torch.manual_seed(0)
    model = build_model("resnet8", 10, (1, 9, 9)).train()
    x = torch.randn(6, 1, 9, 9)
    out = model.forward_features(x)
    step = explanations_for_step(model, x, out, "grad_cam", layer="stages.1")
    assert step.shape == (6, 10, 5, 5)
    assert torch.allclose(step, explain(model, x, "grad_cam", layer="stages.1"), atol=1e-6)
    assert explanations_for_step(model, x, out, "grad_cam").shape == (6, 10, 3, 3)
    assert build_method("le", explainer="grad", cam_layer="stages.1").cam_layer == "stages.1"  # ignored by Grad
