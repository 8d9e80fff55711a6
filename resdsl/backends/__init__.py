"""What is made from a checked IR: the report, the diagram and the PyTorch code."""
