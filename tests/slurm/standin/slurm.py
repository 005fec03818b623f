#!/usr/bin/env python3
"""Stand-in SLURM commands for the fault tests: sbatch, squeue, sacct, scontrol, scancel, sinfo and srun,
each a symlink to this file in ``bin/`` (the name it is called by picks the command). Standard library
only. They answer in the formats snakemake-executor-plugin-slurm 2.8.0 parses (its submit_string.py,
job_status_query.py and the sacct/squeue calls of its __init__.py) and run each job on this machine.

State lives in the directory ``$STANDIN_SLURM`` (created if missing):

  jobs/<id>.json        one job: its state, limits, comment, output file, process group, times
  submissions.jsonl     every sbatch call, accepted or refused: {"id", "args", "comment", "time_minutes",
                        "mem_mb", "refused"} (what the tests assert on)
  faults.json           what goes wrong, written by the test (all keys optional):
     {"submit_limit": 50,        # MaxSubmitJobs: sbatch refuses while this many jobs are pending/running,
      "other_jobs": 48,          #   counting this many jobs of the user that are not the workflow's
      "min_job_age": 300,        # seconds a finished job stays listed by squeue (scontrol's MinJobAge)
      "faults": [{"match": "rule_train_", # substring of the job's --comment (or its name)
                  "state": "PREEMPTED",   # the end state instead of running: PREEMPTED, NODE_FAIL,
                                          #   OUT_OF_MEMORY, TIMEOUT, FAILED, BOOT_FAIL
                  "count": 1,             # the first N matching submissions (default 1)
                  "after": 0.0,           # run the command this many seconds first, then kill it (SIGKILL)
                  "listed": 2.0,          # seconds squeue still lists it in that state (default min_job_age)
                  "below": {"mem_mb": 1500, "time_minutes": 15}}],  # only when a limit is below these
      "node": {"cpus": 4, "mem_mb": 12000, "time_limit": "2-00:00:00"}}  # what sinfo says of the one node
                                  # (default 64 CPUs, 256000 MB, infinite)

A job runs as ``bash`` with the caller's environment plus SLURM_JOB_ID & co., in its own process group
(scancel kills it), output in --output; --dependency=afterany:ID:... holds it. sacct keeps every job;
squeue lists an active job, and an ended one for ``listed`` / ``min_job_age`` s. ``scancel --signal=SIG
--batch ID`` signals the batch shell only, as SLURM's --signal=B: does.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ACTIVE = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED")
SHORT = {"PENDING": "PD", "RUNNING": "R", "COMPLETED": "CD", "FAILED": "F", "CANCELLED": "CA", "TIMEOUT": "TO",
         "PREEMPTED": "PR", "NODE_FAIL": "NF", "OUT_OF_MEMORY": "OOM", "BOOT_FAIL": "BF"}
EXIT_CODES = {"OUT_OF_MEMORY": "0:125", "TIMEOUT": "0:15", "PREEMPTED": "0:15", "NODE_FAIL": "0:0",
              "BOOT_FAIL": "0:0", "FAILED": "1:0"}
SUBMIT_LIMIT = ("sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: "
                "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)")
WITH_VALUE = {"-p", "--partition", "-A", "--account", "-t", "--time", "--mem", "--mem-per-cpu", "-o", "--output",
              "-e", "--error", "-J", "--job-name", "--comment", "-D", "--chdir", "-c", "--cpus-per-task", "-C",
              "--constraint", "--qos", "-n", "--ntasks", "-N", "--nodes", "--gres", "--gpus", "-G", "--signal",
              "-x", "--exclude", "-d", "--dependency", "--export", "-w", "--nodelist", "--wrap", "-q",
              "--ntasks-per-gpu", "--cpus-per-gpu", "--reservation", "--clusters", "-M", "--begin"}
LONG = {"-p": "--partition", "-A": "--account", "-t": "--time", "-o": "--output", "-e": "--error",
        "-J": "--job-name", "-D": "--chdir", "-c": "--cpus-per-task", "-C": "--constraint", "-n": "--ntasks",
        "-N": "--nodes", "-G": "--gpus", "-x": "--exclude", "-d": "--dependency", "-w": "--nodelist", "-q": "--qos",
        "-M": "--clusters"}
SQUEUE = ({"-o", "--format", "-j", "--jobs", "-t", "--states", "-n", "--name", "-u", "--user", "-p", "--partition",
           "-M", "--clusters"},
          {"-o": "--format", "-j": "--jobs", "-t": "--states", "-n": "--name", "-h": "--noheader", "-u": "--user"})
SACCT = ({"-o", "--format", "-j", "--jobs", "--name", "-S", "--starttime", "-E", "--endtime", "-u", "--user",
          "-M", "--clusters", "-s", "--state"},
         {"-o": "--format", "-j": "--jobs", "-n": "--noheader", "-P": "--parsable2", "-X": "--allocations"})
SCANCEL = ({"-s", "--signal", "-M", "--clusters", "-n", "--name"}, {"-s": "--signal", "-b": "--batch"})


def state_dir() -> Path:
    path = Path(os.environ.get("STANDIN_SLURM") or sys.exit("stand-in SLURM: set STANDIN_SLURM to a directory"))
    (path / "jobs").mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def locked():
    with open(state_dir() / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def settings() -> dict:
    return json.loads((state_dir() / "faults.json").read_text()) if (state_dir() / "faults.json").exists() else {}


def read_job(job_id: str) -> dict | None:
    try:
        return json.loads((state_dir() / "jobs" / f"{job_id}.json").read_text())
    except (OSError, ValueError):
        return None


def write_job(job: dict) -> None:
    path = state_dir() / "jobs" / f"{job['id']}.json"
    path.with_suffix(".tmp").write_text(json.dumps(job))
    os.replace(path.with_suffix(".tmp"), path)


def update_job(job_id: str, **changes) -> dict:
    with locked():
        job = read_job(job_id)
        job.update(changes)
        write_job(job)
    return job


def all_jobs() -> list[dict]:
    jobs = [read_job(p.stem) for p in (state_dir() / "jobs").glob("*.json")]
    return sorted(filter(None, jobs), key=lambda j: int(j["id"]))


def listed(job: dict, now: float) -> bool:
    """squeue shows a job while it is pending or running, and for a while after it ended."""
    return job["state"] in ACTIVE or now < job.get("ended", 0) + job.get("listed", 300)


def minutes(text: str | None) -> int | None:
    """SLURM's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S -> minutes."""
    if not text:
        return None
    days, _, rest = text.rpartition("-") if "-" in text else ("0", "", text)
    parts = [int(p) for p in rest.split(":")]
    if days != "0" or "-" in text:
        h, m, s = (parts + [0, 0])[:3]
        return int(days) * 1440 + h * 60 + m + (s > 0)
    if len(parts) == 3:
        return parts[0] * 60 + parts[1] + (parts[2] > 0)
    return parts[0] + (len(parts) == 2 and parts[1] > 0)


def parse_options(args: list[str], with_value: set[str] = WITH_VALUE, aliases: dict[str, str] = LONG,
                  stop: bool = True) -> tuple[dict, list[str]]:
    """Options (by their long names) and the positional words. ``stop``: the first positional word ends the
    options (sbatch: the script and its arguments follow); otherwise options and words may mix."""
    options: dict = {}
    words: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        if not word.startswith("-") or word == "-":
            if stop:
                return options, words + args[i:]
            words.append(word)
            i += 1
            continue
        name, eq, value = word.partition("=")
        if not eq and name in with_value:
            i += 1
            value = args[i]
        elif not eq and re.fullmatch(r"-[a-zA-Z]\S+", word) and word[:2] in with_value:  # -n1, -t10
            name, value = word[:2], word[2:]
        elif not eq:
            value = True
        options[aliases.get(name, name)] = value
        i += 1
    return options, words


def directives(script: str) -> list[str]:
    words = []
    for line in script.splitlines():
        if line.startswith("#SBATCH"):
            words += line.split()[1:]
        elif line.strip() and not line.startswith("#"):
            break
    return words


def mem_mb(text) -> int | None:
    if not text or text is True:
        return None
    match = re.fullmatch(r"(\d+)([KMGT]?)B?", str(text).upper())
    return int(match.group(1)) * {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 ** 2}[match.group(2)]


def sbatch(args: list[str]) -> int:
    options, rest = parse_options(args)
    if "--wrap" in options:
        script = "#!/bin/sh\n" + options["--wrap"] + "\n"
    else:
        script = sys.stdin.read() if not rest or rest[0] in ("-", "/dev/stdin") else Path(rest[0]).read_text()
        options = {**parse_options(directives(script))[0], **options}
    script_args = rest[1:]
    config = settings()
    comment = str(options.get("--comment", ""))
    name = str(options.get("--job-name", "sbatch" if "--wrap" in options else Path(rest[0]).name))
    record = {"args": args, "comment": comment, "name": name, "time_minutes": minutes(options.get("--time")),
              "mem_mb": mem_mb(options.get("--mem")), "partition": options.get("--partition")}
    with locked():
        jobs = all_jobs()
        active = sum(j["state"] in ACTIVE for j in jobs) + int(config.get("other_jobs", 0))
        limit = config.get("submit_limit")
        refused = limit is not None and active >= int(limit)
        job_id = None if refused else str(max([int(j["id"]) for j in jobs] + [int(config.get("first_id", 1000))]) + 1)
        with open(state_dir() / "submissions.jsonl", "a") as log:
            log.write(json.dumps({**record, "id": job_id, "refused": refused}) + "\n")
        if refused:
            print(SUBMIT_LIMIT, file=sys.stderr)
            return 1
        fault = pick_fault(config, record)
        output = str(options.get("--output", f"slurm-{job_id}.out")).replace("%j", job_id)
        workdir = str(options.get("--chdir", os.getcwd()))
        job = {**record, "id": job_id, "state": "PENDING", "submitted": time.time(), "output": output,
               "workdir": workdir, "cpus": int(options.get("--cpus-per-task", 1)), "fault": fault,
               "requeue": "--requeue" in options, "listed": float(config.get("min_job_age", 300)),
               "after": str(options.get("--dependency", "")).partition(":")[2].split(":")}
        write_job(job)
    (state_dir() / "jobs" / f"{job_id}.sh").write_text(script)
    (state_dir() / "jobs" / f"{job_id}.args").write_text(json.dumps(script_args))
    subprocess.Popen([sys.executable, os.path.realpath(__file__), "_run", job_id], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     cwd=workdir, env={**os.environ, "STANDIN_SLURM": str(state_dir())})
    print(job_id if "--parsable" in options else f"Submitted batch job {job_id}")
    return 0


def pick_fault(config: dict, record: dict) -> dict | None:
    """The first fault that matches this submission and has uses left (counted in the state dir)."""
    for index, fault in enumerate(config.get("faults", [])):
        if fault["match"] not in record["comment"] and fault["match"] not in record["name"]:
            continue
        below = fault.get("below", {})
        if any(record.get(key) is not None and record[key] >= limit for key, limit in below.items()):
            continue
        counter = state_dir() / f"fault{index}.used"
        used = int(counter.read_text()) if counter.exists() else 0
        if used < int(fault.get("count", 1)):
            counter.write_text(str(used + 1))
            return fault
    return None


def run(job_id: str) -> None:
    """The job's life: PENDING until its dependencies (afterany) ended, RUNNING the batch script (or its
    fault), then its end state."""
    while any((read_job(other) or {}).get("state") in ACTIVE for other in read_job(job_id).get("after", []) if other):
        time.sleep(0.2)
    job = update_job(job_id, state="RUNNING", started=time.time(), pid=os.getpid())
    fault = job.get("fault")
    env = {**os.environ, "SLURM_JOB_ID": job_id, "SLURM_JOBID": job_id, "SLURM_JOB_NAME": job["name"],
           "SLURM_SUBMIT_DIR": job["workdir"], "SLURM_CPUS_PER_TASK": str(job["cpus"]),
           "SLURM_JOB_PARTITION": str(job.get("partition") or "debug"), "SLURMD_NODENAME": "standin"}
    env.pop("STANDIN_SLURM_BATCH", None)
    script = state_dir() / "jobs" / f"{job_id}.sh"
    args = json.loads((state_dir() / "jobs" / f"{job_id}.args").read_text())
    end, code = "COMPLETED", "0:0"
    if fault and not fault.get("after"):
        time.sleep(0.2)
        end, code = fault["state"], EXIT_CODES.get(fault["state"], "1:0")
    else:
        Path(job["output"]).parent.mkdir(parents=True, exist_ok=True)
        with open(job["output"], "a") as out:
            process = subprocess.Popen(["bash", str(script), *args], stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=job["workdir"], env=env, start_new_session=True)
            update_job(job_id, batch_pid=process.pid)
            try:
                status = process.wait(timeout=fault["after"] if fault else None)
                end, code = ("COMPLETED", "0:0") if status == 0 else ("FAILED", f"{max(status, 1)}:0")
                if status < 0:
                    end, code = "CANCELLED", f"0:{-status}"
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                end, code = fault["state"], EXIT_CODES.get(fault["state"], "1:0")
    with locked():
        job = read_job(job_id)
        if job["state"] == "RUNNING":  # not cancelled meanwhile
            listed_for = fault.get("listed", job["listed"]) if fault and end == fault["state"] else job["listed"]
            job.update(state=end, exit_code=code, ended=time.time(), listed=float(listed_for))
            write_job(job)


def scancel(args: list[str]) -> int:
    options, ids = parse_options(args, *SCANCEL, stop=False)
    sig = options.get("--signal")
    for job_id in ids:
        job = read_job(job_id)
        if job is None or job["state"] not in ACTIVE:
            continue
        if sig:  # --signal=USR1 [--batch]: the batch shell only (its children with --full)
            number = getattr(signal, "SIG" + str(sig).removeprefix("SIG"))
            if job.get("batch_pid"):
                os.kill(job["batch_pid"], number)
            continue
        job = update_job(job_id, state="CANCELLED", exit_code="0:15", ended=time.time())
        for pid in (job.get("batch_pid"), job.get("pid")):
            try:
                os.killpg(pid, signal.SIGTERM) if pid else None
            except ProcessLookupError:
                pass
    return 0


def squeue(args: list[str]) -> int:
    options, _ = parse_options(args, *SQUEUE, stop=False)
    fmt = str(options.get("--format") or "%i %T")
    now = time.time()
    jobs = [j for j in all_jobs() if listed(j, now)]
    ids = str(options.get("--jobs") or "")
    if ids:
        wanted = set(ids.split(","))
        jobs = [j for j in jobs if j["id"] in wanted]
        if not jobs and len(wanted) == 1:
            print("slurm_load_jobs error: Invalid job id specified", file=sys.stderr)
            return 1
    states = str(options.get("--states") or "")
    if states.lower() != "all" and not ids:
        allowed = set(states.upper().split(",")) if states else set(ACTIVE)
        jobs = [j for j in jobs if j["state"] in allowed or SHORT.get(j["state"]) in allowed]
    if options.get("--name"):
        names = set(str(options["--name"]).split(","))
        jobs = [j for j in jobs if j["name"] in names]
    if not options.get("--noheader"):
        print(re.sub(r"%(\w)", lambda m: {"i": "JOBID", "T": "STATE"}.get(m.group(1), m.group(1).upper()), fmt))
    for job in jobs:
        print(re.sub(r"%\.?\d*(\w)", lambda m, job=job: field(job, m.group(1)), fmt))
    return 0


def field(job: dict, code: str) -> str:
    """One squeue format code (%i, %T, %t, %k, %j, %P) of a job."""
    if code == "t":
        return SHORT.get(job["state"], job["state"])
    codes = {"i": "id", "A": "id", "T": "state", "k": "comment", "j": "name", "P": "partition", "Z": "workdir"}
    return str(job.get(codes.get(code, ""), ""))


def sacct(args: list[str]) -> int:
    if any("account" in a.lower() for a in args):
        return 0  # the plugin's account guess (`sacct -nu USER -o Account%256 | tail -1`): no account
    options, _ = parse_options(args, *SACCT, stop=False)
    fields = str(options.get("--format") or "JobID,State").split(",")
    jobs = all_jobs()
    if options.get("--jobs"):
        wanted = str(options["--jobs"]).split(",")
        if any("." in w for w in wanted):  # a job step (the plugin's Reason query): none recorded
            return 0
        jobs = [j for j in jobs if j["id"] in wanted]
    if options.get("--name"):
        jobs = [j for j in jobs if j["name"] in str(options["--name"]).split(",")]
    values = {"jobid": "id", "jobidraw": "id", "state": "state", "jobname": "name", "comment": "comment",
              "exitcode": "exit_code", "partition": "partition"}
    parsable = options.get("--parsable2") or options.get("--parsable")
    rows = []
    for job in jobs:
        row = []
        for field in fields:
            key = field.split("%")[0].lower()
            value = "standin" if key == "nodelist" else str(job.get(values.get(key, ""), "") or "")
            if key == "state" and value == "CANCELLED":
                value = f"CANCELLED by {os.getuid()}"
            row.append(value)
        rows.append(row)
    if not options.get("--noheader"):
        rows.insert(0, [f.split("%")[0] for f in fields])
    for row in rows:
        print("|".join(row) if parsable else " ".join(f"{v:>12}" for v in row))
    return 0


def scontrol(args: list[str]) -> int:
    if args[:2] == ["show", "config"]:
        print(f"MinJobAge               = {int(settings().get('min_job_age', 300))} sec")
        print("MaxArraySize            = 1001")
        return 0
    if args[:2] == ["show", "job"] and len(args) > 2:
        job = read_job(args[2])
        if job is None or not listed(job, time.time()):
            print("slurm_load_jobs error: Invalid job id specified", file=sys.stderr)
            return 1
        print(f"JobId={job['id']} JobName={job['name']} JobState={job['state']} TimeLimit={job['time_minutes']} "
              f"StdOut={job['output']}")
        return 0
    print(f"scontrol (stand-in): {' '.join(args)} is not supported", file=sys.stderr)
    return 1


def sinfo(args: list[str]) -> int:
    """The partitions, or with --format=%c %m [%l] the node's CPUs, memory (MB) [and time limit], from faults.json's
    "node"."""
    if any("%c %m" in arg for arg in args):
        node = settings().get("node", {})
        limit = f" {node.get('time_limit', 'infinite')}" if "%l" in " ".join(args) else ""
        return print(f"{node.get('cpus', 64)} {node.get('mem_mb', 256000)}{limit}") or 0
    return print("PARTITION\ndebug*\ngpu") or 0


def srun(args: list[str]) -> int:
    """Inside a job: run the command after srun's own options (the job step plugin's `srun -n1 ... cmd`)."""
    words = list(args)
    while words and words[0].startswith("-"):
        words.pop(0)
    os.execvp(words[0], words)


def main() -> int:
    command = Path(sys.argv[0]).name
    if command == "slurm.py" and sys.argv[1:2] == ["_run"]:
        run(sys.argv[2])
        return 0
    handlers = {"sbatch": sbatch, "squeue": squeue, "sacct": sacct, "scontrol": scontrol, "scancel": scancel,
                "sinfo": sinfo, "srun": srun}
    return handlers[command](sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
