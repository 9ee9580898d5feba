"""The brain-MRI arm: NIfTI volumes -> axial slices with their position -> generators conditioned on
that position -> image metrics -> a gated image release. Same spine as the tabular arm, no Dagster here."""
