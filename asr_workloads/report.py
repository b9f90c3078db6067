"""The results table of trained models: size, bytes and error rates side by side.

One row per (model, weights) pair: a trained model at the precision it was trained for,
optionally a float model post-training quantized (to show what QAT buys), and the peer a
user would otherwise pick, onnxruntime's ``quantize_dynamic`` int8 of the float model. Each
finished row is written to the results file at once, so an interrupted report keeps them.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import write_atomically
from .bundle_sizes import weight_sizes
from .corpus import CorpusError, open_split
from .evaluate import EVALUATION_SPLITS, Recognizer, check_frontend, evaluate_split
from .rnnt.decode import greedy_decode
from .text import decode
from .training.batches import evaluation_order, make_batch
from .training.trained import TrainedModel, load_trained, to_bundle

__all__ = ["Row", "format_markdown", "report_rows"]


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table; ``wer``/``cer`` map split names to rates (0..1).

    ``model_bytes`` counts everything the model stores (weights, biases, quantization
    parameters); for the onnxruntime peer, every initializer of its graphs.
    """

    model: str
    weights: str
    parameters: int
    sparsity: float
    model_bytes: int
    wer: dict[str, float]
    cer: dict[str, float]
    train_minutes: float | None
    expensive_fraction: dict[str, float] | None = None


def _torch_recognizer(model) -> Recognizer:
    def recognize(features: np.ndarray, lengths: np.ndarray) -> list[str]:
        hypotheses = greedy_decode(model, torch.from_numpy(features), torch.from_numpy(lengths))
        return [decode(h) for h in hypotheses]

    return recognize


def _expensive_fraction(model, split: Any, frontend) -> float:
    """Fraction of encoder frames on which a branching model's gate runs the expensive branch."""
    used = total = 0
    with torch.no_grad():
        for indices in evaluation_order(np.asarray(split.frame_counts), 32):
            batch = make_batch(split, indices, frontend)
            encoded = model.encode(
                torch.from_numpy(batch.features), torch.from_numpy(batch.lengths)
            )
            valid = torch.arange(encoded.gate.shape[1])[None] < encoded.lengths[:, None]
            used += int(((encoded.gate >= 0.5) & valid).sum())
            total += int(valid.sum())
    return used / total


def _bytes(trained: TrainedModel, precision: str | None) -> tuple[int, float]:
    """Bytes the model stores at ``precision`` (matrices in the hardware's best format per
    matrix, float32 biases, float32 per-row scales when quantized) and its sparsity."""
    sizes = weight_sizes(to_bundle(trained))
    if precision is None:
        return sizes.float32 + sizes.biases, sizes.sparsity
    matrices = {"int8": sizes.int8_compressed, "int4": sizes.int4_compressed}[precision]
    return matrices + sizes.biases + sizes.scales, sizes.sparsity


def _train_minutes(trained: TrainedModel) -> float | None:
    return None if trained.seconds is None else round(trained.seconds / 60, 1)


def report_rows(
    runs: list[Path],
    corpus_dir: Path,
    post_training: bool = False,
    peer: bool = False,
    limit: int | None = None,
    out: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Evaluate each run (and its optional extra rows) on every evaluation split there is."""
    splits = {}
    for name in EVALUATION_SPLITS:
        try:
            splits[name] = open_split(corpus_dir, name)
        except CorpusError:
            continue
    rows: list[Row] = []

    def score(
        label: str,
        weights: str,
        recognize: Recognizer,
        trained: TrainedModel,
        weight_bytes: int,
        sparsity: float,
        model=None,
    ) -> None:
        wer, cer, expensive = {}, {}, {}
        for name, split in splits.items():
            check_frontend(split.frontend, trained.frontend, f"{corpus_dir}/{name}")
            result = evaluate_split(recognize, split, name, trained.frontend, limit=limit)
            wer[name], cer[name] = result.wer, result.cer
            if model is not None and trained.config.branching is not None:
                expensive[name] = _expensive_fraction(model, split, trained.frontend)
        params = sum(
            int(np.prod(v.shape)) for k, v in trained.state_dict.items() if not k.startswith("ctc.")
        )
        rows.append(
            Row(
                label,
                weights,
                params,
                sparsity,
                weight_bytes,
                wer,
                cer,
                _train_minutes(trained),
                expensive or None,
            )
        )
        if out is not None:
            _write_json(out, rows)
        if progress is not None:
            progress(
                f"{label} ({weights}): " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in wer.items())
            )

    for run in runs:
        trained = load_trained(run)
        label = trained.recipe["name"]
        precisions: list[str | None] = [trained.precision]
        if post_training and trained.precision is None:
            precisions += ["int8", "int4"]
        for precision in precisions:
            model = trained.model(precision)
            shown = dataclasses.replace(trained, precision=precision)
            weight_bytes, sparsity = _bytes(shown, precision)
            kind = precision or "float32"
            if precision != trained.precision:
                kind += " (post-training)"
            score(label, kind, _torch_recognizer(model), trained, weight_bytes, sparsity, model)
        if peer and trained.precision is None and trained.config.branching is None:
            from .onnx_export import export_onnx
            from .onnx_peer import OnnxRecognizer, initializer_bytes, quantize_peer

            with tempfile.TemporaryDirectory() as folder:
                export_onnx(trained.model(None), folder)
                paths = quantize_peer(folder, Path(folder) / "peer")
                score(
                    label,
                    "onnxruntime quantize_dynamic int8",
                    OnnxRecognizer(paths),
                    trained,
                    initializer_bytes(paths),
                    0.0,
                )
    return rows


def _write_json(path: Path, rows: list[Row]) -> None:
    text = json.dumps([dataclasses.asdict(r) for r in rows], indent=2)
    write_atomically(path, text.encode())


def format_markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table (WER in percent)."""
    splits = [s for s in EVALUATION_SPLITS if any(s in r.wer for r in rows)]
    head = [
        "model",
        "weights",
        "params",
        "sparsity",
        "model bytes",
        *[f"WER {s} %" for s in splits],
        "train min",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.model, r.weights, f"{r.parameters:,}", f"{r.sparsity:.0%}", f"{r.model_bytes:,}"]
        for s in splits:
            cell = f"{100 * r.wer[s]:.2f}" if s in r.wer else "-"
            if r.expensive_fraction and s in r.expensive_fraction:
                cell += f" ({100 * r.expensive_fraction[s]:.0f}% exp.)"
            cells.append(cell)
        cells.append("-" if r.train_minutes is None else f"{r.train_minutes:g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
