"""One training run: what it trains (:mod:`.spec`, :mod:`.record`: its id, kind, the runs it reads), where
its files are (:class:`~.record.ResultsLayout`, :class:`~.record.RunFiles`), the ``metrics.json`` it leaves
(:mod:`.metrics`) and how a finished run is read back (:mod:`.loading`). Paths are checked to stay inside
their root (:mod:`.paths`) and untrusted JSON is decoded field by field (:mod:`.typed`). The rules, the
trainer and the analysis all go through this package: none of them builds a run's path or parses its id.
"""
