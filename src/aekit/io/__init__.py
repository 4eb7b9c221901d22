"""Files: atomic writes, safetensors + JSON models and checkpoints, the run directory."""
