"""``robustmip certify``: verified error from sound bounds, PGD and the exact MILP (:mod:`robustmip.certify`)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from robustmip.cli.common import (
    add_data_options,
    check_writable,
    nonneg_int,
    pos_float,
    pos_int,
    print_json,
    reports_errors,
    unit_eps,
)
from robustmip.cli.verify import BOUNDS_CHOICES, SOLVER_CHOICES

BOUND_CHOICES = ("ibp", "crown-ibp", "crown", "lp")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "certify", help="verified error of a model: sound bounds, PGD and (--exact) the MILP",
        description="Per MNIST test image and eps: clean correctness, each bound's verdict (verified iff its "
        "sound float64 lower bound on every margin z_y - z_j is > 0), PGD (adversarial iff a point passes the "
        "float64 re-check) and, with --exact, the exact verdict (robust when a bound verified it, adversarial "
        "when PGD found one, else robustmip verify's MILP; a timeout is unknown, never robust). Prints per eps: "
        "PGD error <= exact lower (adversarial) <= exact upper (adversarial + unknown) <= each bound's verified "
        "error. Rows go to --out as they finish (JSON lines); a rerun resumes, other settings are refused.")
    p.add_argument("model", help="model: .onnx, .pt checkpoint or .npz network")
    p.add_argument("--eps", type=unit_eps, nargs="+", required=True, help="l-inf radii in [0,1] pixel units")
    p.add_argument("--n", type=pos_int, default=100, help="first N test images (default 100)")
    p.add_argument("--indices", type=nonneg_int, nargs="+", help="MNIST test indices (instead of --n)")
    p.add_argument("--bounds", nargs="+", choices=BOUND_CHOICES, default=list(BOUND_CHOICES),
                   help="bound methods to give verdicts for (default: all four)")
    p.add_argument("--exact", action="store_true", help="also decide exactly: PGD, then the MILP")
    p.add_argument("--timeout", type=pos_float, default=60.0,
                   help="seconds per (image, eps) for the exact verdict and the lp bound (default 60)")
    p.add_argument("--solver", choices=SOLVER_CHOICES, default="highs", help="MILP solver (default highs)")
    p.add_argument("--milp-bounds", choices=BOUNDS_CHOICES, default="lp",
                   help="bound tightening inside the MILP (default lp)")
    p.add_argument("--threads", type=pos_int, default=1, help="solver threads per worker (default 1)")
    p.add_argument("--workers", type=pos_int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--pgd-steps", type=pos_int, default=50, help="PGD steps per restart (default 50)")
    p.add_argument("--pgd-restarts", type=pos_int, default=8, help="PGD random restarts (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the PGD starts (default 0)")
    p.add_argument("--pgd-always", action="store_true",
                   help="run PGD also on images a bound verified (a cross-check of the bounds; slower)")
    p.add_argument("--out", type=Path, help="results, one JSON line per (image, eps) (default: a temporary file; "
                   "give one to resume)")
    p.add_argument("--json", action="store_true", help="print one object per (image, eps) as a JSON list")
    add_data_options(p)
    p.set_defaults(func=run_certify_command)


def summary_table(summaries) -> str:
    """Per eps, the errors (%) in the order they must hold, then the MILPs and unknowns."""
    methods = list(summaries[0].verified_error) if summaries else []
    header = ["eps", "n", "clean", "PGD", "exact lo", "exact hi", *methods, "MILPs", "unknown", "ordered"]
    lines = ["  ".join(f"{h:>9}" for h in header)]
    for s in summaries:
        exact = ["-", "-"] if s.exact_lower is None else [f"{100 * s.exact_lower:.2f}", f"{100 * s.exact_upper:.2f}"]
        cells = [f"{s.eps:g}", str(s.n), f"{100 * s.clean_error:.2f}", f"{100 * s.pgd_error:.2f}", *exact,
                 *(f"{100 * s.verified_error[m]:.2f}" for m in methods), str(s.milps), str(s.unknown),
                 "yes" if s.ordered and not s.violations else f"NO ({s.violations})"]
        lines.append("  ".join(f"{c:>9}" for c in cells))
    return "\n".join(lines)


@reports_errors
def run_certify_command(args: argparse.Namespace) -> int:
    import numpy as np

    from robustmip.certify import CertifySettings, run_certify, summarize
    from robustmip.data import load_dataset
    from robustmip.errors import InvalidInput

    settings = CertifySettings(tuple(args.bounds), args.exact, args.solver, args.timeout, args.threads,
                               args.milp_bounds, args.pgd_steps, args.pgd_restarts, args.seed, args.pgd_always)
    data = load_dataset("test", "embedded" if args.embedded else "auto", args.data_dir)
    indices = args.indices if args.indices is not None else list(range(min(args.n, len(data))))
    bad = [i for i in indices if not 0 <= i < len(data)]
    if bad:
        raise InvalidInput(f"test indices {bad[:5]} are out of range (there are {len(data)} {data.source} images)")
    if len(set(indices)) != len(indices):
        raise InvalidInput("--indices repeats an image")
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out if args.out is not None else Path(scratch) / "rows.jsonl"
        check_writable(out)
        if args.out is not None:
            args.on_interrupt = f"finished rows are kept in {out}; rerun the same command to resume"
        rows = run_certify(args.model, np.asarray(data.images), np.asarray(data.labels), indices, args.eps,
                           settings, out, data_id=f"{data.source}:{data.fingerprint}", workers=args.workers,
                           progress=sys.stderr.isatty())
    if args.json:
        print_json([r.interface() for r in rows])
        return 0
    print(f"{args.model}: {len(indices)} {data.source} MNIST test images; bounds {', '.join(args.bounds)}"
          + (f"; exact ({args.solver}, {args.timeout:g} s per question)" if args.exact else ""))
    print("errors in %: PGD <= exact lo (adversarial) <= exact hi (adversarial + unknown) <= each bound's verified")
    print(summary_table(summarize(rows)))
    return 0
