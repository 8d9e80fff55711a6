"""`resdsl lsp`: a language server for .rd specs (pygls), over the same pipeline as `resdsl check`."""
