"""cli: the `scalefit` command-line app (typer). Thin: parsing and printing only."""
