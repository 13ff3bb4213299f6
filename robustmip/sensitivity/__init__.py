"""Output sensitivity: boxes around the reachable outputs, their volumes, and the exact box by MILP.

``box`` (:func:`output_box`, :func:`reachable_box`: interval, kw, crown, lp and exact), ``exact``
(the exact box on one persistent MILP per input box), ``result`` (:class:`OutputBox`, volumes) and
``measure`` (per-feature eps, sensitivity rows and their aggregates).
"""

from robustmip.sensitivity.box import METHODS, RELAXATIONS, output_box, reachable_box
from robustmip.sensitivity.exact import ExactOptions, exact_box
from robustmip.sensitivity.result import OutputBox, log10_volume

__all__ = ["METHODS", "RELAXATIONS", "ExactOptions", "OutputBox", "exact_box", "log10_volume", "output_box",
           "reachable_box"]
