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
    claims = tmp_path / "claims.md"
    claims.write_text("# Claims\n\n| Verdict | Claims |\n|---|---|\n| total | 1 |\n\n## Open claims\n\nx\n")
    text = run_summary(LOG, ["r/smoke/tables/t.md", "r/smoke/tables/t.csv", "r/smoke/claims.md"], claims)
    assert "Built in this call: 3 job(s), 1 of them training runs (job_files 1, train 1, table 1)." in text
    assert "  r/smoke/tables/t.md\n  r/smoke/tables/t.csv" in text and "record.1.json" not in text
    assert "Requested but not rebuilt (already up to date): 1 file(s)\n  r/smoke/claims.md" in text
    assert "Claims (" not in text  # claims.md exists, but this call did not write it


def test_a_call_that_built_nothing_says_so_and_prints_no_claims(tmp_path):
    claims = tmp_path / "claims.md"
    claims.write_text("# Claims\n\n| total | 1 |\n")
    text = run_summary("Building DAG of jobs...\nNothing to be done.\n", ["a", "b"], claims)
    assert text.strip() == ("Nothing was built in this call: every requested file was already up to date "
                            "(2 file(s)). Nothing was trained.")


def test_the_claims_summary_follows_when_this_call_wrote_claims_md(tmp_path):
    claims = tmp_path / "claims.md"
    claims.write_text("# Claims\n\n| Verdict | Claims |\n| total | 1 |\n\n## Sanity flags under claims\n\n- low_n\n")
    log = f"localrule claims:\n    output: {claims}\n    jobid: 4\nFinished jobid: 4 (Rule: claims)\n"
    text = run_summary(log, [str(claims)], claims)
    assert f"Claims ({claims}):\n| Verdict | Claims |\n| total | 1 |\n\nSanity flags under claims:\n- low_n" in text
