from introspect.analysis.sanity import (
    SanityCell,
    Thresholds,
    cell_marks,
    sanity_flags,
)

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
    assert codes(flags, "KD") == ["teacher_not_better"] and "89.70%" in flags[0].text
    assert codes(flags, "KD2") == [] and codes(flags, "KD3") == ["teacher_not_better"]  # equal is not better
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
    # OneBad's mean 88.6 is fine, its seed 2 (79.0 < 90.2 - 10) is not; Dip's seed 2 (81.0) is within 10 pp
    assert codes(flags, "OneBad") == ["collapsed"] and "seed 2 more than" in flags[-1].text
    assert codes(flags, "Dip") == []
    assert codes(sanity_flags(cells, thresholds=Thresholds(collapse_drop_pp=8.0)), "Dip") == ["collapsed"]


def test_a_collapsed_ce_seed_does_not_move_the_reference():
    ce = cell("CE", [90.0, 90.5, 10.0, 90.4, 89.9])  # mean 74.2, median 90.0
    flags = sanity_flags([ce, cell("LS", [79.5] * 5)], n_classes=10)
    assert codes(flags, "LS") == ["collapsed"]  # 79.5 is more than 10 pp below 90.0, not below 74.2
    assert codes(flags, "CE") == ["collapsed"] and "seed 2 within 5 pp of chance" in flags[0].text


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


def test_cell_marks_list_each_cells_flag_codes_once():
    cells = [cell("CE", {0: 90.0, 1: 90.5, 3: 90.1}), cell("LE", [91.0] * 5), cell("KD", [89.0] * 5, teacher="t")]
    flags = sanity_flags(cells, teachers={"t": [89.0]})
    assert cell_marks(flags) == {("ResNet14", "CE"): "⚑low_n,missing_seeds", ("ResNet14", "KD"): "⚑teacher_not_better"}
