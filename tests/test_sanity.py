import pytest

from introspect.analysis.cells import CellResult, baseline_of, flag_cells, flag_notes
from introspect.analysis.sanity import SanityCell, TeacherAccuracy, Thresholds, cell_marks, flags_of, sanity_flags

SEEDS = [0, 1, 2, 3, 4]


def cell(method, values, group="ResNet14", model="resnet14", expected=SEEDS, **kw):
    return SanityCell(group, model, method, dict(enumerate(values)) if isinstance(values, list) else values,
                      expected, **kw)


def codes(flags, method, group="ResNet14"):
    return [f.code for f in flags if f.method == method and f.group == group]


CE = cell("CE", [90.0, 90.5, 90.2, 90.4, 89.9])  # median 90.2


def test_a_clean_cell_has_no_flag():
    flags = sanity_flags([CE, cell("LS", [90.3, 90.4, 90.6, 90.1, 90.0], teacher="strong")],
                         teachers={"strong": [93.0]}, n_classes=10)
    assert flags == []


def test_teacher_not_better_than_the_groups_ce():
    cells = [CE, cell("KD", [89.0] * 5, teacher="weak"), cell("KD2", [91.0] * 5, teacher="strong"),
             cell("KD3", [91.0] * 5, teacher="equal")]
    flags = sanity_flags(cells, teachers={"weak": [89.5, 89.9], "strong": [93.0], "equal": [90.2]})
    # and KD's 89.0% is 1.2 pp below CE's 90.2%: a student below the baseline
    assert codes(flags, "KD") == ["teacher_not_better", "below_baseline"] and "89.70%" in flags[0].text
    assert codes(flags, "KD2") == []
    # equal is not better; and 90.2% is below its student's 91.0%
    assert codes(flags, "KD3") == ["teacher_not_better", "teacher_worse_than_student"]
    margin = sanity_flags(cells, teachers={"weak": [89.5], "strong": [93.0], "equal": [90.2]},
                          thresholds=Thresholds(teacher_margin_pp=3.0))
    assert codes(margin, "KD2") == ["teacher_not_better"]  # 93.0 - 90.2 = 2.8 <= 3


def test_collapse_of_the_mean_of_one_seed_and_near_chance():
    cells = [CE, cell("Broken", [12.0, 10.5, 11.0, 10.0, 10.2]), cell("OneBad", [91.0, 91.0, 79.0, 91.0, 91.0]),
             cell("Dip", [91.0, 91.0, 81.0, 91.0, 91.0])]
    flags = sanity_flags(cells, n_classes=10)
    assert codes(flags, "Broken") == ["collapsed"]
    broken = next(f for f in flags if f.method == "Broken").text
    assert "more than 10 pp below CE (90.20%)" in broken and "seeds 0, 1, 2, 3, 4 within 5 pp of chance" in broken
    # OneBad's mean 88.6 is fine, its seed 2 (79.0 < 90.2 - 10) is not; Dip's seed 2 (81.0) is within 10 pp of
    # CE but 10 pp below its own cell's other seeds: an outlier, whatever the collapse rule says
    assert codes(flags, "OneBad") == ["collapsed", "outlier_seed"]
    assert "seed 2 more than" in next(f.text for f in flags if f.method == "OneBad")
    assert codes(flags, "Dip") == ["outlier_seed"]
    assert codes(sanity_flags(cells, thresholds=Thresholds(collapse_drop_pp=8.0)), "Dip") == ["collapsed",
                                                                                               "outlier_seed"]


def test_a_collapsed_ce_seed_does_not_move_the_reference():
    ce = cell("CE", [90.0, 90.5, 10.0, 90.4, 89.9])  # mean 74.2, median 90.0
    flags = sanity_flags([ce, cell("LS", [79.5] * 5)], n_classes=10)
    assert codes(flags, "LS") == ["collapsed"]  # 79.5 is more than 10 pp below 90.0, not below 74.2
    assert codes(flags, "CE") == ["collapsed", "outlier_seed"] and "seed 2 within 5 pp of chance" in flags[0].text


def test_ceiling_by_counting_test_images():
    n_test = 360  # one image is 100/360 = 0.278 pp
    acc = [100 * (n_test - e) / n_test for e in (1, 2, 1, 0, 3)]  # 7 errors over 5 seeds: 1.4 images
    far = [100 * (n_test - e) / n_test for e in (10, 12, 9, 11, 10)]
    flags = sanity_flags([cell("CE", far, n_test=n_test), cell("LE", acc, n_test=n_test)])
    assert codes(flags, "LE") == ["ceiling"] and "1.4 of 360" in flags[0].text and codes(flags, "CE") == []
    # with a stricter threshold the mean (0.67 images) passes, but every seed is within one image of 100%
    near = [100 * (n_test - e) / n_test for e in (1, 1, 0, 1, 0)]
    strict = sanity_flags([cell("LE", near, n_test=n_test)], thresholds=Thresholds(ceiling_error_images=0.5))
    assert codes(strict, "LE") == ["ceiling"] and "within one test image" in strict[0].text
    assert sanity_flags([cell("LE", near)]) == []  # no test-set size: not checked


def test_low_n_and_missing_seeds():
    flags = sanity_flags([cell("CE", {0: 90.0, 1: 90.5, 3: 90.1})])
    assert codes(flags, "CE") == ["low_n", "missing_seeds"]
    assert "n = 3 seeds, fewer than the paper's 5" in flags[0].text and flags[1].text == "no result for seeds 2, 4"
    empty = sanity_flags([cell("CE", {}, expected=[0])], thresholds=Thresholds(min_seeds=1))
    assert [f.text for f in empty] == ["n = 0 seeds, fewer than the paper's 1", "no result for seed 0"]


def test_groups_are_separate():
    other_ce = cell("CE", [70.0] * 5, group="ResNet8", model="resnet8")
    flags = sanity_flags([CE, other_ce, cell("LS", [75.0] * 5, group="ResNet8", model="resnet8")])
    assert flags == []  # 75 is far below ResNet14's CE but not ResNet8's


def test_marks_and_the_flags_a_comparison_rests_on():
    cells = [cell("CE", {0: 90.0, 1: 90.5, 3: 90.1}), cell("LE", [91.0] * 5), cell("KD", [89.0] * 5, teacher="t")]
    flags = sanity_flags(cells, teachers={"t": [89.0]})
    assert cell_marks(flags) == {("ResNet14", "CE"): "⚑low_n,missing_seeds",
                                 ("ResNet14", "KD"): "⚑teacher_not_better,below_baseline"}
    assert [f.code for f in flags_of(flags, "resnet14", "LE", "CE")] == ["low_n", "missing_seeds"]
    assert [f.code for f in flags_of(flags, "resnet14", "LE", "KD")] == ["teacher_not_better", "below_baseline"]
    assert flags_of(flags, "resnet8", "LE", "CE") == []
    assert flags[0].rule == "fewer seeds than the paper's"


def test_a_teacher_or_assistant_worse_than_its_student():
    """The issue's case: a ResNet26 teacher (96.10%) below its KD-trained assistants (96.38%, 97.21%)."""
    cells = [CE, cell("KD", [91.0] * 5, teacher="weak"), cell("TAKD", [91.0] * 5, teacher="assistant"),
             cell("Fine", [91.0] * 5, teacher="strong")]
    flags = sanity_flags(cells, teachers={"weak": [90.5],
                                          "assistant": TeacherAccuracy([96.38, 97.21], own_teacher=[96.10]),
                                          "strong": TeacherAccuracy([93.0], own_teacher=[94.0])})
    assert codes(flags, "KD") == ["teacher_worse_than_student"] and "below its student KD (91.00%)" in flags[0].text
    takd = [f for f in flags if f.method == "TAKD"]
    assert [f.code for f in takd] == ["teacher_worse_than_student"]
    assert "teacher assistant (96.79%) was distilled from a teacher of its own that is worse (96.10%)" in takd[0].text
    assert codes(flags, "Fine") == []


def test_outlier_seed_needs_a_drop_beyond_the_others_spread():
    noisy = cell("Noisy", [91.0, 86.0, 88.0, 90.0, 84.5])  # 84.5 is 4.5 below the others' median, sd 2.2
    flags = sanity_flags([CE, noisy, cell("Tight", [91.0, 91.1, 90.9, 91.0, 87.5])])
    assert codes(flags, "Noisy") == []
    assert codes(flags, "Tight") == ["outlier_seed"] and "seed 4 (87.50%) is 3.50 pp below" in flags[0].text
    assert sanity_flags([cell("Two", {0: 91.0, 1: 70.0}, expected=[0, 1])], thresholds=Thresholds(min_seeds=2)) == []


def test_paired_differences_within_one_test_image_are_flagged_with_both_cells():
    n_test = 360
    image = 100 / n_test
    base = [90.0, 90.5, 90.2, 90.4, 89.9]
    cells = [cell("CE", base, n_test=n_test), cell("LE", [v + image for v in base], n_test=n_test),
             cell("LE2", [v - image if i % 2 else v for i, v in enumerate(base)], n_test=n_test),
             cell("Far", [v + 2 * image for v in base], n_test=n_test)]
    flags = [f for f in sanity_flags(cells) if f.code == "resolution"]
    assert {(f.method, f.other) for f in flags} == {("CE", "LE"), ("CE", "LE2"), ("LE", "Far")}
    assert "at most one of 360 test images on each of 5 seeds" in flags[0].text
    assert flags_of(flags, "resnet14", "LE", "CE") and not flags_of(flags, "resnet14", "Far", "CE")
    assert cell_marks(flags)[("ResNet14", "Far")] == "⚑resolution"


def test_dead_explanations_above_the_threshold():
    le = cell("LE", [91.0] * 5, dead_share={0: 0.01, 1: 0.11, 2: 0.05})
    flags = sanity_flags([CE, le])
    assert codes(flags, "LE") == ["dead_explanations"] and "1: 11.0%" in flags[0].text and "0:" not in flags[0].text
    assert sanity_flags([CE, le], thresholds=Thresholds(dead_share=0.2)) == []


def test_near_chance_is_checked_with_the_cells_own_class_count():
    flags = sanity_flags([CE, cell("LS", [12.0] * 5, n_classes=10)])
    assert "within 5 pp of chance (10.0%)" in next(f.text for f in flags if f.method == "LS")


def result(method, values, group="ResNet14", teacher=()):
    return CellResult(group, method, "resnet14", "cifar10", dict(enumerate(values)), [], list(range(5)),
                      accuracy=dict(enumerate(values)), teacher_accuracy=list(teacher))


@pytest.mark.parametrize("label", ["CE", "Cross-entropy"])
def test_a_baseline_named_otherwise_still_gets_its_teacher_and_collapse_flags(label):
    class View:
        baseline = label

    cells = [result(label, [90.0, 90.5, 90.2, 90.4, 89.9]), result("KD", [91.0] * 4 + [75.0], teacher=[89.0])]
    flags = flag_cells(cells, baseline=baseline_of(View()))
    kd = {f.code for f in cells[1].flag_list}
    assert {"teacher_not_better", "collapsed"} <= kd and f"than {label} on ResNet14" in flags[0].text
    assert cells[1].flags.startswith("⚑teacher_not_better") and any("⚑collapsed" in n for n in flag_notes(cells))
    assert baseline_of(object()) == "CE"


def test_a_student_below_the_baseline_but_not_collapsed():
    """The issue's case: Table 5's ResNet14 students 1-3.8 pp below CE. Only students (a teacher), only beyond
    below_baseline_pp, and not where the collapse rule (over 10 pp) already speaks."""
    cells = [CE, cell("KD", [87.0, 86.5, 87.2, 86.9, 86.4], teacher="t"), cell("AT", [90.0] * 5, teacher="t"),
             cell("LS", [87.0] * 5), cell("Hint", [70.0] * 5, teacher="t")]
    flags = sanity_flags(cells, teachers={"t": [93.0]})
    kd = [f for f in flags if f.method == "KD" and f.code == "below_baseline"]
    assert len(kd) == 1 and "student KD (86.80%) is 3.40 pp below CE on ResNet14 (90.20%)" == kd[0].text
    assert codes(flags, "AT") == []  # 0.2 pp below: within the threshold
    assert codes(flags, "LS") == []  # no teacher: not a student
    assert codes(flags, "Hint") == ["collapsed"]


def test_a_model_worse_than_its_own_teacher_of_the_same_size():
    """The issue's case: BAN on ResNet8 2.6 pp below its same-size (CE-trained) teacher."""
    ban = cell("BAN", [87.5, 87.3, 87.6, 87.2, 87.4], own_teacher=[90.0, 89.9, 90.1])
    fine = cell("BAN2", [90.0] * 5, own_teacher=[90.3])
    flags = sanity_flags([CE, ban, fine])
    found = [f for f in flags if f.code == "worse_than_own_teacher"]
    assert [f.method for f in found] == ["BAN"]
    assert found[0].text == "BAN (87.40%) is 2.60 pp below its own teacher of the same architecture (90.00%)"
    assert "below_baseline" in codes(flags, "BAN")  # a peer is a teacher: BAN is a student


def test_undertrained_and_final_epoch_drop():
    """The issue's cases: runs ending at 86-96% train accuracy; a KD seed +14.8 pp in its last epoch (still
    learning); DKPP seed 1 falling from 95.5% to 84.1% in its last epoch."""
    kd = cell("KD", [90.0] * 5, train_acc={0: 99.5, 1: 96.0, 2: 99.9}, last_epoch_change={0: 14.8, 1: 0.3})
    dkpp = cell("DKPP", [90.0] * 5, train_acc={0: 99.0}, last_epoch_change={1: 84.1 - 95.5, 2: -4.0})
    flags = sanity_flags([CE, kd, dkpp])
    under = next(f for f in flags if f.method == "KD")
    assert under.code == "undertrained" and "seed 1: 96.0%" in under.text and "seed 0: +14.8 pp" in under.text
    assert "seed 0: 99.5" not in under.text
    drop = [f for f in flags if f.method == "DKPP"]
    assert [f.code for f in drop] == ["final_epoch_drop"] and "seed 1: -11.4 pp" in drop[0].text
    assert "seed 2" not in drop[0].text  # -4 pp is within the 5 pp threshold
    assert sanity_flags([CE, cell("ok", [90.0] * 5, train_acc={0: 99.9}, last_epoch_change={0: 0.1})]) == []
