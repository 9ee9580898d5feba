"""Name -> class registries for the tabular generators and the MRI models: registering one class is
all a new model needs (the package imports every module in it, so `@register` runs)."""

import ast
import difflib
import importlib
import json
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from synth_pipeline.device import pick_device
from synth_pipeline.errors import BadInput, GeneratorError


class Registry:
    """`what` names the kind in messages ("generator", "MRI model"); `package` is imported before any
    lookup; a saved model is a folder whose `meta_file` JSON holds its registered "name"."""

    def __init__(self, what: str, package: str, meta_file: str) -> None:
        self.what, self.package, self.meta_file = what, package, meta_file
        self.classes: dict[str, type] = {}

    def register(self, cls: type) -> type:
        self.classes[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        return registered_names(self.package)

    def check_name(self, name: str, option: str) -> None:
        check_name(self.package, self.what, name, option)

    def _loaded(self) -> dict[str, type]:
        importlib.import_module(self.package)
        return self.classes

    def available(self) -> dict[str, str]:
        classes = self._loaded()
        return {name: classes[name].summary for name in sorted(classes)}

    def make(self, name: str, *, device: str | None = None, **params: Any) -> Any:
        """A new model on `device` (pick_device's choice when None): both arms get their device here,
        from the pipeline's ComputeDevice resource, never by asking for one themselves."""
        classes = self._loaded()
        if name not in classes:
            self.check_name(name, self.what)
        try:
            model = classes[name](**params)
        except TypeError as e:
            raise BadInput(f"{self.what} '{name}': bad parameters ({e})") from None
        model.device = pick_device(device)
        return model

    def load(self, path: Path, *, device: str | None = None) -> Any:
        classes = self._loaded()
        meta_path = Path(path) / self.meta_file
        if not meta_path.is_file():
            raise GeneratorError(f"{path}: no {self.meta_file}; not a saved {self.what}")
        name = json.loads(meta_path.read_text())["name"]
        if name not in classes:
            raise GeneratorError(f"{path}: saved {self.what} '{name}' is not registered")
        return classes[name].load(Path(path), device=pick_device(device))


def registered_names(package: str) -> list[str]:
    """The names of a package's `@register` classes (`name = "..."`) read from its source without
    importing it, so a typo is reported before torch, SDV or Dagster load. A test keeps this equal to
    the imported registry."""
    spec = find_spec(package)
    found: list[str] = []
    for folder in (spec.submodule_search_locations or ()) if spec else ():
        for src in sorted(Path(folder).glob("*.py")):
            for node in ast.walk(ast.parse(src.read_text())):
                if isinstance(node, ast.ClassDef) and any(isinstance(d, ast.Name) and d.id == "register"
                                                          for d in node.decorator_list):
                    found += [s.value.value for s in node.body if isinstance(s, ast.Assign)
                              and isinstance(s.value, ast.Constant)
                              and any(isinstance(x, ast.Name) and x.id == "name" for x in s.targets)]
    return sorted(found)


def check_name(package: str, what: str, name: str, option: str) -> None:
    """BadInput naming the option, the unknown name and the closest known ones."""
    known = registered_names(package)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=2, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise BadInput(f"{option}: unknown {what} '{name}'; {hint}choose one of: {', '.join(known)}")
