"""One wrapper for the SDV 2.x single-table synthesizers (Gaussian copula, CTGAN, TVAE).

- Metadata is declared from our Schema (numerical / categorical), never auto-detected: detection
  misreads codes and ordinals as numbers and ids as categories.
- `enforce_min_max_values=False`: SDV would clip every numeric column to the training min/max, which
  copies the real extremes (often a single, identifiable patient's values) into the release.
- `enforce_rounding=True`: SDV learns each numeric column's decimal places, so integer columns come out
  whole (conform rounds integers again) and measured values keep their recorded precision.
- Seeding: SDV's models keep their own RNG, set to a fixed constant unless told otherwise, so `sample`
  resets the synthesizer and sets that RNG from our seed (SDV has no public call for it:
  `_set_random_state`); fit draws from the global RNGs, which `seed_everything` sets.
- Saving: a fitted synthesizer can only be saved with SDV's own `save` (cloudpickle). The file is our own
  artefact written by `save`, never user-supplied; `load` verifies its sha256 from generator.json
  before `load_synthesizer` unpickles it and refuses a file that differs.
"""

import warnings
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from synth_pipeline.errors import GeneratorError
from synth_pipeline.generators.base import BaseGenerator
from synth_pipeline.schema import Schema

TABLE = "table"


def sdv_metadata(schema: Schema):
    """SDV Metadata with one table whose sdtypes come from our declared schema."""
    from sdv.metadata import Metadata

    metadata = Metadata()
    metadata.add_table(TABLE)
    for c in schema.columns:
        sdtype = "categorical" if c.kind == "categorical" else "numerical"
        metadata.add_column(c.name, table_name=TABLE, sdtype=sdtype)
    return metadata


class SDVGenerator(BaseGenerator):
    """Subclasses name their synthesizer class and the keyword options they pass to it."""

    synthesizer: ClassVar[str]
    STATE_FILE = "synthesizer.pkl"

    def _options(self) -> dict[str, Any]:
        return dict(self.params)

    def _fit(self, table: pd.DataFrame, seed: int) -> None:
        import sdv.single_table

        cls = getattr(sdv.single_table, self.synthesizer)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*save_to_json.*")  # our metadata is the Schema
            self._synth = cls(
                sdv_metadata(self.schema),
                enforce_min_max_values=False,
                enforce_rounding=True,
                **self._options(),
            )
        self._synth.fit({TABLE: table})

    def _draw(self, k: int, seed: int, label: str | None) -> pd.DataFrame:
        from sdv.sampling import Condition

        self._synth.reset_sampling()
        self._synth._set_random_state(seed)
        try:
            if label is None:
                out = self._synth.sample(num_rows=k)
            else:
                out = self._synth.sample_from_conditions([Condition({self.target: label}, num_rows=k)])
        except Exception as e:
            raise GeneratorError(f"{self.name}: SDV sampling failed ({str(e).splitlines()[0]})") from e
        return out[TABLE]

    def _save_state(self, path: Path) -> list[str]:
        self._synth.save(str(path / self.STATE_FILE))
        return [self.STATE_FILE]

    def _load_state(self, path: Path) -> None:
        from sdv.utils import load_synthesizer

        self._synth = load_synthesizer(str(path / self.STATE_FILE))


class TorchSDVGenerator(SDVGenerator):
    """CTGAN / TVAE: SDV 2.0 takes only a boolean `enable_gpu` (cuda:0 when present), set from the
    generator's device; after loading, the model is moved to that device since unpickling picks by itself."""

    def __init__(self, epochs: int = 300, batch_size: int = 500) -> None:
        super().__init__(epochs=epochs, batch_size=batch_size)

    def _options(self) -> dict[str, Any]:
        return {**self.params, "enable_gpu": self.device.startswith("cuda"), "verbose": False}

    def _load_state(self, path: Path) -> None:
        import torch

        super()._load_state(path)
        self._synth._model.set_device(torch.device(self.device))
