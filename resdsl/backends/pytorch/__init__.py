"""The PyTorch back end: a standalone model.py from a checked IR, and its verification."""
