"""The language: syntax tree, parser, imports, values, op signatures, recipe syntax and std.rd."""
