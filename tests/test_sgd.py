import pytest
import torch

from introspect.models import build_model
from introspect.train.sgd import SGD


@pytest.mark.parametrize("weight_decay", [1e-4, 0.0])
@pytest.mark.parametrize("momentum", [0.9, 0.0])
@pytest.mark.parametrize("our_foreach,their_foreach", [(True, True), (True, False), (False, False), (None, False)])
def test_our_sgd_equals_torch_sgd_with_momentum_and_weight_decay(our_foreach, their_foreach, momentum, weight_decay):
    torch.manual_seed(0)
    a = build_model("resnet8", 10, (1, 16, 16))
    b = build_model("resnet8", 10, (1, 16, 16))
    b.load_state_dict(a.state_dict())
    ours = SGD(a.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay, foreach=our_foreach)
    theirs = torch.optim.SGD(b.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay,
                             foreach=their_foreach)
    x, y = torch.randn(8, 1, 16, 16), torch.randint(0, 10, (8,))
    for step in range(4):
        for model, opt in ((a, ours), (b, theirs)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        if step == 1:
            for opt in (ours, theirs):
                opt.param_groups[0]["lr"] = 0.01
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    model = build_model("mlp1024", 10, (1, 4, 4))
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 10, (8,))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    saved_model, saved_opt = {k: v.clone() for k, v in model.state_dict().items()}, opt.state_dict()
    twin = build_model("mlp1024", 10, (1, 4, 4))
    twin.load_state_dict(saved_model)
    twin_opt = SGD(twin.parameters(), lr=1.0)
    twin_opt.load_state_dict(saved_opt)
    for m, o in ((model, opt), (twin, twin_opt)):
        o.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        o.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("foreach", [True, False, None])
def test_a_parameter_without_gradient_is_left_alone_and_joins_later(foreach):
    """As in torch.optim.SGD: no update (and no momentum buffer) while a parameter has no gradient."""
    torch.manual_seed(0)
    used, late = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    twins = [torch.nn.Linear(4, 3) for _ in range(2)]
    for twin, module in zip(twins, (used, late)):
        twin.load_state_dict(module.state_dict())
    ours = SGD([*used.parameters(), *late.parameters()], lr=0.1, momentum=0.9, weight_decay=1e-3, foreach=foreach)
    theirs = torch.optim.SGD([*twins[0].parameters(), *twins[1].parameters()], lr=0.1, momentum=0.9,
                             weight_decay=1e-3, foreach=False)
    x = torch.randn(5, 4)
    for step in range(3):
        for (first, second), opt in (((used, late), ours), (twins, theirs)):
            opt.zero_grad()
            loss = first(x).square().mean() + (second(x).square().mean() if step > 0 else 0.0)
            loss.backward()
            opt.step()
        if step == 0:
            assert ours.momentum_buffers[2] is None
    for p, q in zip([*used.parameters(), *late.parameters()], [*twins[0].parameters(), *twins[1].parameters()]):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
