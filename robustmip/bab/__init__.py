"""Branch-and-bound over ReLU splits: complete decisions and optima where one monolithic MILP stalls.

``question`` (what is minimised: ``G = min_i max_j (A_ij y - c_ij)``), ``options`` (:class:`BabOptions`),
``root`` (the root's certified bounds), ``domains`` (batched domain tensors, the frontier), ``bound``
(beta-CROWN in float32, certified in float64), ``branching`` (BaBSR, KFSB), ``handoff`` (domains
solved by the MILP), ``search`` (the loop: :func:`branch_and_bound`).
"""

from robustmip.bab.options import BabOptions
from robustmip.bab.question import Question
from robustmip.bab.search import BabResult, branch_and_bound

__all__ = ["BabOptions", "BabResult", "Question", "branch_and_bound"]
