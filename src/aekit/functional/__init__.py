"""Pure functions of tensors: every loss, KL, penalty and metric of the seeds, one home each.

:mod:`aekit.functional.losses` holds them; models, jobs and tests import from there.
"""
