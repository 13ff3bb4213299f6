"""The branch-and-bound: its decisions and optima equal brute-force enumeration and the MILP's; it is sound.

Oracles: ``exact_min`` (tests/bruteforce.py, one LP per activation pattern, optionally restricted by
split constraints) on random tiny nets, and the MILP engine on small MNIST nets (the shipped demo net,
random 784-input nets). Soundness: every bound that closes a domain is the float64 re-evaluation, a
time limit is never ``unsat``, and a network whose float32 bounds claim a proof that float64 refutes
is answered correctly.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from bruteforce import exact_min
from conftest import random_network, tiny_architectures

from robustmip.bab import BabOptions, Question, branch_and_bound
from robustmip.bab.bound import DomainBounder
from robustmip.bab.engine import decide_output_property, optimize_margin, verify
from robustmip.bab.root import root_bounds
from robustmip.bounds.lirpa import LirpaGraph, reevaluate_float64
from robustmip.data import load_dataset, load_demo_network
from robustmip.deadline import Deadline
from robustmip.errors import InvalidInput
from robustmip.layers import AffineLayer
from robustmip.milp import SolveOptions
from robustmip.milp import verify as milp_verify
from robustmip.network import Network
from robustmip.solvers import MilpSolver
from robustmip.spec import input_box, margin_coefficients, robustness_conjunctions

SMALL = BabOptions(batch_size=16, milp_free_neurons=2)


def tiny_case(dims, seed, eps=0.4):
    rng = np.random.default_rng(seed)
    net = random_network(rng, dims)
    x = rng.uniform(size=dims[0])
    lower, upper = input_box(x, eps)
    return net, lower, upper


CASES = [(dims, seed) for seed in range(3) for dims in tiny_architectures()]


@pytest.mark.parametrize("branching", ["babsr", "kfsb"])
@pytest.mark.parametrize("dims,seed", CASES)
def test_optimum_and_decision_equal_enumeration_on_tiny_nets(dims, seed, branching):
    net, lower, upper = tiny_case(dims, seed)
    c = margin_coefficients(net.n_outputs, 0, 1)
    exact = exact_min(net, c, lower, upper)
    question = Question.margin(lower, upper, net.n_outputs, 0, [1])
    options = BabOptions(batch_size=16, milp_free_neurons=2, branching=branching)
    solver = MilpSolver("highs", 30)
    best = branch_and_bound(net, question, mode="optimize", options=options, solver=solver, abs_gap=1e-4, rel_gap=0)
    assert best.status == "optimal", best.reason
    assert best.lower_bound <= exact + 1e-9 <= best.incumbent + 2e-9
    assert best.incumbent - best.lower_bound <= 1e-4
    assert net.forward(best.point) @ c == pytest.approx(best.incumbent, abs=1e-12)
    decision = branch_and_bound(net, question, mode="decide", options=options, solver=solver)
    assert decision.status == ("sat" if exact < 0 else "unsat"), decision.reason
    if decision.status == "sat":
        assert net.forward(decision.point) @ c < 0


@pytest.mark.parametrize("dims,seed", CASES[:5])
def test_untargeted_and_multirow_questions_equal_enumeration(dims, seed):
    """``min_t`` over several conjunctions (the untargeted margin), and a two-row conjunction decided
    like the MILP engine decides it."""
    net, lower, upper = tiny_case(dims, seed)
    label = 0
    targets = list(range(1, net.n_outputs))
    exact = min(exact_min(net, margin_coefficients(net.n_outputs, label, t), lower, upper) for t in targets)
    best = branch_and_bound(net, Question.margin(lower, upper, net.n_outputs, label, targets), mode="optimize",
                            options=SMALL, solver=MilpSolver("highs", 30), abs_gap=1e-4, rel_gap=0)
    assert best.status == "optimal" and best.lower_bound <= exact + 1e-9 <= best.incumbent + 2e-9
    assert best.incumbent - best.lower_bound <= 1e-4
    A = np.stack([margin_coefficients(net.n_outputs, 1, 0), np.eye(net.n_outputs)[0]])  # y1 >= y0 and y0 <= c
    c = np.array([0.0, float(net.forward(0.5 * (lower + upper))[0])])
    options = SolveOptions(MilpSolver("highs", 30), engine="bab", bab=SMALL)
    mine = decide_output_property(net, lower, upper, [(A, c)], options)
    reference = decide_output_property(net, lower, upper, [(A, c)], SolveOptions(MilpSolver("highs", 30)))
    assert mine.status == reference.status != "unknown"


@pytest.mark.parametrize("dims,seed", CASES[:6])
def test_domain_bounds_are_sound_under_split_constraints(dims, seed):
    """Every certified domain bound is at most the exact minimum over the domain (split-constrained
    enumeration), and is the float64 re-evaluation of the domain's parameters, not the float32 search value."""
    net, lower, upper = tiny_case(dims, seed)
    c = margin_coefficients(net.n_outputs, 0, 1)
    question = Question.margin(lower, upper, net.n_outputs, 0, [1])
    root = root_bounds(net, question, SMALL, Deadline())
    bounder = DomainBounder(net, question, root.bounds)
    if bounder.n_unstable == 0:
        pytest.skip("no unstable ReLU at the root")
    rng = np.random.default_rng(seed)
    domains = bounder.root_domains(root.params, root.row_of_conjunction, np.zeros(8, dtype=np.int64))
    for s in domains.splits:
        s.copy_(torch.as_tensor(rng.integers(-1, 2, size=tuple(s.shape)), dtype=torch.int8))
    bounder.optimise(domains, SMALL, None, None)
    certified = bounder.certify(domains)
    assert certified.lower.dtype == torch.float64
    for d in range(len(domains)):
        splits = [(k, int(bounder.unstable[k][j]), int(domains.splits[k][d, j]))
                  for k in range(bounder.n_layers) for j in range(bounder.widths[k]) if domains.splits[k][d, j] != 0]
        assert float(certified.lower[d]) <= exact_min(net, c, lower, upper, splits) + 1e-9
    full = bounder._full_splits(domains)
    again = reevaluate_float64(
        LirpaGraph(net), torch.as_tensor(lower).expand(8, -1), torch.as_tensor(upper).expand(8, -1),
        torch.as_tensor(question.rows)[domains.conjunction], method="beta-crown",
        params=bounder._params(domains, torch.float64), splits=full,
        intermediate=[(lo.expand(8, -1), up.expand(8, -1)) for lo, up in bounder.root64],
    )
    assert torch.equal(certified.lower, again.lower[:, 0])


def _rounding_trap() -> tuple[Network, np.ndarray, np.ndarray]:
    """The margin ``y_0 - y_1 = x - (1 + 2^-30) x + 2^-32`` is ``-2^-32 < 0`` at ``x = 0.5``, but float32
    rounds ``1 + 2^-30`` to 1, so a float32 bound says ``+2^-32 > 0``: a "proof" of a false claim."""
    W1 = np.array([[1.0], [1.0 + 2.0**-30]])
    W2 = np.array([[1.0, -1.0], [0.0, 0.0]])
    net = Network([AffineLayer(W1, np.zeros(2), "relu"), AffineLayer(W2, np.array([2.0**-32, 0.0]), "identity")])
    return net, np.array([0.5]), np.array([0.5])


def test_float32_only_proofs_are_not_accepted():
    from robustmip.bounds.lirpa import lirpa_bounds

    net, lower, upper = _rounding_trap()
    question = Question.margin(lower, upper, 2, 0, [1])
    with torch.no_grad():
        model32 = LirpaGraph(net.to_torch(torch.float32), net.input_shape)
        float32 = lirpa_bounds(model32, torch.tensor(lower[None]).float(), torch.tensor(upper[None]).float(),
                               torch.tensor(question.rows[0]).float(), "crown")
    assert float(float32.lower) > 0 > float(net.forward(lower) @ question.rows[0, 0])  # the trap
    result = branch_and_bound(net, question, mode="decide", options=SMALL, solver=MilpSolver("highs", 10))
    assert result.status == "sat" and result.incumbent < 0
    best = branch_and_bound(net, question, mode="optimize", options=SMALL, solver=MilpSolver("highs", 10),
                            abs_gap=1e-12, rel_gap=0)
    assert best.lower_bound <= best.incumbent < 0


class _ExpiresAfter(Deadline):
    """A deadline that passes at its ``calls``-th check (deterministic, unlike a wall-clock limit)."""

    def __init__(self, calls: int):
        super().__init__(None)
        self.calls = calls

    def expired(self) -> bool:
        self.calls -= 1
        return self.calls < 0


def test_time_limit_is_unknown_never_unsat():
    """Demo net, image 3, eps 0.13: robust, but only after several rounds; stopped after two it is
    ``unknown`` (decision) or ``time_limit`` with sound bounds (optimisation)."""
    net = load_demo_network()
    data = load_dataset("test", "embedded")
    x, label = data.images[3].reshape(-1), int(data.labels[3])
    lower, upper = input_box(x, 0.13)
    question = Question.margin(lower, upper, 10, label, [t for t in range(10) if t != label])
    options = BabOptions(batch_size=4, max_split_depth=1, milp_free_neurons=-1)
    complete = branch_and_bound(net, question, mode="decide", options=options)
    assert complete.status == "unsat" and complete.stats["rounds"] > 1
    stopped = branch_and_bound(net, question, mode="decide", options=options, deadline=_ExpiresAfter(3))
    assert stopped.status == "unknown" and stopped.stats["open"] > 0 and "time limit" in stopped.reason
    best = branch_and_bound(net, question, mode="optimize", options=options, deadline=_ExpiresAfter(3))
    assert best.status == "time_limit" and best.lower_bound < best.incumbent
    assert best.lower_bound <= complete.lower_bound


def test_an_open_decision_starts_again_from_refined_root_bounds(monkeypatch):
    """Still open after ``refine_after`` seconds, a decision restarts from MILP-refined root bounds, and
    its verdict is still the complete search's (demo net, image 3, eps 0.13: robust after several rounds)."""
    from robustmip.bab import root as root_module

    refine_budgets = []
    original = root_module.root_bounds

    def spy(net, question, options, deadline, *args, **kwargs):
        refine_budgets.append(options.refine_seconds)
        return original(net, question, options, deadline, *args, **kwargs)

    monkeypatch.setattr(root_module, "root_bounds", spy)
    net = load_demo_network()
    data = load_dataset("test", "embedded")
    x, label = data.images[3].reshape(-1), int(data.labels[3])
    bab = BabOptions(batch_size=4, max_split_depth=1, milp_free_neurons=-1, refine_after=1e-3, refine_share=0.2)
    verdict = verify(net, x, label, 0.13, SolveOptions(MilpSolver("highs", 120), engine="bab", bab=bab))
    assert verdict.status == "robust", verdict.reason
    assert len(refine_budgets) == 2 and refine_budgets[0] == 0 and 0 < refine_budgets[1] <= 0.2 * 120
    refine_budgets.clear()  # without a restart (the default refine_after far above this search): one root
    assert verify(net, x, label, 0.13, SolveOptions(MilpSolver("highs", 120), engine="bab",
                                                     bab=BabOptions(batch_size=4))).status == "robust"
    assert refine_budgets == [0]


def test_bad_refine_settings_are_rejected():
    with pytest.raises(InvalidInput, match="refine_after"):
        BabOptions(refine_after=0)
    with pytest.raises(InvalidInput, match="refine_share"):
        BabOptions(refine_share=1.0)


def _demo_cases():
    data = load_dataset("test", "embedded")
    return [(data.images[i].reshape(-1), int(data.labels[i])) for i in range(4)]


@pytest.mark.parametrize("eps", [0.02, 0.05])
def test_verdicts_equal_the_milp_on_the_demo_net(eps):
    net = load_demo_network()
    for x, label in _demo_cases():
        options = SolveOptions(MilpSolver("highs", 60), engine="bab", bab=BabOptions(batch_size=64))
        mine = verify(net, x, label, eps, options)
        reference = milp_verify(net, x, label, eps, SolveOptions(MilpSolver("highs", 60)))
        assert mine.status == reference.status != "unknown", (mine.reason, reference.reason)
        if mine.status == "adversarial":
            assert mine.proof == "bab" and int(np.argmax(net.forward(mine.counterexample))) != label


def random_mnist_size_cases(count: int, eps: float = 0.015):
    """``(net, x, label, lower, upper, conjunctions)``: random 784-24-24-10 nets whose MILPs take seconds."""
    rng = np.random.default_rng(7)
    for _ in range(count):
        net = random_network(rng, [784, 24, 24, 10], bias_scale=0.1)
        x = rng.uniform(size=784)
        label = int(np.argmax(net.forward(x)))
        lower, upper = input_box(x, eps)
        yield net, x, label, lower, upper, robustness_conjunctions(10, label, [t for t in range(10) if t != label])


def test_verdicts_equal_the_milp_on_random_mnist_size_nets():
    for trial, (net, _, _, lower, upper, conjunctions) in enumerate(random_mnist_size_cases(3)):
        bab = decide_output_property(net, lower, upper, conjunctions,
                                     SolveOptions(MilpSolver("highs", 60), engine="bab", bab=BabOptions(batch_size=64)))
        milp = decide_output_property(net, lower, upper, conjunctions, SolveOptions(MilpSolver("highs", 60)))
        assert bab.status == milp.status != "unknown", (trial, bab.reason, milp.reason)


@pytest.mark.parametrize("target", [None, 3])
def test_optimum_equals_the_milp_optimum_within_the_gap(target):
    net = load_demo_network()
    x, label = _demo_cases()[1]
    eps = 0.03
    bab = optimize_margin(net, x, label, eps, target if target != label else None,
                          SolveOptions(MilpSolver("highs", 120), engine="bab", bab=BabOptions(batch_size=64)),
                          abs_gap=1e-4, rel_gap=1e-4)
    milp = optimize_margin(net, x, label, eps, target if target != label else None,
                           SolveOptions(MilpSolver("highs", 120)))
    assert bab.status == "optimal" and milp.status == "optimal", (bab.reason, milp.reason)
    tolerance = max(1e-4, 1e-4 * abs(bab.value))
    assert bab.lower_bound <= milp.value + 1e-6 and milp.lower_bound <= bab.value + 1e-6
    assert abs(bab.value - milp.value) <= tolerance + 1e-6
    assert bab.value - bab.lower_bound <= tolerance


def test_engines_are_chosen_and_the_milp_layer_refuses_other_engines():
    net = load_demo_network()
    x, label = _demo_cases()[0]
    with pytest.raises(InvalidInput, match="MILP engine"):
        milp_verify(net, x, label, 0.02, SolveOptions(engine="bab"))
    with pytest.raises(InvalidInput, match="engine"):
        SolveOptions(engine="gpu")
    auto = verify(net, x, label, 0.01, SolveOptions(MilpSolver("highs", 60), engine="auto"))
    assert auto.status == milp_verify(net, x, label, 0.01, SolveOptions(MilpSolver("highs", 60))).status


def _benchmark() -> Path | None:
    root = os.environ.get("ROBUSTMIP_VNNCOMP")
    return Path(root) if root and (Path(root) / "instances.csv").is_file() else None


@pytest.mark.skipif(_benchmark() is None, reason="set ROBUSTMIP_VNNCOMP to the vnncomp_mnistfc folder to run")
def test_one_real_256x2_instance_end_to_end_through_the_bab():
    """256x2 prop_6_0.03 (unsat): the root leaves it open, the branch-and-bound closes it in seconds."""
    from robustmip.io import load_network
    from robustmip.io.vnnlib import load_vnnlib
    from robustmip.vnncomp import check_property

    root = _benchmark()
    net = load_network(root / "onnx" / "mnist-net_256x2.onnx")
    prop = load_vnnlib(root / "vnnlib" / "prop_6_0.03.vnnlib")
    result = check_property(net, prop, SolveOptions(MilpSolver("highs", 120), domain=(None, None), engine="bab"))
    assert result.result == "unsat", result.reason
    assert result.times["solve"] > 0 and math.isfinite(result.seconds)


@pytest.mark.parametrize("engine", [["--engine", "bab"], ["--engine", "auto", "--threads", "2"]])
def test_sigint_during_the_search_leaves_an_unknown_result_file(tmp_path, capsys, monkeypatch, engine):
    """A real SIGINT delivered inside a branch-and-bound round (alone, or racing the MILP in a child
    process): exit 130, the result file says ``unknown`` (written before the work started, never
    replaced by a partial verdict), no child process left."""
    import multiprocessing
    import signal
    import time

    import onnx

    import robustmip.bab.engine as engine_module
    from robustmip.bab.search import _Search
    from robustmip.cli import main
    from robustmip.io.onnx_model import network_to_onnx

    net = load_demo_network()
    data = load_dataset("test", "embedded")
    x, label = data.images[3].reshape(-1), int(data.labels[3])
    onnx.save(network_to_onnx(net), tmp_path / "net.onnx")
    lower, upper = input_box(x, 0.13)
    lines = [f"(declare-const X_{i} Real)" for i in range(784)] + [f"(declare-const Y_{j} Real)" for j in range(10)]
    lines += [f"(assert (>= X_{i} {float(lo)!r}))\n(assert (<= X_{i} {float(up)!r}))"
              for i, (lo, up) in enumerate(zip(lower, upper))]
    lines.append("(assert (or " + " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(10) if j != label) + "))")
    (tmp_path / "prop.vnnlib").write_text("\n".join(lines) + "\n")
    out = tmp_path / "result.txt"
    rounds = []

    def round_then_sigint(self):
        rounds.append(out.read_text())
        os.kill(os.getpid(), signal.SIGINT)
        self.frontier.pop_worst(1)

    monkeypatch.setattr(_Search, "branch_round", round_then_sigint)
    monkeypatch.setattr(engine_module, "milp_decide_output_property", lambda *args, **kwargs: time.sleep(60))
    # A suite started in the background (`make test &`) inherits SIGINT ignored, and Python keeps it so.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = main(["verify-vnnlib", str(tmp_path / "net.onnx"), str(tmp_path / "prop.vnnlib"), *engine,
                     "--no-pgd", "--timeout", "60", "--out", str(out)])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert rounds == ["unknown\n"]
    assert code == 130 and out.read_text() == "unknown\n"
    assert "interrupted" in capsys.readouterr().err
    assert multiprocessing.active_children() == []


def _decided(result: str) -> bool:
    return result.startswith("decided")


def test_race_takes_the_first_decision_and_leaves_no_process():
    import multiprocessing
    import time

    from robustmip.bab.portfolio import race

    def patient_search(stop):
        while not stop():
            time.sleep(0.01)
        return "undecided search"

    def milp(deadline):
        time.sleep(0.2)
        return "decided by the milp"

    assert race(milp, patient_search, _decided, Deadline(20)) == ("decided by the milp", "milp")

    def slow_milp(deadline):
        time.sleep(60)
        return "decided too late"

    begin = time.perf_counter()
    assert race(slow_milp, lambda stop: "decided by the search", _decided, Deadline(20)) == (
        "decided by the search", "bab")
    assert time.perf_counter() - begin < 10

    def failing_milp(deadline):
        raise RuntimeError("solver crashed")

    def search_after(stop):
        time.sleep(0.3)
        return "decided by the search" if not stop() else "stopped"

    assert race(failing_milp, search_after, _decided, Deadline(20)) == ("decided by the search", "bab")

    def undecided_milp(deadline):
        return "no answer"

    assert race(undecided_milp, lambda stop: "undecided search", _decided, Deadline(1)) == ("undecided search", "bab")
    assert multiprocessing.active_children() == []


def test_two_threads_race_both_engines_to_the_milps_verdicts():
    for trial, (net, x, label, lower, upper, conjunctions) in enumerate(random_mnist_size_cases(2)):
        raced = decide_output_property(net, lower, upper, conjunctions,
                                       SolveOptions(MilpSolver("highs", 60, threads=2), engine="auto"))
        milp = decide_output_property(net, lower, upper, conjunctions, SolveOptions(MilpSolver("highs", 60)))
        assert raced.status == milp.status != "unknown", (trial, raced.reason, milp.reason)
        mine = verify(net, x, label, 0.015, SolveOptions(MilpSolver("highs", 60, threads=2), engine="auto",
                                                         domain=(None, None)))
        assert mine.status == {"sat": "adversarial", "unsat": "robust"}[milp.status]


def test_the_studies_bab_engine_gives_the_milps_optima():
    """``robustmip.studies.engines.ENGINES['bab']`` on two targets of one demo image (one robust, one not):
    the MILP's verdicts and optima within the gap (relative 1e-4), counterexamples re-checked."""
    from robustmip.attacks.milp_attack import attack_image
    from robustmip.studies.engines import ENGINES

    net = load_demo_network()
    x, label = _demo_cases()[1]
    kwargs = dict(time_limit=60.0, targets=[0, 3], pgd_start=True)
    bab, bab_examples = attack_image(net, x, label, 0.06, optimiser=ENGINES["bab"], **kwargs)
    milp, _ = attack_image(net, x, label, 0.06, optimiser=ENGINES["milp"], **kwargs)
    for mine, reference in zip(bab, milp):
        assert mine.status == reference.status != "unknown" and mine.solver_status == "optimal"
        assert mine.ofv == pytest.approx(reference.ofv, abs=1e-4, rel=1e-4) and mine.rel_gap <= 1e-4 + 1e-9
        assert mine.bound <= reference.ofv + 1e-6
    assert [row.status for row in bab] == ["robust", "adversarial"]
    for target, point in bab_examples.items():
        assert int(np.argmax(net.forward(point))) != label
