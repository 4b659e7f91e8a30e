"""`scalefit recommend`: placeholder until its owner writes it (must define COMMANDS = {"recommend": function})."""

COMMANDS: dict = {}
