"""scikit-learn estimators built on aekit's models and its one training loop."""

from __future__ import annotations

from .outlier import AutoencoderOutlierDetector
from .transformer import AutoencoderTransformer

__all__ = ["AutoencoderOutlierDetector", "AutoencoderTransformer"]
