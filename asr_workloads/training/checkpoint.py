"""Files a training run leaves in its output directory, each written atomically.

* ``checkpoint.pt``: everything needed to resume (model, optimizer, masks, step), replaced
  every ``train.checkpoint_every`` steps;
* ``model.pt``: the finished model (config, front end, recipe, weights, masks, precision);
* ``log.jsonl``: one JSON record per ``train.log_every`` steps, appended as training goes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...atomic import atomic_output

__all__ = ["CHECKPOINT", "LOG", "MODEL", "append_log", "atomic_save", "read_log"]

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
LOG = "log.jsonl"


def atomic_save(payload: Any, path: Path) -> None:
    """``torch.save`` through :func:`edgenpu.atomic.atomic_output`."""
    import torch

    with atomic_output(path) as temp:
        torch.save(payload, temp)


def append_log(out_dir: Path, record: dict[str, Any]) -> None:
    """Append one record to the run's log (a whole line per write)."""
    with open(Path(out_dir) / LOG, "a") as log:
        log.write(json.dumps(record) + "\n")


def read_log(out_dir: Path) -> list[dict[str, Any]]:
    """The run's log records (an empty list before the first)."""
    path = Path(out_dir) / LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
