"""The user-facing parameter questions on one input box (each a :class:`ParamProblem`).

* :func:`verify_parameter_robustness`: can the label of an image (or of any input within ``eps`` of
  it: joint input and parameter robustness) change for some parameter in the box? (Murthy et al.
  def. 3, and APP's (eps, lambda) question.)
* :func:`decide_parameter_property`: a VNN-LIB-style property (input box, unsafe output condition)
  under the box, with the proven worst-case slack as its margin (``robustmip param-verify``).
"""

from __future__ import annotations

import numpy as np

from robustmip.milp.options import SolveOptions
from robustmip.network import Network
from robustmip.params.attack import ParamAttack
from robustmip.params.box import ParamBox
from robustmip.params.problem import ParamProblem, ParamVerdict
from robustmip.spec import (
    OutputProperty,
    check_eps,
    check_image,
    input_box,
    robustness_conjunctions,
)


def verify_parameter_robustness(
    net: Network,
    box: ParamBox,
    x: np.ndarray,
    label: int,
    eps: float = 0.0,
    options: SolveOptions | None = None,
    *,
    attack: ParamAttack | None = ParamAttack(),
    optimise: bool = False,
) -> ParamVerdict:
    """Decide whether every parameter in ``box`` keeps ``label`` on ``x`` (and every input within ``eps``).

    ``flips`` needs some class strictly above ``label`` in the float64 forward pass of the realised
    witness (a tie is no flip); ``margin`` is then ``max_t z_t - z_label > 0``, and for ``robust``
    (with ``optimise``) the proven largest value of it, ``<= 0``. The input box is the l-infinity ball
    of radius ``eps`` (input units) clipped to ``options.domain``.
    """
    options = options or SolveOptions()
    flat = check_image(x, label, net.n_inputs, net.n_outputs, options.domain, net.input_shape)
    lower, upper = input_box(flat, check_eps(eps), *options.domain)
    targets = [t for t in range(net.n_outputs) if t != int(label)]
    conjunctions = robustness_conjunctions(net.n_outputs, int(label), targets)
    return ParamProblem(net, box, lower, upper, options).decide(conjunctions, strict=True, optimise=optimise,
                                                                attack=attack)


def decide_parameter_property(
    net: Network,
    box: ParamBox,
    prop: OutputProperty,
    options: SolveOptions | None = None,
    *,
    attack: ParamAttack | None = ParamAttack(),
    optimise: bool = True,
) -> ParamVerdict:
    """Decide a property's unsafe condition under ``box``: ``flips`` iff some case's box reaches it.

    Each case (input box and conjunctions) is one :class:`ParamProblem`; one deadline (the solver's
    time limit) covers them all. ``robust`` carries the largest proven slack over the cases
    (``optimise``), ``flips`` the first re-checked witness.
    """
    options = options or SolveOptions()
    deadline = options.deadline()
    verdicts = []
    for case in prop.cases:
        verdict = ParamProblem(net, box, case.lower, case.upper, options).decide(
            case.conjunctions, optimise=optimise, attack=attack, deadline=deadline)
        if verdict.status == "flips":
            return verdict
        verdicts.append(verdict)
    undecided = [v for v in verdicts if v.status == "unknown"]
    if undecided:
        return undecided[0]
    margins = [v.margin for v in verdicts]
    times = {key: sum(v.times.get(key, 0.0) for v in verdicts) for key in verdicts[0].times}
    return ParamVerdict("robust", None if None in margins else max(margins),
                        "milp" if any(v.proof == "milp" for v in verdicts) else "bounds",
                        reason=verdicts[0].reason, times=times)
