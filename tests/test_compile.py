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


@pytest.mark.slow
@pytest.mark.parametrize("explainer", ["grad", "grad_input"])
def test_le_with_aot_eager_compile_trains_the_mlp(explainer, tmp_path):
    spec = RunSpec.from_dict({"run_id": "c", "dataset": {"name": "digits", "image_size": 8}, "model": "mlp1024",
                              "method": {"name": "le", "explainer": explainer, "warmup_epochs": 0},
                              "budget": {"epochs": 2, "batch_size": 64, "lr": 0.05}, "seed": 0,
                              "performance": {"compile": "aot_eager"}})
    metrics = train(spec, tmp_path / "run")
    assert metrics["epochs"] == 2 and metrics["test_acc_final"] > 50  # 10 classes: chance is 10%


def test_the_plan_refuses_compile_only_where_the_trainer_cannot_compile():
    """The paper config with compile: refused at plan time for guided backprop alone, naming it."""
    from introspect.config.model import ConfigError, load_config
    from introspect.plan.build import build_plan
    from workflow_helpers import ROOT

    config = load_config(ROOT / "config" / "paper.yaml")
    config["performance"] = {**config.get("performance", {}), "compile": "aot_eager"}
    with pytest.raises(ConfigError, match="guided_bp"):
        build_plan(config)
    config["methods"] = {label: method for label, method in config["methods"].items()
                         if method.get("explainer") != "guided_bp"}
    for container in [*config["tables"].values(), *config.get("figures", {}).values()]:
        if "methods" in container:
            container["methods"] = [m for m in container["methods"] if m in config["methods"]]
    build_plan(config)  # nothing else is refused


@pytest.mark.slow
def test_every_step_kind_of_the_paper_plan_trains_compiled_or_is_refused():
    """One compiled (aot_eager) step of every step kind the paper plan holds, guided backprop aside (refused
    above): the trainer handles every (compile, explainer, model) combination it lets through."""
    from dataclasses import replace

    from introspect.cluster.calibration import step_kinds
    from introspect.data import Dataset, Split, dataset_source
    from introspect.explain import explainer_entry
    from introspect.plan.build import build_plan, load_config
    from introspect.train.probe import StepRunner
    from workflow_helpers import ROOT

    plan = build_plan(load_config(ROOT / "config" / "paper.yaml"))
    failures, compiled = [], 0
    for key, (kind, run) in step_kinds(plan).items():
        if kind.explainer and not explainer_entry(kind.explainer).supports_compile:
            continue
        spec = RunSpec.from_dict({k: v for k, v in run.run_spec_dict().items()
                                  if k not in ("teacher", "init_from", "hyperparameters_from")})
        spec = replace(spec, budget=replace(spec.budget, batch_size=4),
                       performance=replace(spec.performance, compile="aot_eager"))
        source = dataset_source(spec.dataset.name)
        side = spec.dataset.image_size or source.image_size
        x = torch.randn(8, source.channels, side, side, generator=torch.Generator().manual_seed(0))
        split = Split(x, torch.arange(8) % 10)
        data = Dataset("synthetic", split, split, split, 10, [str(i) for i in range(10)])
        epoch = run.method.get("warmup_epochs", 0) if run.init_from else 0
        try:
            terms = StepRunner(spec, data, teacher_model=kind.teacher_model, epoch=epoch)()
            assert all(torch.isfinite(v) for v in terms.values()), terms
            compiled += 1
        except Exception as error:  # noqa: BLE001 - every failing kind is named at the end
            failures.append(f"{key}: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
    assert not failures, "\n".join(failures)
    assert compiled >= 50  # the paper plan's kinds (61), without LE(GuidedBP) on two models
