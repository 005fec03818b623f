"""e2KD and XDistillation against independent computations; the student-analysis metrics on
constructed cases whose answers are known."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from introspect.analysis.students import analyse_student, explanation_similarity, relevance, remove_pixels
from introspect.explain import grad_cam_of_class
from introspect.methods import StepContext, build_method
from introspect.methods.distill import softened_kl
from introspect.methods.xdistill import normalise_maps
from introspect.models import build_model


def _pair(student_name="resnet8", teacher_name="resnet14", shape=(1, 10, 10)):
    torch.manual_seed(0)
    student = build_model(student_name, 10, shape)
    teacher = build_model(teacher_name, 10, shape).eval()
    return student, teacher, torch.randn(6, *shape), torch.randint(0, 10, (6,))


def _step(method, student, teacher, x, y):
    aux = method.setup(student, teacher, tuple(x.shape[1:]))
    out = student.forward_features(x)
    with torch.no_grad():
        teacher_out = teacher.forward_features(x)
    ctx = StepContext(x=x, y=y, out=out, model=student, epoch=0, num_classes=10, teacher=teacher_out,
                      teacher_module=teacher)
    return method.loss(ctx), aux


def _autograd_cam(model, x, classes):
    """Grad-CAM the textbook way: gradient of the chosen logit w.r.t. the last stage, channel weights
    = spatial mean of the gradient, ReLU of the weighted sum (no closed form)."""
    out = model.forward_features(x)
    grads = torch.autograd.grad(out.logits[torch.arange(len(x)), classes].sum(), out.explain_features)[0]
    return F.relu((grads.mean(dim=(2, 3), keepdim=True) * out.explain_features).sum(1))


@pytest.mark.parametrize("student_name,teacher_name", [("resnet8", "resnet14"), ("cnn6", "cnn8")])
def test_e2kd_loss_equals_an_independent_computation(student_name, teacher_name):
    student, teacher, x, y = _pair(student_name, teacher_name)
    student.eval()  # BatchNorm in eval mode so the independent forward passes see the same function
    method = build_method("e2kd", gamma=5.0, temperature=2.0, ce_weight=0.3)
    terms, _ = _step(method, student, teacher, x, y)

    with torch.no_grad():
        t_logits = teacher(x)
    classes = t_logits.argmax(1)
    t_cam = _autograd_cam(teacher, x, classes)
    s_cam = _autograd_cam(student, x, classes)
    if s_cam.shape != t_cam.shape:
        s_cam = F.interpolate(s_cam[:, None], size=t_cam.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    cos = (s_cam.flatten(1) * t_cam.flatten(1)).sum(1) / (s_cam.flatten(1).norm(dim=1) * t_cam.flatten(1).norm(dim=1))
    p_log = F.log_softmax(student(x) / 2.0, 1)
    q = F.softmax(t_logits / 2.0, 1)
    kd = 4.0 * (q * (q.log() - p_log)).sum(1).mean()

    torch.testing.assert_close(terms["explanation"], 5.0 * (1 - cos).mean(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(terms["kd"], kd, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(terms["ce"], 0.3 * F.cross_entropy(student(x), y), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("student_name,teacher_name", [("resnet8", "resnet14"), ("cnn6", "cnn8")])
def test_e2kd_trains_the_student_through_its_explanation_and_never_the_teacher(student_name, teacher_name):
    student, teacher, x, y = _pair(student_name, teacher_name)
    terms, _ = _step(build_method("e2kd", gamma=1.0), student, teacher, x, y)
    terms["explanation"].backward()
    # The explanation term alone reaches the first convolution: the gradient flows through the map.
    first_conv = next(m for m in student.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_e2kd_every_k_batches_skips_the_explanation_term():
    student, teacher, x, y = _pair()
    method = build_method("e2kd", every=3)
    method.setup(student, teacher, (1, 10, 10))
    out = student.forward_features(x)
    with torch.no_grad():
        t_out = teacher.forward_features(x)
    steps = {s: method.loss(StepContext(x, y, out, student, 0, 10, teacher=t_out, step=s, teacher_module=teacher))
             for s in range(4)}
    assert ["explanation" in steps[s] for s in range(4)] == [True, False, False, True]


def test_grad_cam_of_class_closed_form_equals_autograd():
    student, _, x, _ = _pair()
    student.eval()
    classes = torch.tensor([0, 1, 2, 3, 4, 5])
    out = student.forward_features(x)
    torch.testing.assert_close(grad_cam_of_class(student, out, classes), _autograd_cam(student, x, classes),
                               rtol=1e-4, atol=1e-6)


def test_xdistillation_decoder_shape_and_loss():
    student, teacher, x, y = _pair()
    method = build_method("xdistill", mu=2.0, temperature=4.0, ce_weight=0.1)
    terms, decoder = _step(method, student, teacher, x, y)
    features = student.forward_features(x).explain_features
    decoded = decoder(features)
    assert decoded.shape == (6, 10, 10)  # one map per sample at the input size
    with torch.no_grad():
        t_out = teacher.forward_features(x)
    t_cam = grad_cam_of_class(teacher, t_out, t_out.logits.argmax(1))
    target = F.interpolate(t_cam[:, None], size=(10, 10), mode="bilinear", align_corners=False)[:, 0]
    expected = 2.0 * ((normalise_maps(decoded) - normalise_maps(target)) ** 2).mean()
    torch.testing.assert_close(terms["explanation"], expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(terms["kd"], softened_kl(student(x), t_out.logits, 4.0), rtol=1e-4, atol=1e-6)
    terms["explanation"].backward()
    assert all(p.grad is not None for p in decoder.parameters())


def test_normalise_maps_scales_each_map_to_unit_range():
    maps = torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[4.0, 4.0], [4.0, 4.0]]])
    result = normalise_maps(maps)
    torch.testing.assert_close(result[0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]))
    torch.testing.assert_close(result[1], torch.zeros(2, 2))


# ---------------------------------------------------------------- the analysis metrics

class LeftHalfModel(nn.Module):
    """Logits from the left half of the image only: the answer to 'which pixels matter' is known."""

    def __init__(self, weight):
        super().__init__()
        self.weight = weight  # (classes, 1, H, W // 2)

    def forward(self, x):
        left = x[..., : x.shape[-1] // 2]
        return torch.einsum("bchw,kchw->bk", left, self.weight)


def test_relevance_is_high_when_the_explanation_marks_the_pixels_the_model_uses():
    torch.manual_seed(0)
    weight = torch.randn(4, 1, 8, 4)
    model = LeftHalfModel(weight)
    x = torch.randn(400, 1, 8, 8)
    y = model(x).argmax(1)  # the model is right on every sample by construction
    saliency = torch.zeros(400, 8, 8)
    saliency[..., :4] = 1.0 + torch.rand(400, 8, 4)  # the left half ranks first
    wrong = torch.zeros(400, 8, 8)
    wrong[..., 4:] = 1.0 + torch.rand(400, 8, 4)  # an explanation pointing at the unused half
    right = relevance(model, x, y, saliency, fractions=[0.5])
    misled = relevance(model, x, y, wrong, fractions=[0.5])
    assert right["accuracy"] == 100.0
    assert right["curve"][0]["drop_salient"] > 60  # the left half gone: the model knows nothing
    assert misled["curve"][0]["drop_salient"] == 0.0  # the right half gone: nothing changes
    assert right["relevance"] > 20 > 0 > misled["relevance"]


def test_remove_pixels_removes_exactly_the_fraction_and_upsamples_saliency():
    x = torch.ones(3, 2, 4, 4)
    saliency = torch.tensor([[0.0, 0.0], [0.0, 1.0]]).expand(3, 2, 2)  # coarse map: bottom-right salient
    out = remove_pixels(x, saliency, 0.25)
    assert (out == 0).all(dim=1).sum(dim=(1, 2)).tolist() == [4, 4, 4]  # 25% of 16 pixels, all channels
    assert (out[:, :, 2:, 2:] == 0).all()
    random = remove_pixels(x, saliency, 0.5, generator=torch.Generator().manual_seed(0))
    assert (random == 0).all(dim=1).sum(dim=(1, 2)).tolist() == [8, 8, 8]


def test_a_student_analysed_against_itself_agrees_fully():
    student, _, x, y = _pair()
    student.eval()
    result = analyse_student(student, student, x, y, fractions=[0.2])
    assert result["agreement"] == 100.0
    assert result["explanation_similarity"] == pytest.approx(1.0, abs=1e-5)


def test_explanation_similarity_resizes_the_student_map():
    teacher = torch.rand(2, 4, 4)
    student = teacher[:, ::2, ::2].clone()
    sims = explanation_similarity(student, teacher)
    assert sims.shape == (2,) and (sims > 0.5).all()
