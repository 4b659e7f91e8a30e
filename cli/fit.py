"""`scalefit fit`: placeholder until its owner writes it (must define COMMANDS = {"fit": function})."""

COMMANDS: dict = {}
