"""PRISM's tests; a package so that shared stand-ins import as `tests.stand_ins`."""
