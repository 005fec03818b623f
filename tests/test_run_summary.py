"""The end-of-run summary reads what this call built from Snakemake's log, never from the files present."""
from introspect.cluster.run_summary import built_jobs, run_summary

LOG = """Building DAG of jobs...
[Sun Dec  6 17:14:01 2026]
localcheckpoint job_files:
    output: r/runs/a/record.1.json, r/runs/b/record.2.json
    jobid: 2
    reason: Missing output files: r/runs/b/record.2.json
    resources: tmpdir=/tmp
[Sun Dec  6 17:14:02 2026]
Finished jobid: 2 (Rule: job_files)
1 of 5 steps (20%) done
[Sun Dec  6 17:14:03 2026]
localrule train:
    input: r/runs/b/record.2.json
    output: r/runs/b/metrics.json, r/runs/b/epochs.csv, r/runs/b/model.pt
    log: r/runs/b/train.log
    jobid: 7
    wildcards: run=b
[Sun Dec  6 17:14:03 2026]
localrule train:
    output: r/runs/c/metrics.json, r/runs/c/epochs.csv, r/runs/c/model.pt
    jobid: 8
    wildcards: run=c
[Sun Dec  6 17:14:09 2026]
Finished jobid: 7 (Rule: train)
[Sun Dec  6 17:14:10 2026]
localrule table:
    output: r/smoke/tables/t.md, r/smoke/tables/t.csv
    jobid: 3
Finished jobid: 3 (Rule: table)
"""


def test_only_jobs_the_log_says_finished_are_built():
    jobs = built_jobs(LOG)
    assert [(j.rule, j.jobid, j.wildcards) for j in jobs] == [("job_files", "2", ""), ("train", "7", "run=b"),
                                                              ("table", "3", "")]
    assert jobs[1].outputs == ["r/runs/b/metrics.json", "r/runs/b/epochs.csv", "r/runs/b/model.pt"]


def test_the_summary_counts_runs_lists_views_and_names_what_was_up_to_date(tmp_path):
    claims = tmp_path / "claims.csv"
    claims.write_text("name,verdict\nt1,replicated\n")
    text = run_summary(LOG, ["r/smoke/tables/t.md", "r/smoke/tables/t.csv", str(claims)], claims)
    assert "Built in this call: 3 job(s), 1 of them training runs (job_files 1, train 1, table 1)." in text
    assert "Outputs written:\n  r/smoke/tables/t.{md,csv}\n" in text and "record.1.json" not in text
    assert f"Not built in this call (already up to date): 1 requested output(s)\n  {claims}" in text
    assert "Claims (" not in text and "replicated" not in text  # claims.csv exists, but this call did not write it
    assert f"The claims were not tested again in this call: {claims} is an earlier call's" in text


def test_a_call_that_built_nothing_says_so_and_prints_no_claims(tmp_path):
    claims = tmp_path / "claims.csv"
    claims.write_text("name,verdict\nt1,replicated\n")
    text = run_summary("Building DAG of jobs...\nNothing to be done.\n", ["a", "b"], claims)
    assert text.strip() == ("Nothing was built in this call: every requested file was already up to date "
                            "(2 file(s)). Nothing was trained.")


CLAIMS_CSV = """name,verdict,part_of,effect,corrected_ci_low,corrected_ci_high,paper_effect,repeat_probability,mde,\
seeds_needed,flag_codes,rerun_replicated,rerun_contradicted,rerun_smaller,rerun_withheld,rerun_open
t5_le_gt_ce,contradicted,,-58.5,-61.25,-55.75,1.2,0.5,4.0,,low_n,0.0,0.5,0.0,0.0,0.5
t1_kd_gt_ce,inconclusive (underpowered),,0.5,-2.0,3.0,0.25,0.9,6.0,12,low_n undertrained,0.1,0.0,0.0,0.0,0.9
"""


def test_the_claims_verdicts_follow_in_plain_text_when_this_call_wrote_them(tmp_path):
    claims = tmp_path / "claims.csv"
    claims.write_text(CLAIMS_CSV.replace("t5_le_gt_ce", "t5_le_gt_ce\x1b[2J"))  # a name from a shared results dir
    log = (f"localrule claims:\n    output: {claims}, {tmp_path / 'claims.md'}\n    jobid: 4\n"
           "Finished jobid: 4 (Rule: claims)\n")
    text = run_summary(log, [str(claims)], claims)
    views = tmp_path / "claims"
    assert f"Claims ({claims}; each claim with its reasons: {views}.md, {views}.html):" in text
    rows = text[text.index("\nVerdict"):].splitlines()
    assert [row.split() for row in rows[1:8]] == [
        ["Verdict", "Claims", "Expected", "in", "a", "rerun"], ["replicated", "0", "0.1"],
        ["contradicted", "1", "0.5"], ["smaller", "than", "reported", "0", "0.0"],
        ["withheld", "(test-set", "resolution)", "0", "0.0"], ["open", "1", "1.4"], ["total", "2", "2.0"]]
    resolved = text[text.index("\nResolved claim"):].splitlines()[2]
    assert resolved.split() == ["t5_le_gt_ce\ufffd[2J", "-58.50", "[-61.25,", "-55.75]", "+1.20", "contradicted",
                                "0.50"]
    assert "Sanity flags under claims, by rule: low_n (2 claims), undertrained (1 claims)." in text
    assert "\\" not in text and "\x1b" not in text  # no Markdown escapes, no terminal escapes


def test_after_one_table_the_up_to_date_outputs_are_counted_with_a_few_examples():
    log = ("localrule table:\n    output: r/s/tables/t3.md, r/s/tables/t3.csv\n    jobid: 3\n"
           "Finished jobid: 3 (Rule: table)\n")
    requested = [f"r/s/tables/t{i}.{ext}" for i in range(1, 7) for ext in ("md", "csv")] + ["r/s/claims.csv"]
    text = run_summary(log, requested)
    assert "Outputs written:\n  r/s/tables/t3.{md,csv}\n" in text
    assert ("Not built in this call (already up to date): 6 requested output(s)\n  r/s/tables/t1.{md,csv}\n"
            "  r/s/tables/t2.{md,csv}\n  r/s/tables/t4.{md,csv}\n  r/s/tables/t5.{md,csv}\n  ... and 2 more") in text
