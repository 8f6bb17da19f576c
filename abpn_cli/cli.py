"""Command-line interface: parses options, calls the package, prints. No logic lives here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="abpn",
    help="Batch local retouching of ultra-high-resolution photos with ABPN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    app()
