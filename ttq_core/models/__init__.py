"""Network architectures of the toolkit and their name registry.

Importing this package registers every model: the CIFAR ResNets ``resnet20``,
``resnet32``, ``resnet44``, ``resnet56`` (public CIFAR-ResNet naming: ``conv1``,
``bn1``, ``layerK.i.conv1/bn1/conv2/bn2/shortcut``, ``linear``), ``resnet18``
(torchvision naming) and ``alexnet`` / ``alexnet_bn`` (torchvision naming).  Build
them by name with :func:`build_model`; the model records ``arch_name`` and
``arch_kwargs`` (plain JSON) so ``build_model(arch_name, **arch_kwargs)`` rebuilds it.
"""

from ttq_core.models.registry import (
    ModelSpec,
    build_model,
    list_models,
    model_spec,
    register_model,
    resolve_arch_kwargs,
)
from ttq_core.models import alexnet as _alexnet  # noqa: F401  (registers models)
from ttq_core.models import cifar_resnet as _cifar_resnet  # noqa: F401
from ttq_core.models import imagenet_resnet as _imagenet_resnet  # noqa: F401

__all__ = [
    "ModelSpec",
    "build_model",
    "list_models",
    "model_spec",
    "register_model",
    "resolve_arch_kwargs",
]
