"""Where jobs run: the pre-flight job and its measured step costs (:mod:`.preflight`, :mod:`.calibration`),
what each job asks SLURM for (:mod:`.resources`), the head's reading of SLURM states and its failure report
(:mod:`.slurm_status`, :mod:`.failures`), and the warm local worker that forks jobs from one process that
imported torch once (:mod:`.worker`); the run's terminal output (:mod:`.terminal`), its log read once
(:mod:`.snakemake_log`) and its end (:mod:`.run_summary`).
"""

# Set by the workflow when its terminal shows one line per job (:mod:`.terminal`): a training job then writes
# its epoch lines to its log only (introspect.train.progress), not to its standard output, the terminal.
EPOCH_LINES_ENV = "INTROSPECT_EPOCH_LINES"
