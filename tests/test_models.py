import pytest
import torch
from torch import nn

from introspect.models import available_models, build_model

ALL = ["resnet8", "resnet14", "resnet20", "resnet26", "cnn6", "cnn8", "cnn10", "mlp1024"]


def test_registry_has_every_model_of_the_paper():
    assert set(ALL) <= set(available_models())
    with pytest.raises(KeyError, match="unknown model 'resnet9'"):
        build_model("resnet9", 10, (3, 32, 32))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (1, 16, 16)])
def test_every_model_accepts_every_input_size_used(name, shape):
    model = build_model(name, 10, shape)
    out = model.forward_features(torch.randn(2, *shape))
    assert out.logits.shape == (2, 10)
    assert model(torch.zeros(1, *shape)).shape == (1, 10)
    assert out.stages and all(s.shape[0] == 2 for s in out.stages)
    if name.startswith("mlp"):
        assert out.explain_features is None
    else:
        assert out.explain_features is out.stages[-1] and out.explain_features.dim() == 4


@pytest.mark.parametrize("depth", [8, 14, 20, 26])
def test_resnet_depth_is_6n_plus_2_with_projection_shortcuts(depth):
    model = build_model(f"resnet{depth}", 10, (3, 32, 32))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == depth  # 3x3 convs plus the linear head
    projections = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(projections) == 2  # into stage 2 and stage 3
    stages = model.forward_features(torch.randn(1, 3, 32, 32)).stages
    assert [tuple(s.shape[1:]) for s in stages] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


@pytest.mark.parametrize("name,convs,linears", [("cnn6", 6, 1), ("cnn8", 8, 2), ("cnn10", 10, 2)])
def test_plain_cnn_layer_counts(name, convs, linears):
    model = build_model(name, 10, (3, 32, 32))
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == convs
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == linears


def test_mlp_is_784_1024_1024_10_on_mnist():
    model = build_model("mlp1024", 10, (1, 28, 28))
    shapes = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, nn.Linear)]
    assert shapes == [(1024, 784), (1024, 1024), (10, 1024)]


@pytest.mark.parametrize("name", ALL)
def test_dropout_option_is_active_in_training_only(name):
    model = build_model(name, 10, (1, 16, 16), dropout=0.5)
    x = torch.randn(4, 1, 16, 16)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, model(x))
    with pytest.raises(ValueError, match="dropout"):
        build_model(name, 10, (1, 16, 16), dropout=1.0)


@pytest.mark.parametrize("size,last_map", [(32, 4), (10, 2), (8, 1)])
def test_cnns_pool_with_ceil_mode_so_small_inputs_work_and_32px_is_unchanged(size, last_map):
    model = build_model("cnn10", 10, (1, size, size)).train()
    out = model.forward_features(torch.randn(2, 1, size, size))  # BatchNorm on a 1x1 map needs 2 samples
    assert out.logits.shape == (2, 10) and out.explain_features.shape[-1] == last_map
