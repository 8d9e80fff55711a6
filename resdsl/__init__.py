"""resdsl: a small language and compiler for residual convolutional networks."""

__version__ = "0.1.0"
