"""The largest parameter radius that keeps a label: ``delta*`` for the boxes ``delta * unit``.

``unit`` is the box at radius 1 (``ParamBox.uniform(net, 1.0)`` or ``ParamBox.relative(net, 1.0)``);
the box at radius ``delta`` is ``unit.scaled(delta)``. The result brackets ``delta*``: every box of
radius below ``lower`` is proven to keep the label, and a witness at radius ``upper`` changes it
(re-checked in float64). Two methods:

``milp`` (only layer 0 perturbed, a fixed input): ``a_1 = W0 x + b0 + delta * (R|x| + rho) Delta`` is
    linear in ``(a_1, delta)`` for a fixed ``x``, so one MILP minimises ``delta`` subject to some
    class reaching the label's logit (:class:`~robustmip.milp.encode.ParameterBand` with a scale
    variable). Its bounds (and big-M constants) are those of the largest radius searched, so
    ``param_pgd`` first looks for a flip at ``max_delta / 2^10``, doubling up to ``max_delta``, and
    the MILP searches ``[0, the first radius that flips]``. Its proven bound is ``lower``; its
    optimum is a tie, so the witness's offsets are pushed a little further (``delta (1 + 10^-6)``,
    then ``10^-4``, ``10^-2``) until it strictly flips.
``bisection`` (any layers, an input box): decisions of :func:`verify_parameter_robustness` at
    the midpoint of ``[lower, upper]`` until ``upper - lower <= tol * upper``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo

from robustmip.errors import InvalidInput
from robustmip.milp.encode import ParameterBand, encode
from robustmip.milp.objectives import add_disjunction
from robustmip.milp.options import SolveOptions
from robustmip.network import Network
from robustmip.params.attack import ParamAttack, param_pgd
from robustmip.params.bounds import compute_param_bounds
from robustmip.params.box import ParamBox, check_delta
from robustmip.params.problem import param_bounds_method
from robustmip.params.realise import solution_deltas
from robustmip.params.verify import verify_parameter_robustness
from robustmip.spec import check_image, robustness_conjunctions


@dataclass
class RadiusResult:
    """``lower <= delta* <= upper`` for one input and label.

    Attributes:
        status: ``exact`` (``upper - lower <= tol * upper``), ``gap``, ``beyond`` (robust up to
            ``max_delta``: ``lower = max_delta``, no ``upper``) or ``flipped`` (the nominal net
            already misclassifies: ``delta* = 0``).
        lower: every radius below it is proven robust; upper: a re-checked flip at this radius.
        method: ``milp`` or ``bisection``; solves: MILPs (or decisions) used.
        witness: the realised network of the flip at ``upper``.
    """

    status: str
    lower: float
    upper: float | None
    method: str
    solves: int = 0
    witness: Network | None = None
    reason: str = ""
    times: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("status", "lower", "upper", "method", "solves", "reason", "times")}


def parameter_radius(net: Network, x: np.ndarray, label: int, unit: ParamBox, eps: float = 0.0,
                     options: SolveOptions | None = None, *, max_delta: float = 1.0, tol: float = 1e-3,
                     method: str | None = None) -> RadiusResult:
    """Bracket the largest radius ``delta`` whose box ``unit.scaled(delta)`` keeps ``label`` on ``x``.

    Args:
        unit: the box at radius 1; eps: input radius (0: fixed input); max_delta: the largest radius
            searched (> 0); tol: relative width at which bisection stops.
        method: ``milp``, ``bisection``, or None for ``milp`` when it applies (see the module docstring).
    """
    options = options or SolveOptions()
    flat = check_image(x, label, net.n_inputs, net.n_outputs, options.domain, net.input_shape)
    max_delta = check_delta(max_delta, "max_delta")
    if max_delta <= 0 or not 0 < tol < 1:
        raise InvalidInput(f"need max_delta > 0 and 0 < tol < 1, got {max_delta}, {tol}")
    unit.check(net)
    one_milp = unit.layers == [0] and eps == 0.0
    method = method or ("milp" if one_milp else "bisection")
    if method == "milp" and not one_milp:
        raise InvalidInput("the one-MILP radius needs only layer 0 perturbed and a fixed input (eps 0)")
    if method not in ("milp", "bisection"):
        raise InvalidInput(f"method must be 'milp' or 'bisection', got {method!r}")
    logits = net.forward(flat)
    if np.max(np.delete(logits, int(label))) > logits[int(label)]:
        return RadiusResult("flipped", 0.0, 0.0, method, reason="the nominal network already misclassifies")
    if method == "milp":
        return _radius_milp(net, flat, int(label), unit, options, max_delta)
    return _radius_bisection(net, flat, int(label), unit, eps, options, max_delta, tol)


def _strict_flip(net: Network, x: np.ndarray, label: int, candidate: Network) -> bool:
    logits = candidate.forward(x)
    return bool(np.max(np.delete(logits, label)) > logits[label])


def _first_flip(net: Network, x: np.ndarray, label: int, unit: ParamBox, max_delta: float) -> float:
    """The smallest radius ``max_delta / 2^k`` (``k = 10 .. 0``) at which ``param_pgd`` flips the label
    (re-checked), else ``max_delta``."""
    targets = [t for t in range(net.n_outputs) if t != label]
    conjunctions = robustness_conjunctions(net.n_outputs, label, targets)
    for k in range(10, -1, -1):
        radius = max_delta / 2 ** k
        box = unit.scaled(radius)
        point, deltas, _ = param_pgd(net, box, x, x, conjunctions, ParamAttack())
        if _strict_flip(net, point, label, box.realise(net, deltas)):
            return radius
    return max_delta


def _radius_milp(net: Network, x: np.ndarray, label: int, unit: ParamBox, options: SolveOptions,
                 max_delta: float) -> RadiusResult:
    start = time.perf_counter()
    deadline = options.deadline()
    max_delta = _first_flip(net, x, label, unit, max_delta)
    falsify = time.perf_counter() - start
    bounds = compute_param_bounds(net, unit.scaled(max_delta), x, x, param_bounds_method(options),  # type: ignore
                                  deadline, options.threads)
    m = pyo.ConcreteModel()
    m.delta = pyo.Var(bounds=(0.0, max_delta))
    m.net = pyo.Block()
    R, rho = unit.radii[0]
    enc = encode(net, bounds, m.net, parameter_band={0: ParameterBand(R, rho, scale=m.delta)})
    targets = [t for t in range(net.n_outputs) if t != label]
    slack = add_disjunction(enc, robustness_conjunctions(net.n_outputs, label, targets), "flip")
    slack.setlb(0.0)
    m.objective = pyo.Objective(expr=m.delta, sense=pyo.minimize)
    times = {"falsify": falsify, "bounds": bounds.seconds}
    result = options.milp_solver.solve(m, deadline.left())
    times["solve"] = result.seconds
    if result.status == "infeasible":
        return RadiusResult("beyond", max_delta, None, "milp", 1, reason=f"robust for every radius up to {max_delta:g}",
                            times=times)
    lower = 0.0 if result.bound is None else max(0.0, float(result.bound))
    if not result.has_solution:
        return RadiusResult("gap", lower, None, "milp", 1, reason=f"no incumbent ({result.status})", times=times)
    found = float(m.delta.value)
    deltas = solution_deltas(net, unit.scaled(found), x, enc)
    for push in (1e-6, 1e-4, 1e-2):
        radius = found * (1.0 + push) + 1e-12
        candidate = unit.scaled(radius).realise(net, deltas)
        if _strict_flip(net, x, label, candidate):
            times["total"] = time.perf_counter() - start
            status = "exact" if result.status == "optimal" else "gap"
            return RadiusResult(status, lower, radius, "milp", 1, candidate, times=times)
    return RadiusResult("gap", lower, None, "milp", 1, reason=f"the optimum's offsets at {found:.6g} did not flip the "
                        "label strictly when pushed 1 % further", times=times)


def _radius_bisection(net: Network, x: np.ndarray, label: int, unit: ParamBox, eps: float, options: SolveOptions,
                      max_delta: float, tol: float) -> RadiusResult:
    lower, upper, witness, solves = 0.0, None, None, 0
    start = time.perf_counter()
    deadline = options.deadline()
    probe = max_delta
    while True:
        if deadline.expired():
            return RadiusResult("gap", lower, upper, "bisection", solves, witness, "time limit reached",
                                {"total": time.perf_counter() - start})
        step = SolveOptions.create(options.milp_solver.name, deadline.left(), options.threads, bounds=options.bounds,
                                   domain=options.domain)
        verdict = verify_parameter_robustness(net, unit.scaled(probe), x, label, eps, step, attack=ParamAttack())
        solves += 1
        if verdict.status == "robust":
            lower = probe
            if upper is None:
                return RadiusResult("beyond", max_delta, None, "bisection", solves,
                                    reason=f"robust for every radius up to {max_delta:g}",
                                    times={"total": time.perf_counter() - start})
        elif verdict.status == "flips":
            upper, witness = probe, verdict.network
        else:
            return RadiusResult("gap", lower, upper, "bisection", solves, witness, verdict.reason,
                                {"total": time.perf_counter() - start})
        if upper - lower <= tol * upper:
            return RadiusResult("exact", lower, upper, "bisection", solves, witness,
                                times={"total": time.perf_counter() - start})
        probe = 0.5 * (lower + upper)

