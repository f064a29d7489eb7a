"""Why did the model say that? Word-level explanations with faithfulness scores.

    from textarmor import Classifier
    from textarmor.explain import explain, faithfulness, write_outputs

    clf = Classifier.from_pretrained("runs/sst2")
    explanations = explain(clf, ["a gripping, funny film"], methods="ig,grad_input,rollout,occlusion")
    scores = faithfulness(clf, explanations)        # AOPC comprehensiveness / sufficiency per method
    write_outputs("explained", explanations, faithfulness=scores)   # JSON + HTML + PNG

    # One method, Captum-style: fixed settings in the constructor, the texts in the call.
    from textarmor.explain import IntegratedGradients
    attribution = IntegratedGradients(clf).attribute(["a dull film"], n_steps=64, internal_batch_size=32)
    attribution.word_scores[0], attribution.convergence_delta[0]

Command line: ``textarmor explain MODEL_DIR "a gripping, funny film" --out explained --faithfulness``.
Needs the ``explain`` extra (captum, matplotlib): ``pip install 'textarmor[explain]'``.
"""
from textarmor.explain.api import (
    Comparison,
    Explanation,
    build_explainers,
    check_methods,
    compare,
    explain,
    explain_texts,
    word_changes,
)
from textarmor.explain.attribution import Attribution, Explainer, eager_attention, torch_model
from textarmor.explain.faithfulness import THRESHOLDS, Faithfulness, faithfulness
from textarmor.explain.methods import (
    DEFAULT_METHODS,
    METHODS,
    Attention,
    AttentionRollout,
    GradientXInput,
    IntegratedGradients,
    Occlusion,
    RandomBaseline,
    attention_rollout,
)
from textarmor.explain.render import save_png, to_html, to_json, write_outputs
from textarmor.explain.run import ExplainRun, explain_inputs

__all__ = [
    "DEFAULT_METHODS", "METHODS", "THRESHOLDS", "Attention", "AttentionRollout", "Attribution", "Comparison",
    "ExplainRun", "Explainer", "Explanation", "Faithfulness", "GradientXInput", "IntegratedGradients", "Occlusion",
    "RandomBaseline", "attention_rollout", "build_explainers", "check_methods", "compare", "eager_attention",
    "explain", "explain_inputs", "explain_texts", "faithfulness", "save_png", "to_html", "to_json", "torch_model",
    "word_changes", "write_outputs",
]
