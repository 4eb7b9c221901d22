"""The engines of the one loop, found by name: ``TrainConfig.engine`` -> a :class:`Strategy`.

:data:`STRATEGIES` maps an engine's name to the function that builds its strategy from the
run's ``(device, precision, cuda_graphs, augment)``, refusing in one line what the engine
cannot do. "torch" is :class:`~aekit.training.strategy.TorchStrategy` (or, inside torchrun,
:class:`~aekit.training.distributed.DistributedStrategy`); "numpy" is the seed's engine,
:class:`aekit.backends.numpy.NumpyStrategy`. A new engine is a strategy class and a row here.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from .config import TrainConfig
from .distributed import DistributedStrategy, launched
from .strategy import Strategy, TorchStrategy


def _torch(device, precision: str, cuda_graphs: bool, augment) -> Strategy:
    if launched():  # inside torchrun: DistributedDataParallel, one device per process
        return DistributedStrategy(device, precision, augment)
    return TorchStrategy(device, precision, cuda_graphs, augment)


def _numpy(device, precision: str, cuda_graphs: bool, augment) -> Strategy:
    from ..backends.numpy import NumpyStrategy

    if launched():
        raise ConfigError("the NumPy engine runs in one process; use --engine torch")
    if device is not None and str(device) not in ("cpu", "auto"):
        raise ConfigError(f"the NumPy engine runs on the CPU, not on {device!r}")
    if augment is not None or (precision or "fp32") != "fp32":
        raise ConfigError("the NumPy engine takes no augment and computes in fp32/fp64")
    return NumpyStrategy()


StrategyFactory = Callable[..., Strategy]
STRATEGIES: dict[str, StrategyFactory] = {"torch": _torch, "numpy": _numpy}
# TrainConfig checks its engine against ENGINES (tests hold the two equal)


def make_strategy(
    config: TrainConfig,
    device=None,
    precision: str | None = None,
    cuda_graphs: bool | None = None,
    augment=None,
) -> Strategy:
    """The strategy of ``config.engine`` (None arguments: the config's)."""
    try:
        build = STRATEGIES[config.engine]
    except KeyError:
        raise ConfigError(
            f"unknown engine {config.engine!r}; choose one of {', '.join(STRATEGIES)}"
        ) from None
    graphs = config.cuda_graphs if cuda_graphs is None else bool(cuda_graphs)
    return build(device, precision or config.precision, graphs, augment)
