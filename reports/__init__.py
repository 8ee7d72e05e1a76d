"""Renderers: results model -> pure shaping (summary.py) -> one module per output format."""
