"""The seed's NumPy engine (:mod:`aekit.scratch`) beside the PyTorch dense model.

:func:`to_scratch` and :func:`from_scratch` move weights both ways exactly (:mod:`.bridge`: the
same ``nn.Linear`` layout, see :mod:`aekit.scratch.interop`, and the check of what the engine
represents). :class:`NumpyStrategy` (:mod:`.strategy`) is the engine as a strategy of the one
loop (:func:`aekit.training.fit` with ``TrainConfig(engine="numpy")``): the loop keeps the
epochs, the seeded order, the history, early stopping, the divergence error and the callbacks;
the strategy computes the steps, and after every epoch the torch model holds the trained
weights before the callbacks run.

The optimiser handed to ``on_epoch_end`` is a :class:`NumpyOptimizer` (:mod:`.optim`): the
engine's optimiser behind ``state_dict()`` / ``load_state_dict()`` in ``torch.optim``'s own
format (parameter indices in ``model.parameters()`` order, tensors in torch's layout, Adam's
``step`` as a float32 tensor). :func:`aekit.io.checkpoint.save_checkpoint` and
``load_checkpoint`` therefore work unchanged, and a checkpoint written by either engine resumes
under the other.

What the NumPy engine represents: seed 000's plain dense model (deterministic code, no
penalty, no input noise; ``hidden`` any depth, mirrored decoder, tied or not) whose hidden,
code and decoder-hidden layers share one activation, with ``output_activation`` sigmoid or
identity, loss ``mse`` or ``bce``, in float32 or float64. Anything else raises
:class:`~aekit.errors.ConfigError` naming the setting.
"""

from __future__ import annotations

from .bridge import DTYPES, MAPPED_FIELDS, check_representable, copy_into, from_scratch, to_scratch
from .optim import NumpyOptimizer
from .strategy import NumpyStrategy, evaluate_numpy

__all__ = [
    "DTYPES",
    "MAPPED_FIELDS",
    "NumpyOptimizer",
    "NumpyStrategy",
    "check_representable",
    "copy_into",
    "evaluate_numpy",
    "from_scratch",
    "to_scratch",
]
