"""OMLT as a peer of robustmip's MILPs: the same network and input box in OMLT's big-M formulation.

:func:`build_omlt_model` does what an OMLT user does with a trained ReLU net: a
``NetworkDefinition`` with the input box as ``scaled_input_bounds``, one ``InputLayer`` and one
``DenseLayer`` per affine layer (the same float64 weights, so the same function as the
:class:`~robustmip.network.Network`), then ``OmltBlock.build_formulation(ReluBigMFormulation(...))``.
OMLT computes its own big-M constants by interval propagation (Pyomo FBBT) and gives every ReLU a
binary, stable or not; it copies the inputs into three variable sets (inputs, scaled inputs, input
layer). Nothing is tightened or removed here: that is the user's model as OMLT builds it.

The model is solved by the same solver layer as robustmip's (:class:`robustmip.milp.MilpSolver`:
HiGHS through Pyomo APPSI, same threads, gap and time limit), one persistent model per image whose
objective changes per target, as robustmip does, so the comparison isolates the formulation.

Used by ``benchmarks/milp_targeted.py`` (``--omlt``); runs alone as a smoke test::

    python benchmarks/omlt_peer.py --net results/models/mlp-50-50.pt --eps 0.05 --image 0
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pyomo.environ as pyo

from robustmip.io import from_torch
from robustmip.network import Network


@contextmanager
def quiet_pyomo() -> Iterator[None]:
    """Raise the ``pyomo.core`` logger to ERROR (OMLT's build floods it with W1002 warnings)."""
    log = logging.getLogger("pyomo.core")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def omlt_version() -> str:
    import omlt

    return getattr(omlt, "__version__", "unknown")


def build_omlt_model(net: Network, lower: np.ndarray, upper: np.ndarray) -> tuple[pyo.ConcreteModel, float]:
    """OMLT's ``ReluBigMFormulation`` of ``net`` over the box ``[lower, upper]``.

    Returns the model (the network in ``model.nn``, a placeholder objective ``model.objective`` to
    set) and the seconds spent building it.
    """
    from omlt import OmltBlock
    from omlt.neuralnet import NetworkDefinition, ReluBigMFormulation
    from omlt.neuralnet.layer import DenseLayer, InputLayer

    start = time.perf_counter()
    with quiet_pyomo():
        definition = NetworkDefinition(
            scaled_input_bounds={i: (float(lower[i]), float(upper[i])) for i in range(net.n_inputs)}
        )
        previous = InputLayer([net.n_inputs])
        definition.add_layer(previous)
        for layer in net.layers:
            dense = DenseLayer(
                previous.output_size, [layer.n_out], layer.W.T.copy(), layer.b.copy(),
                activation="relu" if layer.activation == "relu" else "linear",
            )
            definition.add_layer(dense)
            definition.add_edge(previous, dense)
            previous = dense
        model = pyo.ConcreteModel()
        model.nn = OmltBlock()
        model.nn.build_formulation(ReluBigMFormulation(definition))
        model.objective = pyo.Objective(expr=0.0, sense=pyo.minimize)
    return model, time.perf_counter() - start


def set_margin_objective(model: pyo.ConcreteModel, label: int, target: int) -> None:
    """Minimise ``z_label - z_target`` (the same targeted margin as robustmip's)."""
    model.objective.set_value(model.nn.outputs[label] - model.nn.outputs[target])


def input_point(model: pyo.ConcreteModel, n_inputs: int, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The solution's input, projected onto the box (centre for inputs the solver left without a value)."""
    values = [model.nn.inputs[i].value for i in range(n_inputs)]
    centre = 0.5 * (lower + upper)
    point = np.array([centre[i] if v is None else v for i, v in enumerate(values)], dtype=np.float64)
    return np.clip(point, lower, upper)


def model_size(model: pyo.Block) -> dict:
    """Variables (and binaries) and constraints of a Pyomo model, fixed variables excluded."""
    variables = [v for v in model.component_data_objects(pyo.Var, active=True) if not v.fixed]
    return {
        "vars": len(variables),
        "binaries": sum(1 for v in variables if v.is_binary()),
        "constraints": sum(1 for _ in model.component_data_objects(pyo.Constraint, active=True)),
    }


def _main() -> int:
    import argparse

    import torch

    from robustmip.data import load_dataset
    from robustmip.io.checkpoint import load_checkpoint
    from robustmip.solvers import MilpSolver
    from robustmip.spec import input_box

    parser = argparse.ArgumentParser(description="Solve the 9 targeted margins of one image with OMLT + HiGHS")
    parser.add_argument("--net", required=True, help="checkpoint (.pt)")
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--image", type=int, default=0, help="index in the MNIST test set")
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model_t, _ = load_checkpoint(args.net)
    net = from_torch(model_t, input_shape=(1, 28, 28))
    test = load_dataset("test", "auto", args.data_dir)
    x, label = test.images[args.image].reshape(-1).astype(np.float64), int(test.labels[args.image])
    lower, upper = input_box(x, args.eps)
    model, build = build_omlt_model(net, lower, upper)
    print(f"omlt {omlt_version()}: built in {build:.2f} s, {model_size(model)}")
    solver = MilpSolver("highs", args.time_limit, threads=1)
    for target in (t for t in range(net.n_outputs) if t != label):
        set_margin_objective(model, label, target)
        result = solver.solve(model)
        point = input_point(model, net.n_inputs, lower, upper)
        logits = net.forward(point)
        print(f"target {target}: {result.status:<10} objective {result.objective} bound {result.bound} "
              f"forward margin {logits[label] - logits[target]:.6g} ({result.seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
