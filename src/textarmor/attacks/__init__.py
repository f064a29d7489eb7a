"""Adversarial attacks: goal function × transformation × constraints × search, batched across examples.

    >>> from textarmor.attacks import attack
    >>> report = attack("runs/sst2", "builtin:sst2-dev", recipe="pwws", n=100, out_dir="runs/pwws")
    >>> report.summary()["attack_success_rate"]

Nothing heavy loads at import: WordNet, GloVe and the sentence encoder load when a recipe first uses them.
"""
from textarmor.attacks.api import attack, load_results, text_attacker
from textarmor.attacks.attack import Attack
from textarmor.attacks.engine import AttackEngine, Example
from textarmor.attacks.goal import TargetedClassification, UntargetedClassification
from textarmor.attacks.recipes import RECIPES, build_recipe
from textarmor.attacks.report import AttackReport, AttackResult
from textarmor.attacks.text import AttackedText

__all__ = [
           "RECIPES",
           "Attack",
           "AttackEngine",
           "AttackReport",
           "AttackResult",
           "AttackedText",
           "Example",
           "TargetedClassification",
           "UntargetedClassification",
           "attack",
           "build_recipe",
           "load_results",
           "text_attacker",
]
