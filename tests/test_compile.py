"""performance.compile with LE: the all-class backward never runs through a compiled graph (vmap cannot), so
a compiled model's explanations come from its eager forward pass, also on a model without BatchNorm."""
import pytest
import torch

from introspect.explain import explain, explanations_for_step
from introspect.explain.forward import couples_samples
from introspect.models import build_model
from introspect.train import RunSpec, train


def test_a_compiled_mlp_explains_through_its_eager_forward():
    torch.manual_seed(0)
    model = build_model("mlp1024", 10, (1, 8, 8)).train()
    x = torch.randn(16, 1, 8, 8)
    eager = explain(model, x, "grad")
    model.forward_features = torch.compile(model.forward_features, backend="aot_eager")
    inputs = x.clone().requires_grad_(True)
    out = model.forward_features(inputs)
    assert couples_samples(model, out.logits, inputs)  # the compiled graph is opaque: no per-sample backward
    maps = explanations_for_step(model, inputs, out, "grad")
    assert torch.equal(maps, eager)


@pytest.mark.parametrize("explainer", ["grad", "grad_input"])
def test_le_with_aot_eager_compile_trains_the_mlp(explainer, tmp_path):
    spec = RunSpec.from_dict({"run_id": "c", "dataset": {"name": "digits", "image_size": 8}, "model": "mlp1024",
                              "method": {"name": "le", "explainer": explainer, "warmup_epochs": 0},
                              "budget": {"epochs": 2, "batch_size": 64, "lr": 0.05}, "seed": 0,
                              "performance": {"compile": "aot_eager"}})
    metrics = train(spec, tmp_path / "run")
    assert metrics["epochs"] == 2 and metrics["test_acc_final"] > 50  # 10 classes: chance is 10%
