"""Where the benchmark scripts find a bundle (imported as ``bundles`` by scripts run from this
folder): a committed checkpoint by name, or any bundle's ``.yaml``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHECKPOINTS", "bundle_path"]

CHECKPOINTS = Path(__file__).resolve().parents[1] / "asr_workloads" / "checkpoints"


def bundle_path(name_or_yaml: str) -> Path:
    """``name_or_yaml`` if it is a ``.yaml`` file's path, else the committed bundle so named."""
    path = Path(name_or_yaml)
    return path if path.suffix == ".yaml" else CHECKPOINTS / f"{name_or_yaml}.yaml"
