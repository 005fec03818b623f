"""Where jobs run: the pre-flight job and its measured step costs (:mod:`.preflight`, :mod:`.calibration`),
what each job asks SLURM for (:mod:`.resources`), the head's reading of SLURM states and its failure report
(:mod:`.slurm_status`, :mod:`.failures`), and the warm local worker that forks jobs from one process that
imported torch once (:mod:`.worker`).
"""
