"""`scalefit sweep`: placeholder until its owner writes it (must define COMMANDS = {"sweep": function})."""

COMMANDS: dict = {}
