"""textarmor: train, attack, explain and serve text classifiers that stay right under perturbed input."""
from textarmor.classifier import Classifier, Prediction
from textarmor.errors import TextArmorError
from textarmor.model_dir import TextArmorConfig

__version__ = "0.1.0"


def __getattr__(name):
    # Training and evaluation pull in Trainer and datasets; load them only when asked for.
    if name == "train":
        from textarmor.training import train

        return train
    if name == "evaluate":
        from textarmor.evaluation import evaluate

        return evaluate
    raise AttributeError(f"module 'textarmor' has no attribute {name!r}")


__all__ = ["Classifier", "Prediction", "TextArmorConfig", "TextArmorError", "train", "evaluate", "__version__"]
