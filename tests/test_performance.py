"""The fast paths give the same results as the conventional ones: batched on-device augmentation vs
torchvision's per-sample transforms, the DataLoader data path, and the GPU options run on a CPU."""
import json

import pytest
import torch

from introspect.data import PerSampleAugmented, Split, augment_batch
from introspect.methods import build_method
from introspect.models import build_model
from introspect.runs.spec import Performance
from introspect.train import RunSpec, train
from introspect.train.sgd import SGD
from introspect.train.step import train_step


@pytest.mark.parametrize("kind", ["crop", "crop_flip"])
def test_batched_augmentation_has_torchvisions_distribution(kind):
    """Many augmented copies of one image: the per-pixel mean and std and the share of flipped copies
    agree between augment_batch and RandomCrop(padding=4, fill)+RandomHorizontalFlip."""
    torch.manual_seed(0)
    image = torch.randn(2, 8, 8)
    fill = torch.tensor([-1.5, 2.0])
    copies = 10000
    ours = augment_batch(image.expand(copies, -1, -1, -1).clone(), kind, torch.Generator().manual_seed(1), fill=fill)
    split = Split(image.expand(copies, -1, -1, -1).clone(), torch.zeros(copies, dtype=torch.int64))
    dataset = PerSampleAugmented(split, kind, fill)
    torch.manual_seed(2)
    theirs = torch.stack([dataset[i][0] for i in range(copies)])
    assert ours.shape == theirs.shape == (copies, 2, 8, 8)
    torch.testing.assert_close(ours.mean(0), theirs.mean(0), atol=0.08, rtol=0)
    torch.testing.assert_close(ours.std(0), theirs.std(0), atol=0.1, rtol=0)
    # the padding value appears as often in both (the crop offsets have the same distribution)
    assert abs((ours == -1.5).float().mean() - (theirs == -1.5).float().mean()) < 0.01
    if kind == "crop_flip":  # a flipped, uncropped copy is the mirror image: count them
        def mirrored(batch):
            return (batch == image.flip(-1)).flatten(1).all(1).float().mean()
        assert abs(mirrored(ours) - mirrored(theirs)) < 0.01 and mirrored(ours) > 0.005


def _spec(**changes):
    spec = {"run_id": "p", "dataset": {"name": "digits", "image_size": 8, "augment": "none"}, "model": "resnet8",
            "method": {"name": "le", "explainer": "grad_cam"}, "budget": {"epochs": 2, "batch_size": 128, "lr": 0.1},
            "seed": 1}
    for key, value in changes.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    return RunSpec.from_dict(spec)


def test_the_dataloader_path_without_augmentation_equals_the_device_path(tmp_path):
    device = train(_spec(), tmp_path / "device")
    loader = train(_spec(dataset={"loader": "dataloader"}), tmp_path / "loader")
    assert device["test_acc_final"] == loader["test_acc_final"] and device["val_acc_final"] == loader["val_acc_final"]


def test_the_dataloader_path_with_augmentation_trains_deterministically(tmp_path):
    spec = _spec(dataset={"loader": "dataloader", "augment": "crop"})
    first, second = train(spec, tmp_path / "a"), train(spec, tmp_path / "b")
    assert first["test_acc_final"] == second["test_acc_final"]
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["spec"]["dataset"]["loader"] == "dataloader"


def _one_step(performance: Performance, method: dict, model_name: str = "resnet8"):
    """One training step from the same weights and batch: loss terms, logits, gradients, new weights."""
    torch.manual_seed(0)
    model = build_model(model_name, 10, (1, 9, 9)).train()
    x, y = torch.randn(32, 1, 9, 9), torch.randint(0, 10, (32,))
    if performance.channels_last:
        model.to(memory_format=torch.channels_last)
    if performance.compile:
        model.forward_features = torch.compile(model.forward_features, backend=performance.compile)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    terms, logits = train_step(build_method(**method), model, optimizer, x, y, 0, 10,
                               torch.Generator().manual_seed(1), performance=performance)
    grads = {n: p.grad.contiguous() for n, p in model.named_parameters()}
    weights = {n: p.detach().contiguous() for n, p in model.named_parameters()}
    return terms, logits, grads, weights


@pytest.mark.parametrize("method", [{"name": "le", "explainer": "grad_cam"}, {"name": "le", "explainer": "grad"},
                                    {"name": "ce"}], ids=["le-grad_cam", "le-grad", "ce"])
def test_channels_last_and_eager_compile_give_the_plain_step(method):
    """The layout and the compile wrapper change summation order only: one step's loss terms, logits,
    gradients and updated weights agree with the plain step's to float32 rounding."""
    plain = _one_step(Performance(channels_last=False), method)
    fast = _one_step(Performance(channels_last=True, compile="eager"), method)
    for ours, theirs in zip(fast, plain):  # dicts: the same keys, each value close
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert any(g.abs().sum() > 0 for g in plain[2].values())  # a step that moves nothing would prove nothing


@pytest.mark.slow
def test_the_performance_options_reach_the_metrics(tmp_path):
    fast = train(_spec(performance={"channels_last": True, "compile": "eager"}, budget={"epochs": 1}), tmp_path / "f")
    assert fast["spec"]["performance"] == {"channels_last": True, "amp": "none", "compile": "eager"}


def test_channels_last_is_the_default_layout_of_the_weights_and_the_step():
    assert RunSpec.from_dict(_spec().to_dict()).performance.channels_last
    model = build_model("resnet8", 10, (1, 9, 9)).to(memory_format=torch.channels_last)
    seen = []
    model.stem.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous(
        memory_format=torch.channels_last)))
    optimizer = SGD(model.parameters(), lr=0.1)
    train_step(build_method("ce"), model, optimizer, torch.randn(4, 1, 9, 9), torch.arange(4), 0, 10,
               performance=_spec().performance)
    assert seen == [True]


@pytest.mark.slow
def test_bf16_autocast_trains(tmp_path):
    metrics = train(_spec(performance={"amp": "bf16"}, budget={"epochs": 3}), tmp_path / "bf16")
    assert metrics["test_acc_final"] > 50


def test_a_bad_performance_option_is_rejected():
    with pytest.raises(ValueError, match="performance.amp"):
        _spec(performance={"amp": "fp8"})
