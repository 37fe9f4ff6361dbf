"""`synth-assets`: the headless entry point (it drives the same Dagster Definitions as the UI).

One module per group of commands (``refresh``, ``ops``, ``release``), their shared arguments in
``common``, the parser and exit codes in ``main``.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
