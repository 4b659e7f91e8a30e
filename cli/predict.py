"""`scalefit predict`: placeholder until its owner writes it (must define COMMANDS = {"predict": function})."""

COMMANDS: dict = {}
