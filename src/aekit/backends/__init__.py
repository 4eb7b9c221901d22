"""Engines other than PyTorch's, as strategies of the one training loop.

:mod:`aekit.backends.numpy` runs the seed's NumPy engine (:mod:`aekit.scratch`) for
``--engine numpy``.
"""
