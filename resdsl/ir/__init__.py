"""The graph IR: block templates, lowering, analysis passes and the spec -> checked IR pipeline."""
