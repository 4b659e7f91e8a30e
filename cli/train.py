"""`scalefit train`: placeholder until its owner writes it (must define COMMANDS = {"train": function})."""

COMMANDS: dict = {}
