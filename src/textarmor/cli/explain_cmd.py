from __future__ import annotations

import json
from pathlib import Path

import typer

from textarmor.cli import app


@app.command("explain")
def explain(
    model_dir: str = typer.Argument(..., help="Model directory (or alias / hub id)."),
    texts: list[str] | None = typer.Argument(None, help="Texts to explain."),
    input: Path | None = typer.Option(None, "--input", help="More texts: TXT (one a line), CSV/TSV or JSONL."),
    methods: str = typer.Option("ig,grad_input,rollout,attention,occlusion", "--methods",
                                help="Comma-separated: ig, grad_input, rollout, attention, occlusion, random."),
    n_steps: int = typer.Option(50, "--n-steps", help="Integrated-gradients steps."),
    internal_batch_size: int | None = typer.Option(None, "--internal-batch-size",
                                                   help="Rows (text × step) per IG pass (default from the "
                                                   "token budget)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Texts explained together."),
    layer: int = typer.Option(-1, "--layer", help="Attention layer (negative counts from the top)."),
    head: int | None = typer.Option(None, "--head", help="Attention head (default: mean of all heads)."),
    out: Path | None = typer.Option(None, "--out", help="Folder for explanations.json/.html and PNGs; "
                                    "default: JSON on stdout."),
    compare: tuple[str, str] | None = typer.Option(None, "--compare", help="ORIGINAL ADVERSARIAL: explain "
                                                   "both and show which words moved the prediction."),
    attack_results: Path | None = typer.Option(None, "--attack-results", help="Attack results JSONL with "
                                               "original_text and perturbed_text; every pair is compared."),
    faithfulness: bool = typer.Option(False, "--faithfulness", help="Add AOPC comprehensiveness/sufficiency "
                                      "per method (and a random baseline)."),
    text_column: str = typer.Option("text", "--text-column"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace explanations already in --out."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, mps (default: best available)."),
    dtype: str | None = typer.Option(None, "--dtype", help="float32, bfloat16, float16 (default: bfloat16 on "
                                     "a GPU, else float32; float32 gives IG the smallest delta)."),
) -> None:
    """Explain predictions word by word (integrated gradients, gradient × input, attention rollout,
    attention, occlusion), optionally scoring each method's faithfulness.

    Examples:

        textarmor explain runs/sst2 "a gripping, funny film" --out explained --faithfulness

        textarmor explain runs/sst2 --input reviews.txt --methods ig,occlusion --n-steps 32 --out explained

        textarmor explain runs/sst2 --compare "a great movie" "a grand movie" --out pair

        textarmor explain runs/sst2 --attack-results attack.jsonl --methods ig,occlusion --out attacked
    """
    from textarmor.explain.run import explain_inputs

    run = explain_inputs(model_dir, texts or [], input=input, pairs=[tuple(compare)] if compare else [],
                         attack_results=attack_results, methods=methods, with_faithfulness=faithfulness, out=out,
                         text_column=text_column, device=device, dtype=dtype, overwrite=overwrite, progress=True,
                         n_steps=n_steps, internal_batch_size=internal_batch_size, batch_size=batch_size,
                         layer=layer, head=head)
    if out is None:
        typer.echo(json.dumps(run.to_json()))
    else:
        typer.echo(f"{len(run.explanations)} texts, {len(run.comparisons)} pairs explained -> "
                   f"{out / 'explanations.html'}", err=True)
    if run.faithfulness is not None:
        for name, row in run.faithfulness.summary.items():
            typer.echo(f"  {name:<12} comprehensiveness {row['aopc_comprehensiveness']:+.4f}  "
                       f"sufficiency {row['aopc_sufficiency']:+.4f}", err=True)
