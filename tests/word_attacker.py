"""A small real attacker for tests: tries every single-word deletion and duplication of each text, in one
batched query per text set, and returns the first variant that changes the model's prediction (None when
the original is already misclassified, as attack engines skip those, or when nothing works)."""
from __future__ import annotations


def word_drop_attacker(classifier, texts: list[str], labels: list[str]) -> list[str | None]:
    variants: list[list[str]] = []
    for text in texts:
        words = text.split()
        dropped = [" ".join(words[:i] + words[i + 1:]) for i in range(len(words)) if len(words) > 1]
        doubled = [" ".join(words[:i + 1] + words[i:]) for i in range(len(words))]
        variants.append(dropped + doubled)
    flat = list(texts) + [v for vs in variants for v in vs]
    predicted = [classifier.labels[i] for i in classifier.predict_proba(flat, calibrated=False).argmax(axis=1)]
    originals, rest = predicted[:len(texts)], predicted[len(texts):]
    results: list[str | None] = []
    for text_variants, label, original in zip(variants, labels, originals):
        preds, rest = rest[:len(text_variants)], rest[len(text_variants):]
        hit = next((v for v, p in zip(text_variants, preds) if p != label), None)
        results.append(hit if original == label else None)
    return results
