"""Dagster assets and asset checks, one module per stage; each is a thin wrapper over the core."""
