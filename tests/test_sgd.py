import torch

from introspect.models import build_model
from introspect.train.sgd import SGD


def test_our_sgd_equals_torch_sgd_with_momentum_and_weight_decay():
    torch.manual_seed(0)
    a = build_model("resnet8", 10, (1, 16, 16))
    b = build_model("resnet8", 10, (1, 16, 16))
    b.load_state_dict(a.state_dict())
    ours = SGD(a.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    theirs = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
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
