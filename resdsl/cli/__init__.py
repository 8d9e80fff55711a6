"""The command line (click): the top layer; nothing below imports it."""
