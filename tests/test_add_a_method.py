"""Adding a method as README.md says ("Adding a method": one module, one import, config lines).

The fast tests: a method's mistakes in its loss terms are errors that name the method and the term. The
slow one copies the package, adds the README's module and import line to the copy, and runs there the tests
that cover every registered method, a plan of a config that names it in a table with a sweep and a claim,
and one training step."""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from introspect.config.model import load_config
from introspect.methods import Method, StepContext
from introspect.methods.base import checked_loss_terms
from introspect.models import build_model
from introspect.train.errors import NonFiniteLossError
from introspect.train.records import Batch, epoch_sums

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Unreduced(Method):  # not registered: the check needs no registry
    name = "unreduced"
    kind: str = "per_sample"

    def loss(self, ctx: StepContext):
        per_sample = F.cross_entropy(ctx.out.logits, ctx.y, reduction="none")
        value = {"per_sample": per_sample, "float": 0.5, "integer": ctx.y.sum(), "scalar": per_sample.mean()}
        return {"ce": per_sample.mean(), "reg": value[self.kind]} if self.kind != "list" else [per_sample.mean()]


def context() -> StepContext:
    torch.manual_seed(0)
    model = build_model("mlp1024", 3, (1, 4, 4))
    x, y = torch.randn(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    return StepContext(x=x, y=y, out=model.forward_features(x), model=model, epoch=0, num_classes=3)


@pytest.mark.parametrize("kind,fragment", [
    ("per_sample", "method 'unreduced': loss term 'reg' has shape (5,); it must be a scalar: reduce it"),
    ("float", "method 'unreduced': loss term 'reg' is float; it must be a scalar floating-point tensor"),
    ("integer", "method 'unreduced': loss term 'reg' is a torch.int64 tensor"),
    ("list", "method 'unreduced': loss() must return a dict of named loss terms, not list"),
])
def test_a_bad_loss_term_names_the_method_and_the_term(kind, fragment):
    with pytest.raises((TypeError, ValueError)) as info:
        method = Unreduced(kind=kind)
        checked_loss_terms(method, method.loss(context()))
    assert fragment in str(info.value)


def test_good_loss_terms_pass_unchanged():
    ctx = context()
    method = Unreduced(kind="scalar")
    terms = checked_loss_terms(method, method.loss(ctx))
    expected = F.cross_entropy(ctx.out.logits, ctx.y)
    assert set(terms) == {"ce", "reg"}
    torch.testing.assert_close(terms["ce"], expected)
    torch.testing.assert_close(terms["reg"], expected)


def test_a_nan_loss_term_is_named_with_its_batch():
    batches = [Batch({"ce": 2.0, "reg": 0.5}, 16, 3, {}), Batch({"ce": 1.9, "reg": math.nan}, 16, 4, {})]
    with pytest.raises(NonFiniteLossError) as info:
        epoch_sums("digits/resnet8/resnet-e3/mine/seed0", 2, batches)
    assert ("digits/resnet8/resnet-e3/mine/seed0: non-finite loss at epoch 2, batch 1 (ce=1.9, reg=nan): "
            "the method's loss term 'reg'") in str(info.value)


def readme_method() -> tuple[str, str]:
    """The module README.md's "Adding a method" shows: its file name and its text."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n# (src/introspect/methods/\w+\.py)\n(.*?)```", text, re.S)
    assert block, "README.md: the method module's code block starts with its path as a comment"
    return block.group(1), block.group(2)


def readme_config_lines() -> dict:
    """The config lines README.md's "Adding a method" shows (a YAML block after the module)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(# config lines for the new method\n.*?)```", text, re.S)
    assert block, "README.md: the config lines of the new method"
    return yaml.safe_load(block.group(1))


@pytest.mark.slow
@pytest.mark.system
def test_a_method_added_as_the_readme_says_passes_the_tests_over_every_method(tmp_path):
    checkout = tmp_path / "checkout"
    for folder in ("src", "tests", "config"):
        shutil.copytree(ROOT / folder, checkout / folder, ignore=shutil.ignore_patterns("__pycache__"))
    path, code = readme_method()
    (checkout / path).write_text(code)
    init = checkout / "src/introspect/methods/__init__.py"
    module = Path(path).stem
    text = init.read_text()
    line = next(line for line in text.splitlines() if line.strip().startswith("from . import "))
    names = sorted({*line.split("import ", 1)[1].split("  #")[0].replace(" ", "").split(","), module})
    init.write_text(text.replace(line, line.split("from . import")[0] + "from . import " + ", ".join(names)
                                 + "  # noqa: F401  (registers them)"))
    lines = readme_config_lines()
    config = load_config(ROOT / "config" / "smoke.yaml")
    config["methods"].update(lines["methods"])
    label = next(iter(lines["methods"]))
    config["tables"]["table2"]["methods"].append(label)
    config["claims"] = [*config.get("claims", []), *lines["claims"]]
    config["results_dir"] = str(tmp_path / "results")
    (checkout / "mine.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    env = {**os.environ, "PYTHONPATH": str(checkout / "src"), "INTROSPECT_CACHE_DIR": str(tmp_path / "cache")}

    plan = subprocess.run([sys.executable, "-m", "introspect", "plan", "--config", "mine.yaml"], cwd=checkout,
                          env=env, capture_output=True, text=True, timeout=600)
    assert plan.returncode == 0, plan.stderr
    assert "table2: " in plan.stdout and "estimated GPU-hours" in plan.stdout

    step = subprocess.run([sys.executable, "-c", (
        "import torch; from introspect.methods import build_method, StepContext; "
        "from introspect.models import build_model; "
        f"m = build_method({lines['methods'][label]['method']!r}); net = build_model('resnet8', 10, (1, 8, 8)); "
        "x = torch.randn(4, 1, 8, 8); y = torch.tensor([0, 1, 2, 3]); "
        "from introspect.methods.base import checked_loss_terms; "
        "ctx = StepContext(x=x, y=y, out=net.forward_features(x), model=net, epoch=0, num_classes=10); "
        "t = checked_loss_terms(m, m.loss(ctx)); "
        "sum(t.values()).backward(); print(sorted(t))")], cwd=checkout, env=env, capture_output=True, text=True,
        timeout=600)
    assert step.returncode == 0, step.stderr
    assert step.stdout.strip().startswith("['ce'")

    every_method = [  # the tests that go over every registered method, and the house rules
        "tests/test_catalog.py::test_the_catalog_is_the_registries",
        "tests/test_resources.py::test_a_method_without_a_cost_factor_costs_what_ce_costs_and_teacher_methods_cost_more",
        "tests/test_validation.py::test_every_hyperparameter_check_comes_from_its_dataclass_field",
        "tests/test_methods.py::test_registry_and_hyperparameter_errors", "tests/test_structure.py",
        "tests/test_imports.py"]
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m",
                            "not slow and not workflow and not system", *every_method], cwd=checkout, env=env,
                           capture_output=True, text=True, timeout=1200)
    assert tests.returncode == 0, tests.stdout[-3000:]
