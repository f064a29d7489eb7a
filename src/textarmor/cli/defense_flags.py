"""``--defense NAME`` and ``--defense-option KEY=VALUE``, shared by predict, evaluate and serve."""
from __future__ import annotations

from typing import Any

from textarmor.errors import ParameterError

DEFENSE_HELP = ("Inference-time defence: smooth (vote over masked/synonym copies), tta (typo repair + synonym "
                "augmentation), mix (mix in a robust model), rewrite (typo repair + synonym canonicalisation, "
                "one pass); none: the model alone. Default: the defence stored with the model, if any "
                "(--preset robust stores rewrite). See docs/defenses.md.")
OPTION_HELP = ("KEY=VALUE option of --defense (repeatable), e.g. k=16, rate=0.3, certify=true, mode=synonym, "
               "augmentations=repair, robust=runs/robust, weight=0.5.")


def defense_kwargs(defense: str | None, items: list[str]) -> dict[str, Any]:
    """Keyword arguments for :meth:`textarmor.Classifier.from_pretrained` (empty without a defence)."""
    from textarmor.defenses import make_defense, parse_defense_options

    if defense == "none":
        if items:
            raise ParameterError("--defense none loads the model alone; drop --defense-option.")
        return {"defense": "none"}
    options = parse_defense_options(defense, items)
    if defense is None:
        return {}
    make_defense(defense, **options)  # a bad option fails before the model loads
    return {"defense": defense, "defense_options": options}
