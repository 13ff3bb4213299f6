"""The report of the pruning-robustness study: ``report.md``, CSVs and PNGs, published figures beside ours.

Everything here reads what the stages of :mod:`robustmip.studies.prune_robustness` computed (rows,
checkpoints, ``calibration.json``, ``neurons.json``) and presents it; the only computations are
counts, statistics and the paired bootstrap (:mod:`robustmip.studies.paired`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from robustmip.attacks import clean_accuracy
from robustmip.data import Dataset
from robustmip.io.checkpoint import load_checkpoint
from robustmip.pruning.prune import hidden_widths
from robustmip.report import (
    STAT_COLUMNS,
    confusion,
    count_by,
    describe,
    markdown_table,
    plot_bars,
    plot_confusions,
    plot_curves,
    plot_histograms,
    plot_image_grid,
    write_csv,
)
from robustmip.studies import prune_robustness as study
from robustmip.studies.paired import Interval, paired_bootstrap
from robustmip.studies.runs import stage_seconds

NET_LABELS = {"original": "original", study.CONTROL_NET: "original + retraining (control)", "pruned": "pruned",
              study.ROBUST_NET: "robustness-aware pruned"}
COPIED = ("report.md", "config.json", "summary.json", "calibration.json", "timings.json")


def _rows(rows: list[dict], net: str | None = None, eps: float | None = None, seed: int | None = None) -> list[dict]:
    return [r for r in rows if (net is None or r["net"] == net) and (eps is None or r["eps"] == eps)
            and (seed is None or r["seed"] == seed)]


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else float("nan")


def _fmt(interval: Interval | None, scale: float = 1.0) -> str:
    if interval is None:
        return "no data"
    return f"{scale * interval.estimate:+.3g} [{scale * interval.low:+.3g}, {scale * interval.high:+.3g}]"


def paired_units(rows: list[dict], a: str, b: str, eps: float, cfg: study.StudyConfig) -> dict:
    """Per (seed, image) present for both nets: adversarial counts of each, and mean OFVs where all of the
    image's rows of both nets are optimal. Returns lists ``count_a, count_b, strata, ofv_a, ofv_b, ofv_strata``."""
    by = {}
    for r in _rows(rows, eps=eps):
        if r["net"] in (a, b):
            by.setdefault((r["seed"], r["image"]), {}).setdefault(r["net"], []).append(r)
    out = {k: [] for k in ("count_a", "count_b", "strata", "ofv_a", "ofv_b", "ofv_strata")}
    for (seed, _), nets in sorted(by.items()):
        if a not in nets or b not in nets:
            continue
        out["count_a"].append(sum(r["status"] == "adversarial" for r in nets[a]))
        out["count_b"].append(sum(r["status"] == "adversarial" for r in nets[b]))
        out["strata"].append(seed)
        if all(study.row_optimal(r, cfg) for r in nets[a] + nets[b]):
            out["ofv_a"].append(float(np.mean([r["ofv"] for r in nets[a]])))
            out["ofv_b"].append(float(np.mean([r["ofv"] for r in nets[b]])))
            out["ofv_strata"].append(seed)
    return out


def paired_differences(rows: list[dict], a: str, b: str, eps: float, cfg: study.StudyConfig) -> dict:
    """``b - a`` per image: adversarial count (per image, of 9 targets) and mean OFV, with bootstrap intervals
    stratified by seed, and the per-seed estimates."""
    units = paired_units(rows, a, b, eps, cfg)
    boot = {"samples": cfg.bootstrap_samples, "seed": cfg.bootstrap_seed}
    count = (paired_bootstrap(units["count_a"], units["count_b"], strata=units["strata"], **boot)
             if units["strata"] else None)
    ofv = (paired_bootstrap(units["ofv_a"], units["ofv_b"], strata=units["ofv_strata"], **boot)
           if units["ofv_strata"] else None)
    per_seed = {}
    for seed in sorted(set(units["strata"])):
        d = [cb - ca for ca, cb, s in zip(units["count_a"], units["count_b"], units["strata"]) if s == seed]
        per_seed[seed] = float(np.mean(d))
    return {"count": count, "ofv": ofv, "per_seed_count": per_seed, "images": len(units["strata"]),
            "ofv_images": len(units["ofv_strata"])}


def robustness_claim(diff: dict) -> str:
    """Whether "``b`` is more robust than ``a``" holds: fewer adversarial pairs and/or larger margins."""
    count, ofv = diff["count"], diff["ofv"]
    if count is None:
        return "no data"
    signs = (count.sign(), ofv.sign() if ofv is not None else 0)
    if signs[0] < 0 or (signs[0] == 0 and signs[1] > 0):
        return "holds" if signs[1] >= 0 else "mixed"
    if signs[0] > 0 or signs[1] < 0:
        return "refuted (less robust)" if signs[0] >= 0 and signs[1] <= 0 else "mixed"
    return "not shown (both intervals contain 0)"


def _stage_table(cfg: study.StudyConfig, rows: list[dict]) -> list[str]:
    timings = stage_seconds(cfg.run_dir)
    stage_rows = [[stage, f"{timings[stage]['seconds']:.0f}", timings[stage]["invocations"]]
                  for stage in study.STAGES if stage in timings]
    split = {k: sum(r[k] for r in rows) for k in ("bounds_s", "build_s", "solve_s", "decision_s")}
    total = sum(split.values())
    attempts = {n: sum(r["attempts"] == n for r in rows) for n in sorted({r["attempts"] for r in rows})}
    return ["## Wall time (s, this machine)", "", markdown_table(["stage", "seconds", "invocations"], stage_rows), "",
            "Optimisation CPU seconds summed over rows (each job runs on one core): "
            + ", ".join(f"{k[:-2]} {v:.0f} ({_pct(v, total):.0f} %)" for k, v in split.items())
            + f". Attempts per optimisation (time-ladder rungs used): {attempts}.", ""]


def _status_table(cfg: study.StudyConfig, rows: list[dict], nets: list[str], eps_list: list[float],
                  seeds: list[int]) -> tuple[list[str], list[list]]:
    header = ["seed", "net", "eps", "MILPs", "adversarial", "adversarial %", "published %", "robust", "unknown",
              "optimal", "not optimal", "decided by a decision MILP", "mean s", "max s"]
    table = []
    for eps in eps_list:
        for net in nets:
            for seed in seeds:
                sub = _rows(rows, net, eps, seed)
                if not sub:
                    continue
                adv = sum(r["status"] == "adversarial" for r in sub)
                optimal = sum(study.row_optimal(r, cfg) for r in sub)
                published = (_pct(study.PUBLISHED[f"adversarial_{net}"], study.PUBLISHED_MILPS)
                             if net in study.NETS else "")
                times = [r["time_s"] for r in sub]
                table.append([seed, net, eps, len(sub), adv, _pct(adv, len(sub)), published,
                              sum(r["status"] == "robust" for r in sub), sum(r["status"] == "unknown" for r in sub),
                              optimal, len(sub) - optimal, sum(r["decision_status"] is not None for r in sub),
                              float(np.mean(times)), float(np.max(times))])
    return header, table


def _calibration_section(cfg: study.StudyConfig, calibrated: dict | None, rows: list[dict], eps_list: list[float],
                         seeds: list[int], out: Path) -> list[str]:
    if not calibrated:
        return []
    grid = calibrated["grid"]
    mean = {net: [float(np.mean([calibrated["rates"][f"{s}/{net}"][str(e)] for s in seeds])) for e in grid]
            for net in study.NETS}
    exact = {net: [float(np.mean([_pct(sum(r["status"] == "adversarial" for r in _rows(rows, net, e, s)),
                                       len(_rows(rows, net, e, s))) for s in seeds])) for e in eps_list]
             for net in study.NETS}
    plot_curves({f"Calibration: PGD rate (mean of {len(seeds)} seeds) and exact MILP rate":
                 ([(f"{net} targeted PGD", grid, [100 * v for v in mean[net]], "-") for net in study.NETS],
                  [(f"{net} exact (MILP)", eps_list, exact[net]) for net in study.NETS])},
                "eps (l-inf)", "adversarial (image, target) pairs, %", out / "rate_vs_eps.png",
                references=[("h", 100 * study.PUBLISHED_RATE, "published original (148/900)"),
                            ("v", calibrated["eps"], f"calibrated eps {calibrated['eps']:g}")])
    table = [[e, 100 * mean["original"][k], 100 * mean["pruned"][k]] for k, e in enumerate(grid)]
    write_csv(out / "calibration.csv", ["eps", "pgd_rate_original_pct", "pgd_rate_pruned_pct"], table)
    return ["## Calibrated eps", "",
            f"Targeted PGD ({calibrated['attack']['steps']} steps, {calibrated['attack']['restarts']} restarts) on "
            f"the first {calibrated['images']} test images every net classifies correctly, 9 targets each, over "
            f"eps {grid[0]:g}..{grid[-1]:g}: the originals' mean rate is nearest the published "
            f"{100 * study.PUBLISHED_RATE:.1f} % (148/900) at **eps {calibrated['eps']:g}** "
            f"({100 * calibrated['rate_at_eps']:.1f} %). PGD finds a subset of the adversarial pairs, so the exact "
            "rate on the same images is at least as high (dots: the exact MILP rates on the study's "
            "images). Table: `calibration.csv`.", "",
            "![rate vs eps](rate_vs_eps.png)", ""]


def _paired_section(cfg: study.StudyConfig, rows: list[dict], a: str, b: str, eps_list: list[float],
                    title: str, out: Path, csv_name: str) -> tuple[list[str], dict]:
    table, claims = [], {}
    for eps in eps_list:
        diff = paired_differences(rows, a, b, eps, cfg)
        claims[eps] = {"claim": robustness_claim(diff), "count": diff["count"] and diff["count"].to_dict(),
                       "ofv": diff["ofv"] and diff["ofv"].to_dict(), "per_seed_count": diff["per_seed_count"]}
        per_seed = ", ".join(f"{s}: {100 * v:+.3g}" for s, v in diff["per_seed_count"].items())
        table.append([eps, diff["images"], _fmt(diff["count"], 100.0), per_seed, diff["ofv_images"],
                      _fmt(diff["ofv"]), claims[eps]["claim"]])
    header = ["eps", "images (all seeds)", "Δ adversarial per 900 MILPs [95 % CI]", "per seed",
              "images with every OFV optimal", "Δ mean OFV [95 % CI]", f"'{b} is more robust'"]
    write_csv(out / csv_name, header, table)
    lines = [f"## {title}", "",
             f"Paired over test images: per image, {b} minus {a} (adversarial targets of 9; mean OFV over the 9 "
             f"targets). Estimates weigh seeds equally; 95 % percentile bootstrap over images within seeds "
             f"({cfg.bootstrap_samples} resamples, seed {cfg.bootstrap_seed}). A count interval below 0, or an "
             "OFV interval above 0, says the second net is more robust.", "", markdown_table(header, table), ""]
    return lines, claims


def _fig3_section(rows: list[dict], eps: float, out: Path) -> list[str]:
    lines = []
    for field_name, title in (("label", "original label"), ("target", "target label")):
        per = {net: count_by(_rows(rows, net, eps), field_name) for net in study.NETS}
        published = study.PUBLISHED_FIG3[field_name]
        table = []
        for c in range(10):
            milps = per["original"][c]["milps"] + per["pruned"][c]["milps"]
            ours = per["original"][c]["adversarial"] + per["pruned"][c]["adversarial"]
            count, p_orig, p_pruned = published[c]
            table.append([c, count, p_orig, p_pruned, (p_orig + p_pruned) / count, milps,
                          per["original"][c]["adversarial"], per["pruned"][c]["adversarial"],
                          ours / milps if milps else float("nan")])
        header = [title, "published MILPs", "published adv original", "published adv pruned", "published rate",
                  "MILPs", "adv original", "adv pruned", "rate"]
        write_csv(out / f"per_{field_name}.csv", header, table)
        plot_bars(list(range(10)),
                  {"published": [row[4] for row in table], f"ours, eps {eps:g}": [row[8] for row in table]},
                  title, "adversarial rate (both nets)", f"Fig. 3: success rate per {title}",
                  out / f"fig3_{field_name}.png")
        lines += [f"## Per {title} at eps {eps:g}, all seeds (Fig. 3, published beside ours)", "",
                  markdown_table(header, table), "", f"![fig3 {field_name}](fig3_{field_name}.png)", ""]
    return lines


def _fig4_section(cfg: study.StudyConfig, rows: list[dict], eps_list: list[float], out: Path) -> list[str]:
    table = []
    for (outcome, quantity), values in study.PUBLISHED_FIG4.items():
        table.append([outcome, quantity, "published (both nets)", *values])
        pick = "adversarial" if outcome == "successful" else "robust"
        for eps in eps_list:
            chosen = [r for r in _rows(rows, eps=eps) if r["net"] in study.NETS and r["status"] == pick]
            if quantity == "ofv":
                chosen = [r for r in chosen if study.row_optimal(r, cfg)]
            d = describe([r[quantity] for r in chosen])
            table.append([outcome, quantity, f"ours, eps {eps:g} (both nets, all seeds)",
                          *[d[k] for k in STAT_COLUMNS]])
    header = ["outcome", "quantity", "source", *STAT_COLUMNS]
    write_csv(out / "ofv_time_stats.csv", header, table)
    lines = ["## OFV and generation time (Fig. 4, published beside ours), confusion matrices (Fig. 2b)", "",
             "OFV statistics use optimal rows only. Our time per optimisation counts its PGD search and every "
             "solve of its ladder, plus, on each image's first target, the image's bounds and model building. "
             "The paper's Fig. 2b matrix is not in its text (its row and column sums are Fig. 3's counts).", "",
             markdown_table(header, table), ""]
    for eps in eps_list:
        nets = [n for n in NET_LABELS if _rows(rows, n, eps)]
        plot_histograms({f"{NET_LABELS[n]}": [r["ofv"] for r in _rows(rows, n, eps) if study.row_optimal(r, cfg)]
                         for n in nets}, "optimal OFV (z_label - z_target); < 0: adversarial",
                        f"eps {eps:g}, all seeds", out / f"ofv_eps{eps:g}.png")
        plot_histograms({f"{NET_LABELS[n]}": [r["time_s"] for r in _rows(rows, n, eps)] for n in nets},
                        "seconds per optimisation", f"eps {eps:g}, all seeds", out / f"time_eps{eps:g}.png", log=True)
        plot_confusions({NET_LABELS[n]: confusion(_rows(rows, n, eps)) for n in nets},
                        f"Adversarial pairs at eps {eps:g}, all seeds (shared colour scale)",
                        out / f"confusion_eps{eps:g}.png")
        lines += [f"![ofv eps {eps:g}](ofv_eps{eps:g}.png) ![time eps {eps:g}](time_eps{eps:g}.png)",
                  f"![confusion eps {eps:g}](confusion_eps{eps:g}.png)", ""]
    return lines


def _transfer_section(transfer: dict, eps_list: list[float], seeds: list[int], out: Path) -> list[str]:
    table = []
    for eps in eps_list:
        for judge, source, key in (("original", "pruned", "reverse_original_on_pruned"),
                                   ("pruned", "original", "reverse_pruned_on_original")):
            entries = [transfer[f"{s}/{judge}_on_{source}@{eps}"] for s in seeds]
            examples = sum(e["examples"] for e in entries)
            correct = sum(e["accuracy"] * e["examples"] / 100 for e in entries if e["examples"])
            per_seed = ", ".join(f"{e['accuracy']:.3g} ({e['examples']})" for e in entries)
            table.append([f"{judge} on {source}'s examples", eps, study.PUBLISHED[key], _pct(correct, examples),
                          examples, per_seed])
    header = ["accuracy of", "eps", "published %", "ours % (all seeds)", "examples", "per seed % (examples)"]
    write_csv(out / "reverse_testing.csv", header, table)
    return ["## Reverse testing accuracy (Fig. 1, right)", "", markdown_table(header, table), ""]


def _neurons_section(cfg: study.StudyConfig, neurons: dict, out: Path) -> tuple[list[str], dict]:
    table, summaries = [], {}
    for seed, entry in neurons.items():
        summary = study.neuron_sets(entry, cfg.critical_level)
        summaries[seed] = summary
        for what, c in summary["compare"].items():
            table.append([seed, what, c["size_a"], c["size_b"], c["common"], c["jaccard"],
                          " / ".join(f"{j:.2f}" for j in c["jaccard_per_layer"])])
    header = ["seed", "sets compared", "size A", "size B", "common", "Jaccard", "Jaccard per layer"]
    write_csv(out / "critical_neurons.csv", header, table)
    kept = [[seed, *(f"{100 * s['kept_by_pruning'].get(k, float('nan')):.0f} %" for k in ("clean", "adversarial"))]
            for seed, s in summaries.items()]
    first = next(iter(neurons.values()), {"eps": None, "clean_images": []})
    lines = ["## Critical neurons for accuracy and for robustness (the paper's questions 1-2)", "",
             f"MIP importance scores (lambda {cfg.prune_lambda}) of each net on clean test images and on its own "
             f"MILP counterexamples at eps {first['eps']} (true labels; at most {cfg.adv_importance_images}, one per "
             "image, the lowest-OFV target, each re-checked in float64 before use); the clean batch is the "
             "clean originals of the original net's counterexamples, so the two batches differ only by the "
             f"perturbation. A neuron is critical when its score is >= {cfg.critical_level}. `pruning batch`: "
             "the class-balanced clean batch that chose the pruning. Pruned nets' neurons are named by their "
             "index in the original.", "", markdown_table(header, table), "",
             "Share of the original's critical neurons that pruning kept:", "",
             markdown_table(["seed", "critical for accuracy (clean)", "critical for robustness (adversarial)"], kept),
             ""]
    return lines, summaries


def _sweep_section(cfg: study.StudyConfig, nets: dict, rows: list[dict], sweep: list[str], eps: float,
                   test_set: Dataset, out: Path) -> list[str]:
    if not sweep:
        return []
    seed = cfg.seeds[0]
    images = sorted({r["image"] for r in _rows(rows, sweep[0], eps, seed)})
    points = [("original", None), (study.CONTROL_NET, 0.0), ("pruned", cfg.prune_threshold)]
    points = [p for p in points if p[0] in nets[seed]] + [(n, float(n[len("sweep_t"):])) for n in sweep]
    table = []
    for name, threshold in sorted(points, key=lambda p: -1.0 if p[1] is None else p[1]):
        model, meta = load_checkpoint(nets[seed][name])
        sub = [r for r in _rows(rows, name, eps, seed) if r["image"] in images]
        adv = sum(r["status"] == "adversarial" for r in sub)
        table.append([name, "not retrained" if threshold is None else threshold, meta.arch,
                      sum(hidden_widths(model)), 100 * clean_accuracy(model, test_set.images, test_set.labels),
                      100 * study.pgd_accuracy(cfg, nets[seed][name], test_set, eps), _pct(adv, len(sub)), len(sub),
                      sum(study.row_optimal(r, cfg) for r in sub)])
    header = ["net", "threshold", "arch", "neurons kept", "accuracy %", f"PGD accuracy % (eps {eps:g})",
              f"exact adversarial % (eps {eps:g})", "MILPs", "optimal"]
    write_csv(out / "sparsity_sweep.csv", header, table)
    kept = [row[3] for row in table]
    curves = [("clean accuracy", 4), (f"PGD accuracy (eps {eps:g}, first {cfg.pgd_eval_images} test images)", 5),
              (f"exact adversarial rate (eps {eps:g}, {len(images)} images x 9 targets)", 6)]
    plot_curves({f"Sparsity sweep, seed {seed}: thresholds of the same MIP scores":
                 ([(label, kept, [row[k] for row in table], "-") for label, k in curves],
                  [(label, kept, [row[k] for row in table]) for label, k in curves])},
                "hidden neurons kept", "%", out / "sparsity_sweep.png")
    return ["## Sparsity sweep", "",
            f"Seed {seed}: the plain pruning's importance scores cut at several thresholds, each net PGD-retrained "
            f"for {cfg.retrain_epochs} epochs; accuracy on the whole test set, PGD accuracy on the first "
            f"{cfg.pgd_eval_images}, exact adversarial rate over {len(images)} images x 9 targets.", "",
            markdown_table(header, table), "", "![sparsity sweep](sparsity_sweep.png)", ""]


def _accuracy_table(nets: dict, test_set: Dataset) -> tuple[list[str], dict]:
    accuracy, table = {}, []
    for seed, per_seed in nets.items():
        for name in NET_LABELS:
            if name in per_seed:
                model, meta = load_checkpoint(per_seed[name])
                accuracy[f"{seed}/{name}"] = 100 * clean_accuracy(model, test_set.images, test_set.labels)
                before = meta.metrics.get("accuracy_before_retraining")
                table.append([seed, NET_LABELS[name], meta.arch, study.PUBLISHED.get(f"accuracy_{name}", ""),
                              accuracy[f"{seed}/{name}"], "" if before is None else 100 * before])
    header = ["seed", "net", "arch", "published %", "ours %", "before retraining %"]
    return ["## Accuracy (%)", "", markdown_table(header, table), ""], accuracy


def _findings(cfg, calibrated, claims, control_claims, robust_claims, rows, neuron_summaries) -> list[str]:
    unknown = sum(r["status"] == "unknown" for r in rows)
    open_rows = sum(not study.row_optimal(r, cfg) for r in rows)
    lines = ["## Findings", ""]
    if calibrated:
        lines.append(f"- Calibrated eps: **{calibrated['eps']:g}** (originals' targeted PGD rate "
                     f"{100 * calibrated['rate_at_eps']:.1f} % vs the published 16.4 %).")
    for eps, c in claims.items():
        count, ofv = c["count"], c["ofv"]
        lines.append(f"- eps {eps:g}: 'the pruned net is more robust' **{c['claim']}**"
                     + (f" (Δ adversarial per 900 MILPs {100 * count['estimate']:+.3g}, 95 % CI "
                        f"[{100 * count['low']:+.3g}, {100 * count['high']:+.3g}], published -9" if count else "")
                     + (f"; Δ mean OFV {ofv['estimate']:+.3g} [{ofv['low']:+.3g}, {ofv['high']:+.3g}]" if ofv else "")
                     + (")." if count else "."))
    for eps, c in control_claims.items():
        lines.append(f"- eps {eps:g}: pruned more robust than the original retrained the same way (control): "
                     f"**{c['claim']}**.")
    for eps, c in robust_claims.items():
        lines.append(f"- eps {eps:g}: robustness-aware pruning more robust than plain pruning: **{c['claim']}**.")
    jaccards = [s["compare"]["accuracy vs robustness, original"]["jaccard"] for s in neuron_summaries.values()
                if "accuracy vs robustness, original" in s["compare"]]
    if jaccards:
        lines.append(f"- Critical neurons for accuracy vs robustness (original): Jaccard "
                     f"{', '.join(f'{j:.2f}' for j in jaccards)} (per seed).")
    lines.append(f"- Rows: {len(rows)} optimisations, {unknown} `unknown`, {open_rows} without a closed gap "
                 f"(optimal: relative gap <= {cfg.mip_gap:g} or absolute gap <= {cfg.abs_gap:g}), engine "
                 f"`{cfg.engine}` with {cfg.solver}.")
    return lines + [""]


def write_report(cfg: study.StudyConfig, nets: dict, rows: list[dict], transfer: dict, calibrated: dict | None,
                 neurons: dict, sweep: list[str], eps_list: list[float], focus_eps: float, test_set: Dataset,
                 wall_seconds: float) -> dict:
    """``report.md`` with every table (published vs ours), the CSVs and the PNGs; returns the summary."""
    out = cfg.run_dir
    seeds = list(nets)
    main_rows = [r for r in rows if r["net"] in NET_LABELS]
    metas = {name: load_checkpoint(path)[1] for name, path in nets[seeds[0]].items()}
    lines = [f"# Pruning and robustness: run `{cfg.run}`", "",
             f"Data: {test_set.source} MNIST test set ({len(test_set)} images). Seeds {seeds}; nets: original "
             f"`{metas['original'].arch}` (PGD-trained, eps {cfg.train_eps}), pruned by MIP importance "
             f"(threshold {cfg.prune_threshold}, lambda {cfg.prune_lambda}) and PGD-retrained"
             + (", robustness-aware pruned" if cfg.robust_prune else "")
             + f". Optimisations: engine `{cfg.engine}` ({cfg.solver}, {cfg.bounds} bounds, "
             f"PGD start: {cfg.pgd_start}), "
             f"time ladder {', '.join(f'{t:g}' for t in cfg.ladder)} s until the gap closes (relative "
             f"{cfg.mip_gap:g}, or absolute {cfg.abs_gap:g}), then a decision MILP of up to {cfg.decision_seconds:g} s "
             f"if still open; {cfg.images} images x 9 targets per net, seed and eps {eps_list}.", ""]
    claims_lines, claims = _paired_section(cfg, main_rows, "original", "pruned", eps_list,
                                           "Is the pruned net more robust? Paired differences (pruned - original)",
                                           out, "paired_pruned_vs_original.csv")
    robust_lines, robust_claims, control_lines, control_claims = [], {}, [], {}
    if cfg.retrain_control:
        control_lines, control_claims = _paired_section(
            cfg, main_rows, study.CONTROL_NET, "pruned", [focus_eps],
            "Pruning itself: pruned - original retrained the same way (control)", out, "paired_pruned_vs_control.csv")
    if cfg.robust_prune:
        robust_lines, robust_claims = _paired_section(
            cfg, main_rows, "pruned", study.ROBUST_NET, [focus_eps],
            "Robustness-aware vs plain pruning: paired differences (robustness-aware - plain)", out,
            "paired_robust_vs_plain.csv")
        used = {seed: load_checkpoint(per_seed[study.ROBUST_NET])[1].train_config["adversarial_images"]
                for seed, per_seed in nets.items()}
        robust_lines[-1:-1] = ["", f"Importance batch of the robustness-aware pruning: the {10 * cfg.images_per_class} "
                               f"clean images of the plain one plus the original's re-checked counterexamples at eps "
                               f"{focus_eps:g} (one per image, at most {cfg.adv_importance_images}): "
                               + ", ".join(f"seed {s}: {n}" for s, n in used.items())
                               + ". With none, the two prunings coincide."]
    neuron_lines, neuron_summaries = _neurons_section(cfg, neurons, out)
    accuracy_lines, accuracy = _accuracy_table(nets, test_set)
    header, table = _status_table(cfg, rows, list(NET_LABELS) + sweep, eps_list, seeds)
    write_csv(out / "adversarial_counts.csv", header, table)
    lines += _findings(cfg, calibrated, claims, control_claims, robust_claims, rows, neuron_summaries)
    lines += _stage_table(cfg, rows)
    lines += accuracy_lines
    lines += _calibration_section(cfg, calibrated, main_rows, eps_list, seeds, out)
    lines += ["## Adversarial pairs found by the exact optimisation (Fig. 1, left)", "",
              "Every adversarial pair's counterexample passed a float64 forward-pass re-check; `robust` rows have "
              "a proven bound > 0. `optimal`: the gap closed. Published: 148 (original) and 139 (pruned) of 900.", "",
              markdown_table(header, table), ""]
    lines += claims_lines + control_lines + robust_lines
    lines += _transfer_section(transfer, eps_list, seeds, out)
    lines += neuron_lines
    lines += _sweep_section(cfg, nets, rows, sweep, focus_eps, test_set, out)
    lines += _fig3_section(main_rows, focus_eps, out)
    lines += _fig4_section(cfg, main_rows, eps_list, out)
    for net in study.NETS:
        x_adv, _, originals, used = study.adversarial_examples(cfg, rows, seeds[0], net, focus_eps, test_set)
        pairs = [(originals[k], x_adv[k], f"{r['label']}->{r['predicted']}") for k, r in enumerate(used[:10])]
        plot_image_grid(pairs, f"{net}, seed {seeds[0]}, eps {focus_eps:g}: originals (top), counterexamples (bottom)",
                        out / f"grid_{net}.png")
    lines += ["## Counterexamples (Fig. 2a)", "", "![grid original](grid_original.png) "
              "![grid pruned](grid_pruned.png)", ""]
    write_csv(out / "milp_rows.csv", list(rows[0].keys()) if rows else [], [list(r.values()) for r in rows])
    (out / "report.md").write_text("\n".join(lines) + "\n")
    summary = {"accuracy": accuracy, "counts": table, "calibrated_eps": calibrated and calibrated["eps"],
               "pruned_vs_original": claims, "pruned_vs_control": control_claims, "robust_vs_plain": robust_claims,
               "critical_neurons": {str(s): v for s, v in neuron_summaries.items()}, "transfer": transfer,
               "unknown": sum(r["status"] == "unknown" for r in rows),
               "not_optimal": sum(not study.row_optimal(r, cfg) for r in rows),
               "wall_seconds": wall_seconds, "stage_seconds": stage_seconds(cfg.run_dir)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if cfg.report_dir:
        copy_report(out, Path(cfg.report_dir))
    first_detail = next(i for i, line in enumerate(lines) if line.startswith("## Accuracy"))
    print("\n".join(lines[:first_detail]))
    return summary


def copy_report(run_dir: Path, target: Path) -> None:
    """The report's files (markdown, CSVs, PNGs, JSON summaries) copied from ``run_dir`` to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(run_dir.iterdir()):
        if path.suffix in (".csv", ".png") or path.name in COPIED:
            shutil.copy2(path, target / path.name)
    for path in sorted(run_dir.glob("seed*/neurons.json")):
        shutil.copy2(path, target / f"neurons_{path.parent.name}.json")
