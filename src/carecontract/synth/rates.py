"""Load the calibration rates shipped with the package (``rates.yaml``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def load_rates(path: str | Path | None = None) -> dict[str, Any]:
    """The rates in ``path``, or the shipped Staffordshire-like calibration."""
    if path is None:
        text = resources.files("carecontract.synth").joinpath("rates.yaml").read_text()
    else:
        text = Path(path).read_text()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster
    return yaml.load(text, Loader=loader)
