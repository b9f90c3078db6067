"""``edgenpu compile``: a bundle or an ONNX export -> program, DRAM image, manifest, report.

A thin layer: :func:`load_model` picks the frontend, :func:`~.compile.compile_model`
compiles, :mod:`.manifest` and :mod:`.report` say what came out. Every error a user can
cause is one ``error: ...`` line and exit status 1.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from pathlib import Path

import click
import numpy as np

from edgenpu.errors import CompileError, EdgenpuError
from edgenpu.formats import FormatError

__all__ = ["compile_command", "load_model"]


def _one_line_errors(fn):
    """Print a user-caused error as one ``error:`` line and exit with status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (EdgenpuError, FormatError) as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)

    return wrapper


def load_model(path: str | Path):
    """The IR of the model at ``path``: a bundle (``.yaml``/``.npz``) or a folder holding
    ``encoder.onnx``, ``predictor.onnx`` and ``joint.onnx``.

    Raises
    ------
    CompileError
        A missing path, a single ``.onnx`` file (one part of an RNN-T), or anything else
        that is neither; the frontends' own errors name the file and node at fault.
    """
    from .frontends.bundle_frontend import from_bundle
    from .frontends.onnx_frontend import PARTS, load_onnx, load_onnx_graph

    path = Path(path)
    if path.is_dir():
        return load_onnx(path)
    if not path.exists():
        raise CompileError(f"{path}: no such model (a bundle .yaml or an ONNX export folder)")
    if path.suffix in (".yaml", ".yml", ".npz"):
        from ..asr_workloads.bundle import load_bundle

        return from_bundle(load_bundle(path), source=str(path))
    if path.suffix == ".onnx":
        load_onnx_graph(path)  # its own errors (an unsupported op, ...) first
        parts = ", ".join(f"{p}.onnx" for p in PARTS)
        raise CompileError(
            f"{path}: one ONNX file is one part of an RNN-T; give the folder holding {parts}"
        )
    raise CompileError(f"{path}: not a bundle (.yaml) or an ONNX export folder")


def calibration_samples(model, paths) -> list[np.ndarray]:
    """Encoder input features from ``paths``: every array of an ``.npz``, and each WAV file
    through the model's front end (as a recognizer would compute them)."""
    from ..asr_workloads.frontend import check_input_rate, features
    from ..asr_workloads.wav import read_wav

    samples = []
    for path in paths:
        if path.suffix == ".npz":
            try:
                with np.load(path) as data:
                    samples += [np.asarray(data[name], np.float32) for name in data.files]
            except (OSError, ValueError) as error:
                raise CompileError(f"{path}: not an .npz of feature arrays ({error})") from None
        elif path.suffix == ".wav":
            if model.frontend is None:
                raise CompileError(
                    f"{path}: the model has no front end (an ONNX export); give features as .npz"
                )
            audio, rate = read_wav(path)
            try:
                check_input_rate(rate, model.frontend)
            except ValueError as error:
                raise CompileError(f"{path}: {error}") from None
            samples.append(features(audio, rate, model.frontend))
        else:
            raise CompileError(f"{path}: calibration takes .wav or .npz files")
    return samples


def _compare(model, compiled, config, spec) -> list[dict]:
    """Weight bytes per unit of audio of the encoder under each schedule."""
    from .compile import compile_model
    from .report import weight_rate
    from .spec import SCHEDULES

    rows = []
    for schedule in SCHEDULES:
        row: dict = {"schedule": schedule}
        try:
            other = (
                compiled
                if schedule == spec.schedule
                else compile_model(model, config, dataclasses.replace(spec, schedule=schedule))
            )
        except CompileError as error:
            rows.append({**row, "error": str(error)})
            continue
        rate = weight_rate(other)
        rows.append(
            {
                **row,
                "chunk_frames": other.qmodel.chunk_frames,
                "bytes_per_call": rate.bytes_per_call,
                "per": rate.per,
                "rate": rate.rate,
            }
        )
    return rows


def _print_compare(rows: list[dict]) -> None:
    per = next((r["per"] for r in rows if "per" in r), "second of audio")
    click.echo(f"encoder DRAM weight bytes per {per}, by schedule:")
    for r in rows:
        if "error" in r:
            click.echo(f"  {r['schedule']:<12} does not compile: {r['error']}")
        else:
            click.echo(
                f"  {r['schedule']:<12} {r['rate']:>14,.0f}  ({r['bytes_per_call']:,} B per "
                f"{r['chunk_frames']}-frame call)"
            )


@click.command("compile")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option(
    "-c",
    "--config",
    "config_name",
    required=True,
    help="Hardware config: a YAML file or a bundled name.",
)
@click.option(
    "-s",
    "--spec",
    "spec_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Compile spec YAML (chunk_frames, schedule, precision, formats, input_range).",
)
@click.option(
    "-o",
    "--outdir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for program.bin, dram.bin, manifest.yaml, listing.s and report.json.",
)
@click.option(
    "--calibration",
    "calibration_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sample utterances whose activation ranges tighten the formats: WAV files (through "
    "the model's front end) or .npz files of encoder input features, one (T, F) array each.",
)
@click.option(
    "--compare-schedules",
    is_flag=True,
    help="Also compile every schedule and print the encoder's DRAM weight bytes per second "
    "of audio for each.",
)
@_one_line_errors
def compile_command(
    model_path: Path,
    config_name: str,
    spec_path: Path | None,
    outdir: Path,
    calibration_paths: tuple[Path, ...],
    compare_schedules: bool,
) -> None:
    """Compile MODEL (a bundle .yaml or an ONNX export folder) for a config into OUTDIR,
    and print its per-layer MACs, weight bytes and modeled cycles."""
    import yaml

    from edgenpu.config import load_config

    from .compile import compile_model
    from .manifest import dram_image, listing, manifest, write_outputs
    from .report import compile_report, format_report, report_to_dict
    from .spec import CompileSpec, load_spec

    config = load_config(config_name)
    spec = load_spec(spec_path) if spec_path is not None else CompileSpec()
    model = load_model(model_path)
    samples = calibration_samples(model, calibration_paths)
    compiled = compile_model(model, config, spec, calibration=samples)
    source = str(model_path)
    report = compile_report(compiled, source)
    summary = report_to_dict(report)
    compared = _compare(model, compiled, config, spec) if compare_schedules else None
    if compared is not None:
        summary["schedules"] = compared
    deviation = None
    if samples:  # the quantized reference against the float model on the first sample
        from .quant.reference import deviation as measure_deviation

        deviation = measure_deviation(model, compiled.qmodel, samples[0])
        summary["deviation"] = deviation.as_dict()
    text = yaml.safe_dump(manifest(compiled, source), sort_keys=False, default_flow_style=None)
    files = {
        "program.bin": compiled.program.to_bytes(),
        "dram.bin": dram_image(compiled),
        "manifest.yaml": text.encode(),
        "listing.s": listing(compiled).encode(),
        "report.json": (json.dumps(summary, indent=2) + "\n").encode(),
    }
    write_outputs(outdir, files)
    click.echo(
        f"{source} -> {outdir}: {len(compiled.program.words):,} instructions, "
        f"{compiled.dram_bytes:,} B of {config.name}'s {config.dram.bytes:,} B DRAM, "
        f"{spec.schedule}, {compiled.qmodel.chunk_frames} frames a chunk"
    )
    click.echo(format_report(report))
    if deviation is not None:
        click.echo(
            f"quantized vs float on {calibration_paths[0].name}: encoder max |error| "
            f"{deviation.encoder_error:.4f} (rms {deviation.encoder_rms:.4f}), logits max "
            f"|error| {deviation.logits_error:.4f} (rms {deviation.logits_rms:.4f}), best token "
            f"agrees on {100 * deviation.argmax_agreement:.1f} % of frames"
        )
    if compared is not None:
        _print_compare(compared)
