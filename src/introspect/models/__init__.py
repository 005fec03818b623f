"""Model registry: ``build_model("resnet14", num_classes=10, input_shape=(3, 32, 32))``."""
from . import cnn, mlp, resnet  # noqa: F401  (registers the models)
from .base import Forward, IntrospectModel, available_models, build_model, register_model

__all__ = ["Forward", "IntrospectModel", "available_models", "build_model", "register_model"]
