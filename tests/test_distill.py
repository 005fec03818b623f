"""KD-family losses against hand computations and independent formulas (Eq. 4 of the paper)."""
import math

import pytest
import torch
import torch.nn.functional as F

from introspect.methods import StepContext, build_method
from introspect.methods.distill import attention_loss, attention_map, fsp_loss, fsp_matrix, softened_kl
from introspect.models import build_model
from introspect.train import RunSpec, train


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_gradient_is_t_times_p_minus_q_over_b(temperature, seeded):
    """Eq. 4: with t = q the gradient of the loss w.r.t. the logits is (p - q) / b (times T with T^2 scaling)."""
    student = torch.randn(5, 10, requires_grad=True)
    teacher = torch.randn(5, 10)
    softened_kl(student, teacher, temperature).backward()
    p = F.softmax(student.detach() / temperature, 1)
    q = F.softmax(teacher / temperature, 1)
    torch.testing.assert_close(student.grad, temperature * (p - q) / 5)


def test_kd_hand_computed_value():
    s = torch.tensor([[0.0, math.log(3.0)]])  # p = (1/4, 3/4) at T = 1
    t = torch.tensor([[0.0, 0.0]])  # q = (1/2, 1/2)
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert softened_kl(s, t, 1.0).item() == pytest.approx(expected)
    method = build_method("kd", temperature=1.0, ce_weight=0.1)
    ctx = StepContext(x=None, y=torch.tensor([1]), out=type("F", (), {"logits": s})(), model=None, epoch=0,
                      num_classes=2, teacher=type("F", (), {"logits": t})())
    terms = method.loss(ctx)
    assert terms["kd"].item() == pytest.approx(expected)
    assert terms["ce"].item() == pytest.approx(-0.1 * math.log(0.75))


def test_kd_without_a_teacher_is_a_clear_error():
    ctx = StepContext(x=None, y=torch.tensor([0]), out=None, model=None, epoch=0, num_classes=2)
    with pytest.raises(ValueError, match="needs a teacher"):
        build_method("kd").loss(ctx)


def test_attention_map_hand_computed():
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # (1, 2 channels, 1, 2)
    squares = torch.tensor([(1 + 9) / 2, (4 + 0) / 2])  # channel mean of squares: 5, 2
    torch.testing.assert_close(attention_map(features), (squares / squares.norm())[None])
    other = torch.tensor([[[[0.0, 1.0]], [[0.0, 1.0]]]])
    expected = (attention_map(features) - torch.tensor([[0.0, 1.0]])).pow(2).mean()
    torch.testing.assert_close(attention_loss([features], [other]), expected)


def test_fsp_matrix_hand_computed_and_pooled():
    a = torch.tensor([[[[1.0, 2.0]], [[0.0, 1.0]]]])  # (1, 2, 1, 2)
    b = torch.tensor([[[[3.0, 1.0]]]])  # (1, 1, 1, 2)
    # G[i, j] = sum_hw a_i * b_j / (h*w): (1*3 + 2*1)/2 = 2.5, (0*3 + 1*1)/2 = 0.5
    torch.testing.assert_close(fsp_matrix(a, b), torch.tensor([[[2.5], [0.5]]]))
    big = torch.ones(2, 3, 4, 4)
    small = torch.ones(2, 5, 2, 2)
    assert fsp_matrix(big, small).shape == (2, 3, 5)


def test_fsp_and_attention_losses_on_resnet_stages(seeded):
    student = build_model("resnet8", 10, (1, 16, 16))
    teacher = build_model("resnet26", 10, (1, 16, 16)).eval()
    x = torch.randn(3, 1, 16, 16)
    s, t = student.forward_features(x).stages, teacher.forward_features(x).stages
    assert [fsp_matrix(s[i], s[i + 1]).shape for i in range(2)] == [(3, 16, 32), (3, 32, 64)]
    assert fsp_loss(s, t).item() > 0 and attention_loss(s, t).item() > 0
    assert fsp_loss(t, t).item() == 0 and attention_loss(t, t).item() == 0
    fsp_loss(s, t).backward()
    assert student.stages[0][0].conv1.weight.grad is not None


def test_hint_regressor_is_built_from_the_stage_shapes_and_trained(seeded):
    student = build_model("resnet8", 10, (1, 16, 16))
    teacher = build_model("resnet26", 10, (1, 16, 16)).eval()
    method = build_method("hint", hint_stage=2)
    regressor = method.setup(student, teacher, (1, 16, 16))
    assert regressor[0].in_channels == 32 and regressor[0].out_channels == 32
    x, y = torch.randn(4, 1, 16, 16), torch.randint(0, 10, (4,))
    with torch.no_grad():
        t = teacher.forward_features(x)
    out = student.forward_features(x)
    terms = method.loss(StepContext(x, y, out, student, 0, 10, teacher=t))
    assert set(terms) == {"ce", "hint"}  # the paper's Hint: no KD term (Sec. 5.3 adds KD to AT and FSP only)
    torch.testing.assert_close(terms["ce"], F.cross_entropy(out.logits, y))
    sum(terms.values()).backward()
    assert regressor[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    assert "regressor" not in method.hyperparameters()
    with_kd = build_method("hint", kd_weight=1.0, temperature=4.0)
    with_kd.setup(student, teacher, (1, 16, 16))
    terms = with_kd.loss(StepContext(x, y, student.forward_features(x), student, 0, 10, teacher=t))
    assert set(terms) == {"ce", "kd", "hint"}


def test_hint_two_stage_fitnets_trains_only_up_to_the_hint_stage_first(seeded):
    student = build_model("resnet8", 10, (1, 9, 9))
    teacher = build_model("resnet26", 10, (1, 9, 9)).eval()
    method = build_method("hint", hint_epochs=2, kd_weight=1.0)
    method.setup(student, teacher, (1, 9, 9))
    x, y = torch.randn(4, 1, 9, 9), torch.randint(0, 10, (4,))
    with torch.no_grad():
        t = teacher.forward_features(x)
    stage1 = method.loss(StepContext(x, y, student.forward_features(x), student, 1, 10, teacher=t))
    assert set(stage1) == {"hint"} and method.stage(1) == 1
    sum(stage1.values()).backward()
    assert student.stages[1][0].conv1.weight.grad is not None  # up to the 2nd (hint) stage
    assert student.stages[2][0].conv1.weight.grad is None and student.fc.weight.grad is None
    stage2 = method.loss(StepContext(x, y, student.forward_features(x), student, 2, 10, teacher=t))
    assert set(stage2) == {"ce", "kd"} and method.stage(2) == 2


def test_attention_term_is_rescaled_to_the_reference_input_size():
    """beta/2 * (input area / 32^2) * sum over stages of the mean over (batch, positions), by a plain loop."""
    torch.manual_seed(0)
    s_stages = [torch.rand(2, 3, 9, 9), torch.rand(2, 4, 5, 5), torch.rand(2, 5, 3, 3)]
    t_stages = [torch.rand(2, 3, 9, 9), torch.rand(2, 4, 5, 5), torch.rand(2, 5, 3, 3)]
    total = 0.0
    for s, t in zip(s_stages, t_stages):
        stage_sum, count = 0.0, 0
        for b in range(2):
            a_s = [sum(float(s[b, c, i, j]) ** 2 for c in range(s.shape[1])) / s.shape[1]
                   for i in range(s.shape[2]) for j in range(s.shape[3])]
            a_t = [sum(float(t[b, c, i, j]) ** 2 for c in range(t.shape[1])) / t.shape[1]
                   for i in range(t.shape[2]) for j in range(t.shape[3])]
            n_s, n_t = math.sqrt(sum(v * v for v in a_s)), math.sqrt(sum(v * v for v in a_t))
            stage_sum += sum((u / n_s - v / n_t) ** 2 for u, v in zip(a_s, a_t))
            count += len(a_s)
        total += stage_sum / count
    x = torch.zeros(2, 1, 9, 9)
    logits = torch.zeros(2, 10)

    def forward(stages):
        return type("F", (), {"logits": logits, "stages": stages})()

    ctx = StepContext(x, torch.tensor([0, 1]), forward(s_stages), None, 0, 10, teacher=forward(t_stages))
    rescaled = build_method("at_kd", at_weight=1000.0).loss(ctx)["attention"]
    assert rescaled.item() == pytest.approx(1000.0 / 2 * 81 / 1024 * total, rel=1e-5)
    plain = build_method("at_kd", at_weight=1000.0, reference_size=0).loss(ctx)["attention"]
    assert plain.item() == pytest.approx(1000.0 / 2 * total, rel=1e-5)


@pytest.mark.slow
def test_distillation_runs_train_with_a_teacher_checkpoint_and_resume(tmp_path):
    base = {"dataset": {"name": "digits", "image_size": 8, "val_fraction": 0.15, "test_fraction": 0.2},
            "budget": {"epochs": 2, "batch_size": 128, "lr": 0.05}, "seed": 0}
    train(RunSpec.from_dict({**base, "run_id": "teacher", "model": "resnet14", "method": {"name": "ce"}}),
          tmp_path / "teacher")
    teacher = str(tmp_path / "teacher" / "model.pt")
    for name in ("kd", "hint", "at_kd", "fsp_kd"):
        spec = RunSpec.from_dict({**base, "run_id": name, "model": "resnet8", "method": {"name": name},
                                  "teacher": teacher, "budget": {**base["budget"], "epochs": 3}})
        straight = train(spec, tmp_path / name)
        assert 0 < straight["test_acc_final"] <= 100
        failing = RunSpec.from_dict({**spec.to_dict(), "fail_at_epoch": 2})
        with pytest.raises(Exception, match="failure injected"):
            train(failing, tmp_path / f"{name}-resumed")
        resumed = train(spec, tmp_path / f"{name}-resumed")
        assert resumed["test_acc_final"] == straight["test_acc_final"], name
    with pytest.raises(Exception, match="needs a teacher"):
        train(RunSpec.from_dict({**base, "run_id": "x", "model": "resnet8", "method": {"name": "kd"}}), tmp_path / "x")


def test_dml_trains_a_peer_of_the_same_architecture_with_mutual_kl(seeded):
    student = build_model("resnet8", 10, (1, 8, 8))
    method = build_method("dml", kl_weight=0.1)
    peer = method.setup(student, None, (1, 8, 8))
    assert type(peer) is type(student) and peer is not student
    assert not torch.equal(next(peer.parameters()), next(student.parameters()))
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    out = student.forward_features(x)
    terms = method.loss(StepContext(x, y, out, student, 0, 10))
    log_p, log_q = F.log_softmax(out.logits, 1), F.log_softmax(peer(x), 1)
    expected = 0.1 * (log_q.exp() * (log_q - log_p)).sum(1).mean()  # KL(peer || student)
    torch.testing.assert_close(terms["kl_to_peer"], expected)
    torch.testing.assert_close(terms["peer_ce"], F.cross_entropy(peer(x), y))
    sum(terms.values()).backward()
    assert all(p.grad is not None for p in peer.parameters())
    assert method.hyperparameters() == {"kl_weight": 0.1}


@pytest.mark.slow
def test_dml_run_reports_the_student_and_resumes_with_its_peer(tmp_path):
    base = {"dataset": {"name": "digits", "image_size": 8, "val_fraction": 0.15, "test_fraction": 0.2},
            "budget": {"epochs": 3, "batch_size": 128, "lr": 0.05}, "seed": 0, "run_id": "dml", "model": "resnet8",
            "method": {"name": "dml"}}
    straight = train(RunSpec.from_dict(base), tmp_path / "straight")
    with pytest.raises(Exception, match="failure injected"):
        train(RunSpec.from_dict({**base, "fail_at_epoch": 2}), tmp_path / "resumed")
    resumed = train(RunSpec.from_dict(base), tmp_path / "resumed")
    assert resumed["test_acc_final"] == straight["test_acc_final"]
    saved = torch.load(tmp_path / "straight" / "model.pt", weights_only=False)
    assert saved["method_modules"] is not None  # the peer is checkpointed with the student
