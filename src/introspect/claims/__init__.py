"""The paper's claims: the shared catalogue of its sentences (:mod:`.catalogue`, ``catalogues/*.yaml``), the engine
that turns two cells' per-seed accuracies into an effect, corrected interval, Holm p, power and a verdict
(:mod:`.engine`), majority claims from their members (:mod:`.majority`), the chance a rerun repeats each verdict
(:mod:`.repeat`, its resamples judged as arrays in :mod:`.resampled`), cost claims from measured wall times
(:mod:`.measured`), class-similarity claims from a figure's data (:mod:`.similarity`), the report that feeds them
from a plan's runs (:mod:`.report`), the rendering of ``claims.{md,csv,html}`` (:mod:`.render`) and the GPU-hours of
one more seed (:mod:`.costs`).
"""
