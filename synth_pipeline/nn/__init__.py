"""Torch infrastructure shared by the tabular and the MRI arm."""
