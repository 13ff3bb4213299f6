"""gurobi-machinelearning with Gurobi as a peer of robustmip's max-margin MILP (``milp_targeted.py --gurobi-ml``).

One gurobipy model per (net, image, eps): the input variables bounded by the same box as
robustmip's (``robustmip.spec.input_box``), the net embedded with one call,
``gurobi_ml.add_predictor_constr(model, torch_model, x)``, which builds its own formulation (its own
bounds by interval propagation and a big-M ReLU), and one objective per target
``y[label] - y[target]``, minimised with one thread, the model kept across targets as robustmip keeps
its own, with robustmip's optimality gaps. The objective's value is re-checked with robustmip's float64 forward pass at the returned
input, as for the other engines. Needs ``pip install gurobi-machinelearning`` and a Gurobi licence that
admits the model (the pip licence stops at 2000 variables and constraints).
"""

from __future__ import annotations

import time

import numpy as np

from robustmip.network import Network


def gurobi_ml_version() -> str:
    import gurobi_ml

    return gurobi_ml.__version__


class GurobiMlProblem:
    """The embedded net over one input box; :meth:`margin` minimises ``y_label - y_target``."""

    def __init__(self, net: Network, lower: np.ndarray, upper: np.ndarray, time_limit: float):
        import gurobipy as gp
        import torch
        from gurobi_ml import add_predictor_constr

        start = time.perf_counter()
        self.net, self.lower, self.upper = net, lower, upper
        self.model = gp.Model()
        self.model.Params.OutputFlag = 0
        self.model.Params.Threads = 1
        self.model.Params.TimeLimit = time_limit
        self.model.Params.MIPGap, self.model.Params.MIPGapAbs = 1e-6, 1e-9  # robustmip's MilpSolver gaps
        self.x = self.model.addMVar((1, net.n_inputs), lb=lower[None, :], ub=upper[None, :], name="x")
        torch_model = net.to_torch(torch.float64)[1:]  # without the leading Flatten: gurobi-ml reads Linear/ReLU
        self.constraint = add_predictor_constr(self.model, torch_model, self.x)
        self.y = self.constraint.output
        self.model.update()
        self.build_seconds = time.perf_counter() - start

    def size(self) -> dict:
        return {"vars": self.model.NumVars, "binaries": self.model.NumBinVars, "constraints": self.model.NumConstrs}

    def margin(self, label: int, target: int) -> dict:
        """Minimise the margin; status, objective, bound, the re-checked margin at the point, seconds."""
        from gurobipy import GRB

        self.model.setObjective(self.y[0, label] - self.y[0, target], GRB.MINIMIZE)
        start = time.perf_counter()
        self.model.optimize()
        seconds = time.perf_counter() - start
        status = {GRB.OPTIMAL: "optimal", GRB.TIME_LIMIT: "time_limit", GRB.INFEASIBLE: "infeasible"}.get(
            self.model.Status, f"status {self.model.Status}")
        has_point = self.model.SolCount > 0
        point_margin = None
        if has_point:
            point = np.clip(np.asarray(self.x.X, dtype=np.float64).reshape(-1), self.lower, self.upper)
            logits = self.net.forward(point)
            point_margin = float(logits[label] - logits[target])
        return {"status": status, "objective": self.model.ObjVal if has_point else None,
                "bound": self.model.ObjBound if status in ("optimal", "time_limit") else None,
                "point_margin": point_margin, "wall_s": seconds, "translate_s": 0.0, "optimize_s": seconds}
