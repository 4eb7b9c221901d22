"""Figures (matplotlib; each returns a figure, ``save_figure`` writes it atomically)."""
