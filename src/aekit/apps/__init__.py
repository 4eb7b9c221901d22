"""The jobs people train autoencoders for, built on the model, the loop and the run directory.

:mod:`~aekit.apps.train` (data -> run directory), :mod:`~aekit.apps.evaluate` (metrics, codes,
reconstructions of a saved run), :mod:`~aekit.apps.generation` (sample, interpolate, NLL).
"""
