"""Does this HiGHS give right answers where earlier versions did not? Two checks, for choosing a version.

1. ``mip_lifting_for_probing`` (upstream ERGO-Code/HiGHS#3307): the targeted max-margin MILPs of the
   first ``--images`` test images on a net, solved with the default and with the option at 0 and 1;
   every optimum and bound must equal the default's. (robustmip refuses the option in ``MilpSolver``;
   this script lifts the refusal on purpose.)
2. A stale MIP start: the parameter-robustness MILP of ``tests/test_params_encode.py``, solved with the
   start and with ``robustmip.solvers``' guard switched off, against Gurobi when present: the value and
   the bound must equal the optimum.

Usage: ``python benchmarks/highs_version_check.py results/models/mlp-50-50.pt [--images 3]``; to check
another HiGHS, install it apart (``pip install --target DIR highspy==X``) and run with ``PYTHONPATH=DIR``.
"""

from __future__ import annotations

import argparse

import numpy as np

import robustmip.solvers as solvers
from robustmip.attacks.falsify import property_falsifier
from robustmip.data import load_embedded_mnist
from robustmip.io import load_network
from robustmip.layers import AffineLayer
from robustmip.milp import ImageProblem, SolveOptions
from robustmip.network import Network


def lifting(path: str, images: int) -> tuple[int, int]:
    """(mismatches, MILPs): optima with the lifting option against the default's."""
    solvers._UNSOUND_HIGHS_OPTIONS = {}
    net = load_network(path)
    X, Y = load_embedded_mnist("test")
    bad = total = 0
    for i in range(images):
        x, y = X[i].reshape(-1).astype(np.float64), int(Y[i])
        if int(np.argmax(net.forward(x))) != y:
            continue
        reference = ImageProblem(net, x, y, 0.05, SolveOptions(solvers.MilpSolver("highs", 120),
                                                                falsifier=property_falsifier()))
        for value in (0, 1):
            solver = solvers.MilpSolver("highs", 120, options={"mip_lifting_for_probing": value})
            problem = ImageProblem(net, x, y, 0.05, SolveOptions(solver, falsifier=property_falsifier()))
            for target in [t for t in range(10) if t != y][:4]:
                a, b = reference.margin(target=target), problem.margin(target=target)
                total += 1
                if b.bound is None or a.objective is None or abs(a.objective - (b.objective or np.inf)) > 1e-5:
                    bad += 1
                    print(f"  image {i} target {target} lifting {value}: default {a.objective} / {a.bound}, "
                          f"lifting {b.objective} / {b.bound} ({b.solver_status})")
    return bad, total


def stale_start() -> tuple[float, float, float | None]:
    """(value, bound) of HiGHS without robustmip's guard, and Gurobi's optimum (None without Gurobi)."""
    from robustmip.params import ParamBox
    from robustmip.params.problem import ParamProblem

    layers = [
        ([[-1.2935448854386926, 0.6850398828970938], [0.2972322893167274, -0.23378349850305052],
          [-0.39390402552311504, -0.6262217857198967]], [-0.8812683015840147, -0.5886018378965101, -0.035056123054453325]),
        ([[0.9292244778617061, 0.26163501603058, 0.9265194602194881], [-0.5830216835496621, 0.7255454910176843,
          -0.24025458560389149], [0.8465855692447243, 0.7092142826059978, 0.020416724822432793]],
         [0.06724849833309794, 0.6087173838255869, -0.3978821921939673]),
        ([[-1.2487571826901338, 0.4716545607772291, 1.2581164932502045]], [-0.9480917678162857]),
    ]
    net = Network([AffineLayer(np.array(W), np.array(b), "relu" if k < 2 else "identity")
                   for k, (W, b) in enumerate(layers)])
    x = np.array([0.7667708052065768, 0.07901792979569866])
    guard = solvers._loaded_matches
    solvers._loaded_matches = lambda model, objective: True
    try:
        o = ParamProblem(net, ParamBox.uniform(net, 0.04862173146180336), x - 0.1, x + 0.1,
                         SolveOptions("highs")).optimise_output(np.ones(1), "max", attack=None)
    finally:
        solvers._loaded_matches = guard
    try:
        g = ParamProblem(net, ParamBox.uniform(net, 0.04862173146180336), x - 0.1, x + 0.1,
                         SolveOptions("gurobi")).optimise_output(np.ones(1), "max", attack=None)
        reference = g.value
    except Exception:  # noqa: BLE001 - no Gurobi here: report HiGHS alone
        reference = None
    return o.value, o.bound, reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("net", help="a net for the lifting check, e.g. results/models/mlp-50-50.pt")
    parser.add_argument("--images", type=int, default=3)
    args = parser.parse_args()
    version = solvers.new_highs().version()
    bad, total = lifting(args.net, args.images)
    print(f"HiGHS {version}: lifting for probing changed {bad} of {total} optima")
    value, bound, reference = stale_start()
    print(f"HiGHS {version}: stale-start MILP without the guard: value {value:.6f}, bound {bound:.6f}; "
          f"Gurobi {reference if reference is None else f'{reference:.6f}'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
