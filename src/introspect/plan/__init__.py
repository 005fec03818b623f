"""From a validated config to the run graph: every training run a config's tables, figures and analyses
need (:mod:`.build`, as :class:`~introspect.runs.record.RunRecord` objects), the views over them
(:mod:`.views`: tables, figures, selections, analyses, claims), the checks on the planned outputs
(:mod:`.outputs`) and the JSON files through which each job receives its record or spec
(:mod:`.job_files`). Pure functions of the config: no torch, no training.
"""
