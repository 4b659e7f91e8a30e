"""sweeps: sweep specs and presets, run planning, executors (local, Ray) and the results store."""
