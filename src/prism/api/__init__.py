"""FastAPI routers (public, internal, operator) and auth. Policy lives below, in pipeline and review."""
