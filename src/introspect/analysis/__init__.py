"""Reading finished runs into views: a view's cells with their sanity flags (:mod:`.cells`, :mod:`.sanity`),
significance tests (:mod:`.stats`), tables (:mod:`.tables`), the hyper-parameter selection
(:mod:`.selection`), Figures 1-3 (:mod:`.figures`), the student analysis (:mod:`.students`), the paper's
reported numbers (:mod:`.reported`) and text escaped for every output format (:mod:`.escape`). It reads
runs through :mod:`introspect.runs` and never imports the trainer.
"""
