"""Files a training run leaves in its output directory, each written atomically.

* ``checkpoint.pt``: everything needed to resume (model, optimizer, masks, step), replaced
  every ``train.checkpoint_every`` steps;
* ``model.pt``: the finished model (config, front end, recipe, weights, masks, precision);
* ``log.jsonl``: one JSON record per ``train.log_every`` steps, appended as training goes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["CHECKPOINT", "LOG", "MODEL", "append_log", "atomic_save", "read_log"]

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
LOG = "log.jsonl"


def atomic_save(payload: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename over it."""
    import torch

    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, temp)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


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
