"""Worked example: a robust detector of LLM refusals, end to end on a CPU.

    make -C examples/refusal-detector                       # the measured run (README.md has its numbers)
    python examples/refusal-detector/run.py --help          # every size and path option
    python examples/refusal-detector/run.py --train-rows 200 --epochs 1 --attack-n 10   # a quick look

Steps (each prints the `textarmor` command it runs; they run in this one process so the libraries load once):
 1. split XSTest v2 completions by prompt into train/dev/test (prepare.py), plus two out-of-distribution sets;
 2. train `standard` and each robust candidate (`roast` at small radii by default);
 3. pick the robust candidate on the dev split (accuracy under DeepWordBug, among candidates that kept
    their clean dev accuracy), never on test;
 4. calibrate both models on dev (temperature + conformal) and choose the decision threshold on dev;
 5. evaluate both on test: accuracy, per-class precision/recall/F1, coverage at the threshold, and the
    robustness report (DeepWordBug and PWWS on a sample, typos, anomaly detection against OOD texts);
 6. explain a few test refusals and a few adversarial examples;
 7. export the robust model to ONNX int8 and evaluate it; package the int8 export for Hugging Face
    Inference Endpoints and Azure ML; serve it and call it over HTTP; stop the server;
 8. write results.json and results.md (the tables the README shows) under --out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"  # the project's public data sets, next to the repository
sys.path.insert(0, str(HERE))

from prepare import prepare  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="A robust LLM-refusal detector, end to end.")
    p.add_argument("--data", default=str(SHARED_DATA / "refusal" / "xstest_v2_completions.jsonl"),
                   help="XSTest v2 completions JSONL (default: ../shared/data/refusal/ beside the repository)")
    p.add_argument("--ood", nargs="*", default=[f"trec={SHARED_DATA / 'trec' / 'test.jsonl'}",
                                                f"sst2={SHARED_DATA / 'sst2' / 'dev.jsonl'}"],
                   help="NAME=FILE out-of-distribution texts (questions and movie reviews, not LLM responses)")
    p.add_argument("--out", default=str(REPO / "runs" / "refusal-detector"), help="Everything the run writes")
    p.add_argument("--model", default="minilm-l6", help="Backbone alias or folder")
    p.add_argument("--max-words", type=int, default=32, help="Keep the opening N words of each response")
    p.add_argument("--max-length", type=int, default=48, help="Tokens the model reads")
    p.add_argument("--epochs", type=float, default=1)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--train-rows", type=int, default=None, help="Cap the training rows (quick runs)")
    p.add_argument("--eval-rows", type=int, default=None, help="Cap the dev and test rows (quick runs)")
    p.add_argument("--ood-rows", type=int, default=300, help="Texts taken from each OOD set")
    # Small radii: at roast's default (adv_eps 0.1) MiniLM collapsed to one class in a small SST-2 run.
    # fisher_batches 8: the first epoch's gradient masks come from 8 batches (32 would be most of an epoch here).
    # roast_alpha 0.6 / roast_beta 1 keep most weights trainable: with the sparse default masks (0.9 / 10) one
    # epoch left the training loss near chance.
    p.add_argument("--robust", nargs="+",
                   default=["roast:adv_eps=0.01,fisher_batches=8", "roast:adv_eps=0.03,fisher_batches=8",
                            "roast:adv_eps=0.03,roast_alpha=0.6,roast_beta=1,fisher_batches=8"],
                   help="Robust candidates METHOD[:KEY=VALUE,...]; the dev split picks one")
    p.add_argument("--select-attack-n", type=int, default=40, help="Dev examples attacked per candidate")
    p.add_argument("--min-clean-ratio", type=float, default=0.97,
                   help="A candidate must keep this share of standard's clean dev accuracy to be picked")
    p.add_argument("--dev-target", type=float, default=0.98,
                   help="Threshold: the lowest whose accepted dev predictions are this accurate")
    p.add_argument("--attacks", default="deepwordbug,pwws")
    p.add_argument("--attack-n", type=int, default=50, help="Test examples attacked per recipe in the report")
    p.add_argument("--noise-rates", default="0.05,0.1,0.2")
    p.add_argument("--explain-n", type=int, default=3, help="Refusals explained, and attacks run for pairs")
    p.add_argument("--explain-steps", type=int, default=32, help="Integrated-gradients steps")
    p.add_argument("--calibration-rows", type=int, default=128, help="Texts calibrating the int8 export")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torch-threads", type=int, default=None,
                   help="PyTorch CPU threads; 1 is fastest on a CPU shared with other busy jobs")
    p.add_argument("--reuse-models", action="store_true",
                   help="Keep models already trained in --out (rerun the later steps only)")
    return p.parse_args(argv)


def textarmor(*args: str) -> None:
    """Run one `textarmor` command in this process, echoing it as a shell line."""
    from textarmor.cli import main

    print("\n$ textarmor " + " ".join(shlex.quote(str(a)) for a in args), flush=True)
    try:
        main([str(a) for a in args])
    except SystemExit as done:  # Typer exits after every command; only a non-zero code is a failure
        if done.code not in (0, None):
            raise RuntimeError(f"textarmor {args[0]} failed with exit code {done.code}") from None


def parse_candidate(spec: str) -> tuple[str, dict[str, str]]:
    """``roast:adv_eps=0.01,roast_lambda=0.02`` -> ("roast", {"adv_eps": "0.01", "roast_lambda": "0.02"})."""
    method, _, options = spec.partition(":")
    return method, dict(item.split("=", 1) for item in options.split(",") if item)


def candidate_name(spec: str) -> str:
    method, options = parse_candidate(spec)
    return "-".join([method.replace("+", "-")] + [f"{k.split('_')[-1]}{v}" for k, v in options.items()])


def write_ood(ood: list[str], out: Path, rows: int) -> list[str]:
    """Copy the first ``rows`` texts of each OOD set into ``out`` (texts only); return NAME=FILE items."""
    items = []
    for item in ood:
        name, _, source = item.partition("=")
        lines = [ln for ln in Path(source).read_text(encoding="utf-8").splitlines() if ln.strip()][:rows]
        path = out / f"ood-{name}.jsonl"
        path.write_text("".join(json.dumps({"text": json.loads(ln)["text"]}) + "\n" for ln in lines), encoding="utf-8")
        items.append(f"{name}={path}")
    return items


def train(args: argparse.Namespace, data: Path, out: Path, method: str = "standard",
          options: dict[str, str] | None = None) -> dict:
    if args.reuse_models and (out / "textarmor.json").exists():
        print(f"\nreusing {out}")
        return json.loads((out / "textarmor.json").read_text())["training"]
    textarmor("train", "--data", data / "train.jsonl", "--eval-data", data / "dev.jsonl", "--model", args.model,
              "--out", out, "--method", method, "--epochs", args.epochs, "--lr", args.lr,
              "--batch-size", args.batch_size, "--max-length", args.max_length, "--seed", args.seed, "--overwrite",
              *[arg for k, v in (options or {}).items() for arg in ("-o", f"{k}={v}")])
    return json.loads((out / "textarmor.json").read_text())["training"]


def dev_scores(model_dir: Path, dev: Path, attack_n: int) -> dict:
    """Clean dev accuracy and dev accuracy under DeepWordBug: what picks the robust candidate."""
    from textarmor import evaluate
    from textarmor.attacks import attack

    clean = evaluate(model_dir, dev)["accuracy"]
    attacked = attack(model_dir, str(dev), recipe="deepwordbug", n=attack_n).summary()
    return {"accuracy": round(100 * clean, 2), "deepwordbug": attacked["accuracy_under_attack"]}


def pick_robust(standard: dict, candidates: dict[str, dict], min_ratio: float) -> tuple[str, str]:
    """The candidate most accurate under attack on dev among those keeping ``min_ratio`` of standard's clean
    dev accuracy (the default radii of roast/pgd can collapse MiniLM to one class); else the most accurate."""
    kept = {n: s for n, s in candidates.items() if s["accuracy"] >= min_ratio * standard["accuracy"]}
    if kept:
        name = max(kept, key=lambda n: (kept[n]["deepwordbug"], kept[n]["accuracy"]))
        return name, f"most accurate under DeepWordBug on dev among {sorted(kept)}"
    name = max(candidates, key=lambda n: candidates[n]["accuracy"])
    return name, f"no candidate kept {min_ratio:.0%} of standard's dev accuracy; took the most accurate"


def choose_threshold(model_dir: Path, dev: Path, target: float) -> dict:
    """The lowest threshold on the calibrated top score whose accepted dev predictions reach ``target``
    accuracy; stored in the model directory, so predict and serve flag the rest as uncertain."""
    import numpy as np

    from textarmor import Classifier, TextArmorConfig
    from textarmor.data import LabelMap, load_dataset

    clf = Classifier.from_pretrained(model_dir)
    dataset, _ = load_dataset(str(dev))
    labels = np.asarray(LabelMap(clf.labels).encode(dataset["label"], source=dev.name))
    probs = clf.predict_proba(list(dataset["text"]))
    top, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    best = None
    for t in np.round(np.arange(0.50, 1.0, 0.01), 2):
        accepted = top >= t
        if accepted.any():
            row = {"threshold": float(t), "dev_coverage": float(accepted.mean()),
                   "dev_selective_accuracy": float(correct[accepted].mean())}
            if row["dev_selective_accuracy"] >= target:
                best = row
                break
            if best is None or row["dev_selective_accuracy"] > best["dev_selective_accuracy"]:
                best = row
    config = TextArmorConfig.load(model_dir)
    config.threshold = best["threshold"]
    config.save(model_dir)
    return best


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, payload: dict | None = None, timeout: float = 30) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def serve_and_call(model_dir: Path, texts: list[str], startup_s: float = 180) -> dict:
    """`textarmor serve` in a child process, called over HTTP (both wire formats), then stopped."""
    port = free_port()
    command = [sys.executable, "-c", "from textarmor.cli import main; main()", "serve", str(model_dir),
               "--port", str(port), "--torch-threads", "1"]
    print(f"\n$ textarmor serve {model_dir} --port {port} --torch-threads 1 &", flush=True)
    server = subprocess.Popen(command)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"textarmor serve exited with code {server.returncode} before answering")
            try:
                health = http_json(f"{base}/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"textarmor serve did not answer on port {port} in {startup_s:.0f} s") from None
                time.sleep(0.5)
        print(f"$ curl -s {base}/ -H 'Content-Type: application/json' -d '{{\"inputs\": [...]}}'")
        started = time.perf_counter()
        hf = http_json(f"{base}/", {"inputs": texts})
        hf_ms = 1000 * (time.perf_counter() - started)
        azure = http_json(f"{base}/score", {"inputs": texts[:1]})
        print(json.dumps({"health": health, "hf": hf, "azure": azure}, indent=1))
        return {"health": health, "hf_response": hf, "azure_response": azure, "hf_request_ms": round(hf_ms, 1)}
    finally:
        server.terminate()  # SIGTERM: the server finishes in-flight requests and exits
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def machine() -> str:
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores ({platform.system()}), shared with other jobs"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    out = Path(args.out)
    data = out / "data"
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 1)
        clock = now

    print(f"== 1. data: split by prompt, first {args.max_words} words of each response", flush=True)
    counts = prepare(args.data, data, max_words=args.max_words, seed=args.seed, train_rows=args.train_rows,
                     eval_rows=args.eval_rows)
    print(json.dumps(counts))
    ood = write_ood(args.ood, data, args.ood_rows)
    dev, test = data / "dev.jsonl", data / "test.jsonl"
    lap("data")

    print("== 2. train standard and the robust candidates", flush=True)
    models = out / "models"
    training = {"standard": train(args, data, models / "standard")}
    lap("train standard")
    for spec in args.robust:
        method, options = parse_candidate(spec)
        training[candidate_name(spec)] = train(args, data, models / candidate_name(spec), method, options)
        lap(f"train {candidate_name(spec)}")

    print("== 3. pick the robust candidate on dev", flush=True)
    selection = {name: dev_scores(models / name, dev, args.select_attack_n) for name in training}
    robust, why = pick_robust(selection["standard"], {n: s for n, s in selection.items() if n != "standard"},
                              args.min_clean_ratio)
    print(json.dumps(selection, indent=1) + f"\npicked {robust}: {why}")
    lap("select on dev")
    compared = {"standard": models / "standard", robust: models / robust}

    print("== 4. calibrate on dev, choose the threshold on dev", flush=True)
    thresholds = {}
    for name, path in compared.items():
        textarmor("calibrate", path, "--data", dev)
        thresholds[name] = choose_threshold(path, dev, args.dev_target)
        print(f"{name}: threshold {thresholds[name]}")
    lap("calibrate")

    print("== 5. evaluate on test: metrics at the threshold, then the robustness report", flush=True)
    results, reports = {}, {}
    for name, path in compared.items():
        textarmor("evaluate", path, "--data", test, "--threshold", thresholds[name]["threshold"],
                  "--out", out / "eval" / f"{name}.json")
        results[name] = json.loads((out / "eval" / f"{name}.json").read_text())
        textarmor("evaluate", path, "--data", test, "--report", out / "reports" / name, "--overwrite",
                  "--attacks", args.attacks, "--attack-n", min(args.attack_n, sum(counts["test"].values())),
                  "--noise-rates", args.noise_rates, "--calibration-data", dev,
                  *[a for item in ood for a in ("--ood", item)])
        reports[name] = json.loads((out / "reports" / name / "report.json").read_text())
        lap(f"evaluate {name}")

    print("== 6. explain refusals and adversarial examples", flush=True)
    refusals = [json.loads(ln)["text"] for ln in test.read_text().splitlines() if '"refusal"' in ln][:args.explain_n]
    (out / "explain").mkdir(parents=True, exist_ok=True)
    (out / "explain" / "refusals.txt").write_text("\n".join(refusals) + "\n")
    textarmor("explain", compared[robust], "--input", out / "explain" / "refusals.txt", "--methods", "ig,occlusion",
              "--n-steps", args.explain_steps, "--out", out / "explain" / "refusals", "--overwrite")
    # Adversarial examples against the standard model, explained on it: which edited words flipped it.
    attack_dir = out / "explain" / "attack-standard"
    if attack_dir.exists():
        for leftover in attack_dir.iterdir():
            leftover.unlink()
    textarmor("attack", compared["standard"], "--data", test, "--recipe", "deepwordbug",
              "--n", min(4 * args.explain_n, sum(counts["test"].values())), "--out", attack_dir)
    attacked = [json.loads(ln) for ln in (attack_dir / "results.jsonl").read_text().splitlines()]
    successful = [r for r in attacked if r["status"] == "successful"][:args.explain_n]
    if successful:
        pairs = attack_dir / "successful.jsonl"
        pairs.write_text("".join(json.dumps(r) + "\n" for r in successful))
        textarmor("explain", compared["standard"], "--attack-results", pairs, "--methods", "ig,occlusion",
                  "--n-steps", args.explain_steps, "--out", out / "explain" / "adversarial", "--overwrite")
    lap("explain")

    print("== 7. export ONNX int8, package, serve", flush=True)
    onnx_dir = out / "deploy" / f"{robust}-int8"
    textarmor("export", compared[robust], "--onnx", "--quantize", "int8", "--calibration-data", dev,
              "--calibration-rows", args.calibration_rows, "--out", onnx_dir, "--overwrite")
    textarmor("evaluate", onnx_dir, "--data", test, "--out", out / "eval" / f"{robust}-int8.json")
    int8 = json.loads((out / "eval" / f"{robust}-int8.json").read_text())
    # The int8 export is what ships and serves: the fast CPU path, with the robust model's calibration.
    for target in ("hf-endpoint", "azureml"):
        textarmor("package", onnx_dir, "--target", target, "--out", out / "deploy" / target,
                  "--name", "refusal-detector", "--example", "I'm sorry, but I can't help with that.",
                  "--language", "en", "--overwrite")
    served = serve_and_call(onnx_dir, refusals[:1] + ["Sure! Here is a simple recipe for banana bread."])
    lap("export, package, serve")

    summary = {
        "machine": machine(), "settings": {k: v for k, v in vars(args).items()}, "rows": counts,
        "training": training, "dev_selection": selection, "robust": robust, "robust_reason": why,
        "thresholds": thresholds, "test": results, "reports": {n: summarize_report(r) for n, r in reports.items()},
        "int8": {"accuracy": int8["accuracy"], "macro_f1": int8["macro_f1"]},
        "adversarial_pairs_explained": len(successful), "served": served, "seconds": timings,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    markdown = results_markdown(summary) + "\n" + explanations_markdown(out / "explain")
    (out / "results.md").write_text(markdown)
    print("\n" + markdown)
    print(f"== done in {sum(timings.values()):.0f} s; model card: {out / 'deploy' / 'hf-endpoint' / 'README.md'}")
    return summary


def summarize_report(report: dict) -> dict:
    from textarmor.evaluation.report import summary_numbers

    return summary_numbers(report)


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def results_markdown(s: dict) -> str:
    names = list(s["test"])
    lines = [f"Machine: {s['machine']}. Rows (train/dev/test by label): {json.dumps(s['rows'])}.", "",
             "Dev selection (" + f"DeepWordBug on {s['settings']['select_attack_n']} dev examples): "
             + "; ".join(f"{n} {v['accuracy']:.2f}% clean, {v['deepwordbug']:.2f}% attacked"
                         for n, v in s["dev_selection"].items()) + f". Picked `{s['robust']}`: {s['robust_reason']}.",
             "", "| test split | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

    def row(title: str, values: list[str]) -> None:
        lines.append(f"| {title} | " + " | ".join(values) + " |")

    row("accuracy", [pct(s["test"][n]["accuracy"]) for n in names])
    row("macro-F1", [pct(s["test"][n]["macro_f1"]) for n in names])
    for label in s["test"][names[0]]["per_class"]:
        for measure in ("precision", "recall", "f1"):
            row(f"{label} {measure}", [pct(s["test"][n]["per_class"][label][measure]) for n in names])
    row("ECE before → after temperature (fitted on dev)",
        [f"{s['reports'][n]['ece']:.4f} → {s['reports'][n]['ece_after_temperature']:.4f}" for n in names])
    row("threshold (chosen on dev)", [f"{s['thresholds'][n]['threshold']:.2f}" for n in names])
    row("coverage at the threshold", [pct(s["test"][n]["coverage"]) for n in names])
    row("accuracy on covered", [pct(s["test"][n]["selective_accuracy"]) for n in names])
    attack_n = s["reports"][names[0]]["attack_examples"]
    for recipe in s["reports"][names[0]]["accuracy_under_attack"]:
        row(f"accuracy under {recipe} ({attack_n} examples)",
            [f"{s['reports'][n]['accuracy_under_attack'][recipe]:.2f}%" for n in names])
        if any(recipe in s["reports"][n].get("accuracy_under_attack_calibrated_scores", {}) for n in names):
            row(f"… {recipe} attacking calibrated scores",
                [_maybe(s["reports"][n].get("accuracy_under_attack_calibrated_scores", {}).get(recipe))
                 for n in names])
    for rate in s["reports"][names[0]]["noise_accuracy"]:
        row(f"accuracy with typos at rate {rate}", [f"{s['reports'][n]['noise_accuracy'][rate]:.2f}%" for n in names])
    for ood in s["reports"][names[0]]["ood_auroc_msp"]:
        row(f"OOD AUROC (max-softmax) vs {ood}", [f"{s['reports'][n]['ood_auroc_msp'][ood]:.4f}" for n in names])
    row("training seconds per epoch", [f"{s['training'][n].get('seconds_per_epoch', float('nan')):.0f}"
                                       for n in names])
    lines += ["", f"ONNX int8 export of `{s['robust']}`: test accuracy {pct(s['int8']['accuracy'])}, "
              f"macro-F1 {pct(s['int8']['macro_f1'])}.",
              "Step times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in s["seconds"].items())
              + f"; total {sum(s['seconds'].values()):.0f} s.", ""]
    return "\n".join(lines)


def top_words(explanation: dict, method: str = "ig", k: int = 3) -> str:
    """The ``k`` words with the largest attribution toward the explained label."""
    scores = explanation["scores"][method]
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
    return ", ".join(f"`{explanation['words'][i]}`" for i in ranked)


def explanations_markdown(explain_dir: Path) -> str:
    """A few lines per explained refusal and adversarial pair (the HTML pages beside show every word)."""
    lines = ["Explained refusals (robust model; words with the highest integrated-gradients attribution):"]
    for e in json.loads((explain_dir / "refusals" / "explanations.json").read_text())["explanations"]:
        lines.append(f"- \"{' '.join(e['words'][:12])} ...\" → {e['label']} ({e['score']:.2f}); top words "
                     + top_words(e))
    adversarial = explain_dir / "adversarial" / "explanations.json"
    if adversarial.exists():
        lines += ["", "Adversarial examples (DeepWordBug against the standard model; edits and how much support "
                      "for the original label they removed, integrated gradients):"]
        for c in json.loads(adversarial.read_text())["comparisons"]:
            edits = "; ".join(f"`{' '.join(ch['original'])}` → `{' '.join(ch['adversarial'])}` "
                              f"({ch['moved']['ig']:+.3f})" for ch in c["changes"])
            before, after = c["original_label_score"]["original"], c["original_label_score"]["adversarial"]
            lines.append(f"- {c['original']['label']} → {c['adversarial']['label']} (score of "
                         f"{c['original']['label']} {before:.2f} → {after:.2f}): {edits}")
    return "\n".join(lines) + "\n"


def _maybe(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}%"


if __name__ == "__main__":
    main()
