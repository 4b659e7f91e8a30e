"""fits: scaling-law definitions, the robust fitter, bootstrap, validation, prediction and recommendation."""
