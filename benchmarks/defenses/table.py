"""Print the Markdown tables of ``benchmarks/results/defenses.json`` (what docs/benchmarks.md shows).

    python benchmarks/defenses/table.py [--results FILE.json] [--merge OTHER.json ...]

``--merge`` first folds rows from other result files (e.g. settings run side by side) into the results file.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path("benchmarks/results/defenses.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--merge", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    data = json.loads(args.results.read_text())
    for other in args.merge:
        new = json.loads(other.read_text())["rows"]
        keys = {row_key(r) for r in new}
        data["rows"] = [r for r in data["rows"] if row_key(r) not in keys] + new
    if args.merge:
        args.results.write_text(json.dumps(data, indent=2) + "\n")
    rows = data["rows"]
    print(f"Standard model: `{data.get('model')}`; robust model: `{data.get('robust_model') or 'none'}` "
          "(rows prefixed `robust/` wrap the robust model; `mix` rows mix the two).\n")
    tune = [r for r in rows if r["phase"] == "tune" and not r["setting"].startswith("chosen")
            and "acc_under" not in r]
    print("Tuning (272 sentences, clean accuracy only):\n")
    print("| setting | clean acc | cost (points) | passes/input |\n|---|---:|---:|---:|")
    for r in tune:
        print(f"| `{r['setting']}` | {r['clean_acc']:.2f}% | {r['clean_cost_points']:+.2f} | "
              f"{r['passes_per_input']:g} |")
    attacked = [r for r in rows if r["phase"] == "tune" and "acc_under" in r]
    for group in dict.fromkeys(report_group(r) for r in attacked):
        tune_attack_table([r for r in attacked if report_group(r) == group])
    for group in dict.fromkeys(report_group(r) for r in rows if r["phase"] == "report"):
        report_table([r for r in rows if r["phase"] == "report" and report_group(r) == group])
    certify = [r for r in rows if r["phase"] == "certify"]
    if certify:
        print("\nCertificates (RanMASK, Clopper-Pearson at 95%):\n")
        print("| setting | n | clean acc | certified r>=1 | r>=2 | r>=3 | certified & correct r>=1 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in certify:
            f, a = r["certified_fraction"], r["certified_accuracy"]
            print(f"| `{r['setting']}` | {r['n']} | {r['clean_acc']:.2f}% | {100 * f['1']:.1f}% | {100 * f['2']:.1f}% "
                  f"| {100 * f['3']:.1f}% | {100 * a['1']:.1f}% |")


def row_key(row: dict) -> tuple:
    """Rows of one phase and setting from runs with another robust model or sample size are kept apart."""
    return row.get("phase"), row.get("setting"), row.get("robust_model"), row.get("attack_n")


def report_group(row: dict):
    """One report table per number of attacked sentences: the standard model's `none` row on the same
    sentences is what every row's gains are measured against."""
    return row.get("attack_n")


def tune_attack_table(rows: list[dict]) -> None:
    """Attack-aware tuning (``tune --attack-n``): gains over the undefended row on the same tuning sentences."""
    base = next(r for r in rows if r["setting"] == "none")
    print(f"\nAttack-aware tuning ({base['n']} tuning sentences clean; attacks on the first {base['attack_n']} "
          "of them):\n")
    print("| setting | clean cost (points) | deepwordbug | pwws | passes/input |\n|---|---:|---:|---:|---:|")
    for r in rows:
        cells = [f"{r['acc_under'][k]:.2f}%" + (f" ({r['acc_under'][k] - base['acc_under'][k]:+.2f})"
                                               if r is not base else "") for k in ("deepwordbug", "pwws")]
        print(f"| `{r['setting']}` | {r['clean_cost_points']:+.2f} | {cells[0]} | {cells[1]} | "
              f"{r['passes_per_input']:.2f} |")


def report_table(report: list[dict]) -> None:
    base = next((r for r in report if r["setting"] == "none"), None)  # the standard model undefended
    robust = ", ".join(f"`{m}`" for m in dict.fromkeys(r.get("robust_model") for r in report) if m) or "none"
    print(f"\nReport ({base['n'] if base else '?'} sentences clean; attacks on the first "
          f"{base['attack_n'] if base else '?'} of them, querying the defended model; robust model(s) {robust}):\n")
    print("| defence | clean acc | deepwordbug | pwws | passes/input | passes per attacked example (dwb / pwws) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in report:
        gain = {k: v - base["acc_under"][k] for k, v in r["acc_under"].items()} if base else {}
        cells = [f"{r['acc_under'][k]:.1f}%" + (f" ({gain[k]:+.1f})" if base and r is not base else "")
                 for k in ("deepwordbug", "pwws")]
        clean = f"{r['clean_acc']:.2f}%" + (f" ({r['clean_acc'] - base['clean_acc']:+.2f})" if base and r is not base
                                            else "")
        passes = r["attack_forward_passes_per_example"]
        print(f"| `{r['setting']}` | {clean} | {cells[0]} | {cells[1]} | {r['passes_per_input']:g} | "
              f"{passes['deepwordbug']:g} / {passes['pwws']:g} |")


if __name__ == "__main__":
    main()
