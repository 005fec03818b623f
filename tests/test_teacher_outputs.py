"""A frozen teacher's outputs computed once per run where the batches repeat (no augmentation), and
per batch where they do not; the same outputs either way up to summation order."""
import pytest
import torch

import introspect.train.loop as loop
from introspect.data import load_dataset
from introspect.methods import build_method
from introspect.models import build_model
from introspect.runs.spec import Performance
from introspect.train import RunSpec, train
from introspect.train.teacher import precompute_teacher_outputs, teacher_outputs_of


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", val_fraction=0.15, test_fraction=0.2, image_size=9, split_seed=0)


def teacher_network(model: str = "resnet14", num_classes: int = 10, shape=(1, 9, 9)):
    torch.manual_seed(3)
    return build_model(model, num_classes, shape).eval()


@pytest.mark.parametrize("model", ["resnet14", "cnn8"])
def test_the_cached_outputs_of_a_batch_are_its_own_forward_pass(digits, model):
    teacher = teacher_network(model)
    cache = precompute_teacher_outputs(build_method("fsp_kd"), teacher, digits, "device", Performance(), 128)
    index = torch.tensor([5, 700, 0, 131, len(digits.train) - 1])
    gathered = teacher_outputs_of(cache, index)
    with torch.no_grad():
        direct = teacher.forward_features(digits.train.x[index])
    torch.testing.assert_close(gathered.logits, direct.logits, rtol=1e-5, atol=1e-5)
    assert len(gathered.stages) == len(direct.stages)
    for ours, theirs in zip(gathered.stages, direct.stages):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert gathered.explain_features is gathered.stages[-1]  # one tensor, as the model returns it


def test_a_method_that_changes_its_batchs_outputs_leaves_the_cache_alone(digits):
    cache = precompute_teacher_outputs(build_method("kd"), teacher_network(), digits, "device", Performance(), 128)
    before = cache.logits.clone()
    teacher_outputs_of(cache, torch.arange(4)).logits.mul_(0)
    assert torch.equal(cache.logits, before)


@pytest.mark.parametrize("why", ["no teacher outputs", "augmented", "dataloader", "too large", "train mode"])
def test_no_cache_where_the_batches_do_not_repeat_or_it_would_not_fit(digits, why):
    teacher, method, loader, max_bytes = teacher_network(), build_method("kd"), "device", 1 << 30
    data = load_dataset("digits", val_fraction=0.15, test_fraction=0.2, image_size=9, split_seed=0,
                        augment="crop" if why == "augmented" else "none")
    if why == "no teacher outputs":
        method = build_method("ce")
    elif why == "dataloader":
        loader = "dataloader"
    elif why == "too large":
        max_bytes = 1 << 20  # ResNet14's stages on ~1,150 digits take ~5 MB
    elif why == "train mode":
        teacher.train()
    assert precompute_teacher_outputs(method, teacher, data, loader, Performance(), 128, max_bytes) is None
    assert precompute_teacher_outputs(build_method("kd"), teacher.eval(), digits, "device", Performance(), 128,
                                      1 << 30) is not None


@pytest.mark.slow
def test_a_distillation_run_runs_its_teacher_once_per_run_not_per_epoch(tmp_path, monkeypatch):
    base = {"dataset": {"name": "digits", "image_size": 9, "val_fraction": 0.15, "test_fraction": 0.2},
            "budget": {"epochs": 1, "batch_size": 128, "lr": 0.05}, "seed": 0}
    train(RunSpec.from_dict({**base, "run_id": "teacher", "model": "resnet8", "method": {"name": "ce"}}),
          tmp_path / "teacher")
    calls = []
    original = loop.load_model

    def counting_load_model(*args, **kwargs):
        model = original(*args, **kwargs)
        forward = model.forward_features
        model.forward_features = lambda x: calls.append(len(x)) or forward(x)
        return model

    monkeypatch.setattr(loop, "load_model", counting_load_model)
    spec = {**base, "model": "resnet8", "method": {"name": "kd"}, "teacher": str(tmp_path / "teacher" / "model.pt"),
            "budget": {**base["budget"], "epochs": 3}}
    train(RunSpec.from_dict({**spec, "run_id": "kd"}), tmp_path / "kd")
    n_train = len(load_dataset("digits", val_fraction=0.15, test_fraction=0.2, image_size=9, split_seed=0).train)
    assert sum(calls) == n_train  # one pass over the training images for three epochs
    calls.clear()
    augmented = {**spec, "dataset": {**spec["dataset"], "augment": "crop"}}
    train(RunSpec.from_dict({**augmented, "run_id": "kd-crop"}), tmp_path / "kd-crop")
    assert sum(calls) == 3 * n_train  # new images every epoch: each batch's own forward pass
