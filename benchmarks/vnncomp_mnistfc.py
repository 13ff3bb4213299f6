"""VNN-COMP 2022 ``mnist_fc`` side by side: robustmip, alpha-beta-CROWN, Marabou and the 2022 results.

Usage::

    python benchmarks/vnncomp_mnistfc.py [--root DIR] [--quick | --only 256x2] [--tools robustmip,abcrown,marabou]
        [--abcrown ABDIR [--abcrown-python PY] [--abcrown-entry SCRIPT]] [--marabou-python PY]
        [--robustmip-args "--engine auto"] [--name NAME]

``DIR`` (default ``$ROBUSTMIP_VNNCOMP``) is the benchmark folder: ``instances.csv``, ``expected.csv``,
``peers.csv``, ``onnx/``, ``vnnlib/``. Every tool runs every instance as the competition did: one
process per instance, the instance's timeout, wall time counted from the process start (start-up
included). Tools run one after another, never side by side (2 cores), each with one thread unless
its own option says otherwise:

* ``robustmip``: ``robustmip verify-vnnlib NET PROP --timeout T --out FILE`` (plus ``--robustmip-args``);
  its own verification seconds are read from its verdict line (``unsat (3.83 s)``), so the table shows
  verification time and wall time (the difference is start-up: interpreter, imports, loading the net).
  The in-process runner (``robustmip vnncomp``) pays the start-up once per run instead of per instance.
* ``abcrown``: the user's own alpha-beta-CROWN installation (this project contains none of its code):
  ``ABDIR/complete_verifier/abcrown.py`` (or ``--abcrown-entry``, e.g. a launcher of the user's) run by
  ``--abcrown-python`` with its VNN-COMP 2022 mnist_fc configuration (``exp_configs/vnncomp22/
  mnistfc_small.yaml`` for 256x2, ``mnistfc.yaml`` otherwise) switched to the CPU with one OpenMP
  thread and one MIP process; its verification time is the last ``Time:`` line of its log. A missing
  results file (a crash, Gurobi's size-limited licence) is ``error``; a run past the timeout is
  ``timeout`` whatever it printed.
* ``marabou``: ``PY -m maraboupy NET PROP --timeout T`` (``maraboupy`` from the registry, CPU build).
* ``2022``: every 2022 tool's verdict and seconds from ``peers.csv`` (competition hardware).

Results go to ``results/bench/NAME_runs.jsonl`` (one line per tool and instance, resumable: a rerun
only runs what is missing) and ``NAME_table.md`` / ``NAME_table.csv`` (per instance: each tool's
verdict and seconds, the expected verdict, the 2022 best) with counts per net size, contradictions
with ``expected.csv``, and geometric-mean time ratios against alpha-beta-CROWN measured in this run.
Each tool's whole log of each instance is kept as ``results/bench/NAME_work/TOOL_NET_PROP.log``.
``--quick`` runs the first 4 instances of each net (about 10 minutes for robustmip alone).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HARD_KILL_SLACK = 30.0
"""Seconds past an instance's timeout after which a peer process is killed (its answer is then timeout)."""
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def read_csv(path: Path, header: bool = True) -> list[dict] | list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle)) if header else [r for r in csv.reader(handle) if r]


def instances(root: Path, only: str | None, quick: bool, listing: Path | None = None,
              cap: float | None = None) -> list[dict]:
    rows = [{"onnx": r[0].strip(), "vnnlib": r[1].strip(), "timeout": min(float(r[2]), cap or float("inf"))}
            for r in read_csv(listing or root / "instances.csv", header=False)]
    if only:
        rows = [r for r in rows if only in r["onnx"]]
    if quick:
        per_net: dict[str, int] = {}
        picked = []
        for r in rows:
            per_net[r["onnx"]] = per_net.get(r["onnx"], 0) + 1
            if per_net[r["onnx"]] <= 4:
                picked.append(r)
        rows = picked
    return rows


def _run(command: list[str], timeout: float, env: dict | None = None, cwd: Path | None = None) -> tuple[str, float, int]:
    """Run ``command``; return (combined output, wall seconds, exit code; -9 when killed at the hard limit)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout + HARD_KILL_SLACK,
                              env={**os.environ, **(env or {})}, cwd=cwd)
        return done.stdout + done.stderr, time.perf_counter() - start, done.returncode
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return out, time.perf_counter() - start, -9


def _past_timeout(verdict: str, wall: float, timeout: float) -> str:
    return "timeout" if verdict in ("sat", "unsat") and wall > timeout + HARD_KILL_SLACK else verdict


def run_robustmip(root: Path, inst: dict, work: Path, extra: list[str]) -> dict:
    out = work / "robustmip.txt"
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "robustmip", "verify-vnnlib", str(root / inst["onnx"]), str(root / inst["vnnlib"]),
               "--timeout", f"{inst['timeout']:g}", "--out", str(out), *extra]
    log, wall, code = _run(command, inst["timeout"], THREAD_ENV)
    verdict = out.read_text().split("\n", 1)[0].strip() if out.is_file() else "error"
    match = re.search(r"^(sat|unsat|timeout|unknown) \(([0-9.]+) s\)", log, re.MULTILINE)
    return {"verdict": verdict if code != -9 else "timeout", "wall_s": wall,
            "verify_s": float(match.group(2)) if match else None, "exit": code, "log_tail": log[-500:], "log": log}


def run_abcrown(root: Path, inst: dict, work: Path, args: argparse.Namespace) -> dict:
    # alpha-beta-CROWN runs inside complete_verifier/: every path it gets must be absolute.
    root, work = root.resolve(), work.resolve()
    complete = Path(args.abcrown).resolve() / "complete_verifier"
    config = complete / "exp_configs" / "vnncomp22" / ("mnistfc_small.yaml" if "256x2" in inst["onnx"] else "mnistfc.yaml")
    entry = Path(args.abcrown_entry).resolve() if args.abcrown_entry else complete / "abcrown.py"
    out = work / "abcrown.txt"
    out.unlink(missing_ok=True)
    command = [args.abcrown_python, str(entry), "--config", str(config), "--device", "cpu", "--mip_multi_proc", "1",
               "--mip_threads", "1", "--onnx_path", str(root / inst["onnx"]), "--vnnlib_path", str(root / inst["vnnlib"]),
               "--timeout", f"{inst['timeout']:g}", "--results_file", str(out), "--cex_path", str(work / "abcrown.cex"),
               "--save_adv_example"]
    log, wall, code = _run(command, inst["timeout"], THREAD_ENV, cwd=complete)
    verdict = out.read_text().split("\n", 1)[0].strip() if out.is_file() and out.read_text().strip() else "error"
    if code == -9:
        verdict = "timeout"
    times = re.findall(r"^Time: ([0-9.]+)$", log, re.MULTILINE)
    licence = "Model too large for size-limited license" in log
    return {"verdict": _past_timeout(verdict, wall, inst["timeout"]), "wall_s": wall,
            "verify_s": float(times[-1]) if times else None, "exit": code,
            "note": "Gurobi size-limited licence refused a model" if licence else "", "log_tail": log[-500:],
            "log": log}


def run_marabou(root: Path, inst: dict, work: Path, python: str) -> dict:
    command = [python, "-m", "maraboupy", str(root / inst["onnx"]), str(root / inst["vnnlib"]),
               "--timeout", f"{inst['timeout']:g}"]
    log, wall, code = _run(command, inst["timeout"], THREAD_ENV)
    last = [line.strip().lower() for line in log.splitlines() if line.strip()][-1:] or [""]
    verdict = {"sat": "sat", "unsat": "unsat", "timeout": "timeout"}.get(last[0], "error" if code else "unknown")
    return {"verdict": _past_timeout(verdict, wall, inst["timeout"]) if code != -9 else "timeout", "wall_s": wall,
            "verify_s": None, "exit": code, "log_tail": log[-300:], "log": log}


def load_runs(path: Path) -> dict[tuple[str, str, str], dict]:
    runs = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            runs[(row["tool"], row["onnx"], row["vnnlib"])] = row
    return runs


def contradicts(verdict: str, expected: str) -> bool:
    return {verdict, expected} == {"sat", "unsat"}


def geomean(values: list[float]) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(statistics.mean(math.log(v) for v in values)) if values else None


def write_tables(root: Path, todo: list[dict], runs: dict, tools: list[str], out: Path) -> None:
    expected = {(r["onnx"], r["vnnlib"]): r["expected"] for r in read_csv(root / "expected.csv")}
    peers: dict[tuple[str, str], list[dict]] = {}
    if (root / "peers.csv").is_file():
        for r in read_csv(root / "peers.csv"):
            peers.setdefault((r["onnx"], r["vnnlib"]), []).append(r)
    header = ["net", "property", "expected"] + [f"{t} {k}" for t in tools for k in ("verdict", "verify s", "wall s")]
    header += ["2022 abcrown", "2022 solved by"]
    lines, csv_rows = [], []
    for inst in todo:
        key = (inst["onnx"], inst["vnnlib"])
        row = [Path(inst["onnx"]).stem.replace("mnist-net_", ""), Path(inst["vnnlib"]).stem, expected.get(key, "")]
        for tool in tools:
            r = runs.get((tool, *key))
            row += ["-", "", ""] if r is None else [
                r["verdict"] + (" WRONG" if contradicts(r["verdict"], expected.get(key, "")) else ""),
                "" if r.get("verify_s") is None else f"{r['verify_s']:.2f}", f"{r['wall_s']:.1f}"]
        ab = next((p for p in peers.get(key, []) if p["tool"] == "alpha_beta_crown"), None)
        row.append("" if ab is None else f"{ab['result']} {float(ab['seconds']):.1f}")
        row.append(str(sum(p["result"] in ("sat", "unsat") and not contradicts(p["result"], expected.get(key, ""))
                           for p in peers.get(key, []))))
        csv_rows.append(row)
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in csv_rows]
    lines.append("")
    nets = sorted({inst["onnx"] for inst in todo})
    lines.append("| net | tool | solved | sat | unsat | wrong | timeout/unknown/error | geo-mean ratio verify (abcrown / tool) | geo-mean ratio wall (abcrown / tool) |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for net in nets:
        for tool in tools:
            rs = [runs.get((tool, i["onnx"], i["vnnlib"])) for i in todo if i["onnx"] == net]
            rs = [r for r in rs if r is not None]
            if not rs:
                continue
            sat = sum(r["verdict"] == "sat" for r in rs)
            unsat = sum(r["verdict"] == "unsat" for r in rs)
            wrong = sum(contradicts(r["verdict"], expected.get((r["onnx"], r["vnnlib"]), "")) for r in rs)
            ratios_v, ratios_w = [], []
            for r in rs:
                ab = runs.get(("abcrown", r["onnx"], r["vnnlib"]))
                if tool != "abcrown" and ab and ab.get("verdict") in ("sat", "unsat") and r["verdict"] in ("sat", "unsat"):
                    if ab.get("verify_s") and r.get("verify_s"):
                        ratios_v.append(ab["verify_s"] / r["verify_s"])
                    ratios_w.append(ab["wall_s"] / r["wall_s"])
            gv, gw = geomean(ratios_v), geomean(ratios_w)
            lines.append(f"| {Path(net).stem} | {tool} | {sat + unsat}/{len(rs)} | {sat} | {unsat} | {wrong} | "
                         f"{len(rs) - sat - unsat} | {'' if gv is None else f'{gv:.2f} ({len(ratios_v)})'} | "
                         f"{'' if gw is None else f'{gw:.2f} ({len(ratios_w)})'} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    with out.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(csv_rows)
    print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.environ.get("ROBUSTMIP_VNNCOMP"), help="the mnist_fc folder")
    parser.add_argument("--name", default="vnncomp_mnistfc", help="result files results/bench/NAME_*")
    parser.add_argument("--tools", default="robustmip", help="comma list of robustmip, abcrown, marabou")
    parser.add_argument("--only", help="instances whose ONNX name contains this (e.g. 256x2)")
    parser.add_argument("--quick", action="store_true", help="the first 4 instances of each net")
    parser.add_argument("--instances", type=Path, help="an instances.csv of one's own (paths relative to --root)")
    parser.add_argument("--timeout-cap", type=float, help="at most this many seconds per instance (all tools)")
    parser.add_argument("--robustmip-args", default="", help="extra flags for robustmip verify-vnnlib")
    parser.add_argument("--abcrown", help="the user's alpha-beta-CROWN checkout (holds complete_verifier/)")
    parser.add_argument("--abcrown-python", default="python3", help="interpreter with alpha-beta-CROWN's dependencies")
    parser.add_argument("--abcrown-entry", help="script to run instead of complete_verifier/abcrown.py (same arguments)")
    parser.add_argument("--marabou-python", default="python3", help="interpreter with maraboupy installed")
    parser.add_argument("--table-only", action="store_true", help="print the tables of what is done, run nothing")
    args = parser.parse_args()
    if not args.root or not (Path(args.root) / "instances.csv").is_file():
        print("no benchmark: pass --root DIR (the VNN-COMP mnist_fc folder with instances.csv) or set ROBUSTMIP_VNNCOMP",
              file=sys.stderr)
        return 2
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - {"robustmip", "abcrown", "marabou"}
    if unknown or ("abcrown" in tools and not args.abcrown):
        print(f"unknown tools {sorted(unknown)}" if unknown else "--tools abcrown needs --abcrown DIR", file=sys.stderr)
        return 2
    root = Path(args.root).resolve()
    out_dir = Path("results/bench")
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_path = out_dir / f"{args.name}_runs.jsonl"
    runs = load_runs(runs_path)
    todo = instances(root, args.only, args.quick, args.instances, args.timeout_cap)
    work = out_dir / f"{args.name}_work"
    work.mkdir(exist_ok=True)
    extra = shlex.split(args.robustmip_args)
    if not args.table_only:
        for tool in tools:
            for inst in todo:
                if (tool, inst["onnx"], inst["vnnlib"]) in runs:
                    continue
                if tool == "robustmip":
                    result = run_robustmip(root, inst, work, extra)
                elif tool == "abcrown":
                    result = run_abcrown(root, inst, work, args)
                else:
                    result = run_marabou(root, inst, work, args.marabou_python)
                log = result.pop("log", "")
                (work / f"{tool}_{Path(inst['onnx']).stem}_{Path(inst['vnnlib']).stem}.log").write_text(log)
                row = {"tool": tool, **inst, **result, "settings": args.robustmip_args if tool == "robustmip" else ""}
                with runs_path.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                runs[(tool, inst["onnx"], inst["vnnlib"])] = row
                print(f"{tool:<9} {Path(inst['onnx']).stem:<18} {Path(inst['vnnlib']).stem:<14} {result['verdict']:<8} "
                      f"wall {result['wall_s']:7.1f} s", flush=True)
    write_tables(root, todo, runs, tools, out_dir / f"{args.name}_table")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
