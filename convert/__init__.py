"""Keras → TFLite conversion with parity checks (``python -m convert``)."""
