"""rnnkit: recurrent and convolutional text classifiers with a staged command-line workflow.

From Python (README.md, "Python API"):

    import rnnkit
    model = rnnkit.load("artifacts")      # a trained run: artifacts folder, run folder or best.pt
    model.predict(["great film"])         # [Prediction(text='great film', label='pos', ...)]

`load`, `TextClassifier` and `Prediction` live in rnnkit/api.py and are imported on first
use, so `import rnnkit` (and the `rnnkit` command) stays fast and imports no torch.
"""

from typing import Any as _Any

__version__ = "0.1.0"
__all__ = ["Prediction", "TextClassifier", "__version__", "load"]

_API = ("load", "TextClassifier", "Prediction")


def __getattr__(name: str) -> _Any:
    # PEP 562: the API on first access. The import goes through importlib because
    # rnnkit.artifacts reads __version__ from this module: a plain import here would make
    # the package and the modules under it import each other.
    if name in _API:
        import importlib

        value = getattr(importlib.import_module("rnnkit.api"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
