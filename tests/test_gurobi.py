"""HiGHS and Gurobi agree; Gurobi's size-limited licence gives a clear error. Skipped without Gurobi."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import gurobi_skip_reason, random_network

from robustmip.errors import SolverLicenseLimit
from robustmip.milp import ImageProblem, SolveOptions, verify
from robustmip.solvers import MilpSolver

_reason = gurobi_skip_reason()
pytestmark = [pytest.mark.gurobi, pytest.mark.skipif(_reason is not None, reason=_reason or "")]


@pytest.mark.parametrize("seed", range(4))
def test_highs_and_gurobi_give_the_same_optima(seed):
    rng = np.random.default_rng(seed)
    net = random_network(rng, [12, 16, 12, 5])
    x = rng.uniform(size=12)
    label = int(np.argmax(net.forward(x)))
    highs = ImageProblem(net, x, label, 0.2, SolveOptions(MilpSolver("highs", 60)))
    gurobi = ImageProblem(net, x, label, 0.2, SolveOptions(MilpSolver("gurobi", 60)))
    for target in [t for t in range(5) if t != label] + [None]:
        a, b = highs.margin(target=target), gurobi.margin(target=target)
        assert a.objective == pytest.approx(b.objective, abs=1e-6)
        assert a.status == b.status
    assert verify(net, x, label, 0.05, SolveOptions("gurobi")).status == verify(net, x, label, 0.05).status


def test_size_limited_licence_names_the_limit_and_suggests_highs():
    rng = np.random.default_rng(0)
    net = random_network(rng, [30, 2100, 10])  # 2100 binaries > 2000
    x = rng.uniform(size=30)
    label = int(np.argmax(net.forward(x)))
    problem = ImageProblem(net, x, label, 1.0, SolveOptions(MilpSolver("gurobi", 30), bounds="interval"))
    try:
        problem.margin(target=(label + 1) % 10)
    except SolverLicenseLimit as exc:
        assert "2000" in str(exc) and "--solver highs" in str(exc)
    else:
        pytest.skip("this Gurobi licence is not size-limited; nothing to check")
