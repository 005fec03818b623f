"""What jobs ask SLURM for (introspect.cluster.resources): GPU request forms, partitions, the plan-time refusals,
and time limits from the pre-flight's measured step costs (introspect.cluster.calibration) or the hand constants."""
from __future__ import annotations

import json

import pytest
import yaml

from introspect.cluster.calibration import CALIBRATION_VERSION, calibration_paths, step_kind
from introspect.cluster.resources import gpu_request, run_seconds, runtime_minutes, summary
from introspect.config.model import ConfigError, load_config
from introspect.config.registry_facts import registry_catalog
from introspect.config.schemas import schema_path
from introspect.errors import ResultFileError
from introspect.plan.build import build_plan
from workflow_helpers import ROOT


def tiny_config(tmp_path, **cluster) -> dict:
    """Table 2 of the smoke config cut to CE and LE(Grad-CAM) on ResNet8, two seeds."""
    config = load_config(ROOT / "config" / "smoke.yaml")
    table2 = {**config["tables"]["table2"], "methods": ["CE", "LE(Grad-CAM)"]}
    config.update(tables={"table2": table2}, figures={}, analyses={}, claims=[], teachers={},
                  results_dir=str(tmp_path / "results"), cluster=cluster)
    return config


def test_gpu_request_forms(tmp_path):
    cuda = {**tiny_config(tmp_path), "device": "cuda"}
    assert gpu_request(build_plan(cuda).config) == {"gpu": 1, "gpu_model": "", "gres": ""}
    plan = build_plan({**cuda, "cluster": {"gpu_model": "a100", "gpus_per_run": 2}})
    assert gpu_request(plan.config) == {"gpu": 2, "gpu_model": "a100", "gres": ""}
    plan = build_plan({**cuda, "cluster": {"gpu_model": "a100", "gpu_request": "gres"}})
    assert gpu_request(plan.config) == {"gpu": 0, "gpu_model": "", "gres": "gpu:a100:1"}
    plan = build_plan({**cuda, "cluster": {"runs_per_gpu": 4}})  # packed: one GPU per group, as a string
    assert gpu_request(plan.config) == {"gpu": 0, "gpu_model": "", "gres": "gpu:1"}
    plan = build_plan({**cuda, "cluster": {"gpu_shards_per_run": 2}})
    assert gpu_request(plan.config) == {"gpu": 0, "gpu_model": "", "gres": "shard:2"}
    # device cpu: no GPU by default
    assert gpu_request(build_plan(tiny_config(tmp_path)).config) == {"gpu": 0, "gpu_model": "", "gres": ""}


def test_plan_refuses_what_the_plugin_or_the_device_would_refuse(tmp_path):
    """The cluster checks are part of the one validation (build_plan), not a second call."""
    def problems(config: dict) -> list[str]:
        try:
            build_plan(config)
        except ConfigError as error:
            return [line.strip() for line in str(error).splitlines()[1:]]
        return []

    cuda = {**tiny_config(tmp_path), "device": "cuda"}
    found = problems({**cuda, "cluster": {"gpu_model": "a100-80gb"}})
    assert len(found) == 1 and found[0].startswith("cluster.gpu_model: 'a100-80gb'")
    assert problems({**cuda, "cluster": {"gpu_model": "h100_80gb.mig"}}) == []
    for key, value in (("gpus_per_run", 1), ("gpu_shards_per_run", 1), ("runs_per_gpu", 2)):
        found = problems(tiny_config(tmp_path, **{key: value}))
        assert len(found) == 1 and found[0].startswith(f"cluster.{key}:") and "device" in found[0]
    assert problems(tiny_config(tmp_path, gpus_per_run=1, fake_gpus=True)) == []
    found = problems({**cuda, "cluster": {"gpu_shards_per_run": 2, "runs_per_gpu": 2}})
    assert found == ["cluster.runs_per_gpu: packing and gpu_shards_per_run are two ways of sharing a GPU; "
                     "use one of them"]


def test_a_method_without_a_cost_factor_costs_what_ce_costs_and_teacher_methods_cost_more(tmp_path):
    """A new method needs no entry in cluster.method_cost (README "Adding a method"): the estimate uses 1.0,
    a CE epoch. The shipped methods that run a teacher (or a peer) have factors above 1."""
    schema = yaml.safe_load(schema_path("config").read_text())
    defaults = schema["properties"]["cluster"]["properties"]["method_cost"]["default"]
    catalog = registry_catalog()
    shipped_teacher_methods = {"kd", "hint", "at_kd", "fsp_kd", "dkpp", "cwtm", "cwtm_permut", "e2kd", "xdistill"}
    assert shipped_teacher_methods <= {name for name, info in catalog.methods.items() if info.needs_teacher}
    assert all(defaults[name] > 1.0 for name in [*shipped_teacher_methods, "dml"])
    assert defaults["e2kd"] > defaults["kd"] and defaults["xdistill"] > defaults["kd"]
    config = tiny_config(tmp_path, method_cost={"ce": 2.0})  # the config's table replaces the schema's
    stage2 = next(r for r in build_plan(config).ids("stage2") if r.endswith("seed0"))
    plan = build_plan(config)
    assert run_seconds(plan, "digits/resnet8/resnet-e3/ce/seed0") == 3 * 30 * 2.0  # default 30 s per epoch
    assert run_seconds(plan, stage2) == pytest.approx(2 * 30 * 1.1)  # le: no factor, 1.0 (x1.1 for Grad-CAM)


def write_calibration(plan, seconds: dict[str, float]) -> None:
    """As the pre-flight writes it: one file per step kind."""
    for key, value in seconds.items():
        path = calibration_paths(plan)[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": CALIBRATION_VERSION, "device": {"device": "cpu"},
                                    "kinds": {key: {"epoch_seconds": value}}}))


def test_time_limits_use_the_measured_epoch_seconds_once_there(tmp_path):
    plan = build_plan(tiny_config(tmp_path, runtime_margin=2.0, min_runtime_minutes=1))
    ce = "digits/resnet8/resnet-e3/ce/seed0"
    stage2 = next(r for r in plan.ids("stage2") if r.endswith("seed0"))
    # hand constants: 30 s per epoch (default), x1.1 for Grad-CAM; Stage 2 trains epochs 1..3 (warm-up 1)
    assert run_seconds(plan, ce) == 3 * 30 and run_seconds(plan, stage2) == pytest.approx(2 * 30 * 1.1)
    assert runtime_minutes(plan, ce) == 3  # 90 s x 2 = 3 min
    assert summary(plan)["calibration"] is None
    measured = {step_kind(plan, plan.runs[ce]).key: 400.0, step_kind(plan, plan.runs[stage2]).key: 700.0}
    write_calibration(plan, measured)
    assert runtime_minutes(plan, ce) == 40  # 3 x 400 s x 2 / 60
    assert runtime_minutes(plan, stage2) == 47  # ceil(2 x 700 x 2 / 60)
    facts = summary(plan)
    assert facts["calibration"] == str(tmp_path / "results" / "preflight" / "cpu")
    # the warm-up runs are CE steps of ResNet8 (measured); every kind of this plan is measured
    assert facts["uncalibrated_kinds"] == []
    assert facts["gpu_hours"] == pytest.approx((4 * 3 * 400 / 2 + 2 * 2 * 700 + 2 * 1 * 400) / 3600)


def test_packed_runs_get_k_times_the_limit_and_a_corrupt_calibration_is_named(tmp_path):
    config = {**tiny_config(tmp_path, runs_per_gpu=4, min_runtime_minutes=1), "device": "cuda"}
    plan = build_plan(config)
    assert runtime_minutes(plan, "digits/resnet8/resnet-e3/ce/seed0") == 4 * 3
    path = calibration_paths(plan)[step_kind(plan, plan.runs["digits/resnet8/resnet-e3/ce/seed0"]).key]
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ResultFileError, match="delete it"):
        runtime_minutes(plan, "digits/resnet8/resnet-e3/ce/seed0")


def test_a_retry_asks_more_time_and_memory_up_to_the_cap(monkeypatch):
    from introspect.cluster.resources import attempt_mem_mb, attempt_runtime

    monkeypatch.delenv("INTROSPECT_MAX_RUNTIME_MINUTES", raising=False)
    assert [attempt_runtime(100, attempt) for attempt in (1, 2, 3, 4)] == [100, 150, 200, 200]
    assert [attempt_mem_mb(1000, attempt) for attempt in (1, 2, 3, 9)] == [1000, 1500, 2000, 2000]
    assert attempt_runtime(7, 2) == 11  # 10.5 minutes, rounded up
    assert attempt_runtime(2000, 2) == 2 * 24 * 60  # 3000 minutes capped at 2 days
    monkeypatch.setenv("INTROSPECT_MAX_RUNTIME_MINUTES", "1440")  # a partition's MaxTime of one day
    assert attempt_runtime(1000, 1) == 1000 and attempt_runtime(1000, 2) == 1440
