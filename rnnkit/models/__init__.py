"""The model zoo. Importing this package imports torch; the CLI does so only inside commands."""

from rnnkit.models.config import ModelConfig
from rnnkit.models.registry import MODELS, build_model, get_spec, model_names, register

__all__ = ["MODELS", "ModelConfig", "build_model", "get_spec", "model_names", "register"]
