"""``edgenpu asr``: build corpora, train, evaluate, export and run the speech models.

Training and export need the optional ``train`` extra (PyTorch); synthesis needs the
espeak-ng and flite programs; evaluating and running a bundle need numpy only.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import click

from edgenpu.errors import EdgenpuError

__all__ = ["asr"]


class MissingTool(EdgenpuError):
    """An optional dependency the command needs is not installed."""


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingTool(
            "PyTorch is not installed: install the train extra (pip install -e '.[train]')"
        ) from None


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean bad input rather than a bug."""
    from .bundle import BundleError
    from .corpus import CorpusError, CorpusSpecError, SynthesizerError
    from .recipe import RecipeError
    from .wav import WavError

    errors: list[type[BaseException]] = [
        EdgenpuError,
        BundleError,
        CorpusError,
        CorpusSpecError,
        SynthesizerError,
        RecipeError,
        WavError,
    ]
    try:
        from .training.trainer import TrainingError

        errors.append(TrainingError)
    except ImportError:
        pass
    return tuple(errors)


def _one_line_errors(fn):
    """Print a user-caused error as one ``error:`` line and exit with status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _user_errors() as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)

    return wrapper


class _Bar:
    """A progress bar on stderr driven by ``(done, total)`` callbacks."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None
        self.done = 0

    def __call__(self, done: int, total: int, *_: object) -> None:
        if done == 0:  # nothing to show yet (and a start that fails prints no bar)
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


#: The feature cache a command reads, defined once for every command that takes one.
_CORPUS = click.option(
    "--corpus",
    "corpus_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Feature cache built by `edgenpu asr synth`.",
)


@click.group()
def asr() -> None:
    """Speech workloads: corpora, RNN-T training, evaluation, export."""


@asr.command()
@click.option(
    "--corpus",
    "corpus",
    default="default",
    show_default=True,
    help="Corpus spec: a YAML file or a preset name (tiny, default).",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of the feature cache (resumed if it holds an unfinished build).",
)
@click.option("-j", "--jobs", default=2, show_default=True, help="Worker processes.")
@_one_line_errors
def synth(corpus: str, out_dir: Path, jobs: int) -> None:
    """Synthesize a speech corpus and cache its log-mel features."""
    from .corpus import build_corpus, load_spec, preset_spec

    spec = load_spec(corpus) if corpus.endswith((".yaml", ".yml")) else preset_spec(corpus)
    bar = _Bar(f"synthesizing {spec.name}")
    started = time.monotonic()
    try:
        built = build_corpus(spec, out_dir, jobs=jobs, progress=bar)
    finally:
        bar.close()
    for split, count in built.items():
        click.echo(f"{split}: {'skipped' if count is None else f'{count} utterances'}")
    click.echo(f"corpus {spec.name} in {out_dir} ({time.monotonic() - started:.0f} s)")


@asr.command()
@click.option(
    "-r", "--recipe", "recipe_name", required=True, help="Recipe: a YAML file or a preset name."
)
@_CORPUS
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder; a checkpoint there is resumed.",
)
@click.option(
    "--init",
    "init_dir",
    type=click.Path(exists=True, path_type=Path),
    help="Finished run to start from (the recipe's `init`).",
)
@click.option(
    "--teacher",
    "teacher_dir",
    type=click.Path(exists=True, path_type=Path),
    help="Finished teacher run (recipes with `distillation`).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="PyTorch threads per worker (default: PyTorch's choice).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes that split every batch (with --threads 1, one per core); the run is the "
    "same whatever the count. benchmarks/data_parallel_speed.py tells which is faster here.",
)
@_one_line_errors
def train(
    recipe_name: str,
    corpus_dir: Path,
    out_dir: Path,
    init_dir: Path | None,
    teacher_dir: Path | None,
    threads: int | None,
    workers: int,
) -> None:
    """Train a recipe; writes model.pt, a bundle and log.jsonl to the output folder."""
    from .recipe import load_recipe

    recipe = load_recipe(recipe_name)
    if recipe.init is not None and init_dir is None:
        raise click.UsageError(
            f"recipe {recipe.name} starts from a trained {recipe.init!r} model: give --init"
        )
    _require_torch()
    from .bundle import save_bundle
    from .training.trained import load_trained, to_bundle
    from .training.trainer import train as run_training

    bar = _Bar(f"training {recipe.name}")
    started = time.monotonic()
    try:
        model_path = run_training(
            recipe,
            corpus_dir,
            out_dir,
            init_dir=init_dir,
            teacher_dir=teacher_dir,
            progress=bar,
            threads=threads,
            workers=workers,
        )
    finally:
        bar.close()
    trained = load_trained(model_path)
    yaml_path, _ = save_bundle(to_bundle(trained), out_dir / recipe.name)
    click.echo(
        f"trained {recipe.name}: {model_path} and bundle {yaml_path} "
        f"({time.monotonic() - started:.0f} s in this run)"
    )


def _recognizer(model_path: Path, precision: str | None | bool):
    """A recognizer and its front end for a training output or a bundle."""
    from .text import decode

    if model_path.suffix in (".yaml", ".npz"):
        from .bundle import load_bundle
        from .numpy_model import greedy_decode as numpy_decode

        if precision is not True:
            raise click.UsageError("--precision applies to trained models, not bundles")
        bundle = load_bundle(model_path)

        def recognize(features, lengths):
            return [
                decode(numpy_decode(bundle, f[:n])) for f, n in zip(features, lengths, strict=True)
            ]

        return recognize, bundle.frontend
    _require_torch()
    import torch

    from .rnnt.decode import greedy_decode
    from .training.trained import load_trained

    trained = load_trained(model_path)
    model = trained.model(precision)

    def recognize(features, lengths):
        hypotheses = greedy_decode(model, torch.from_numpy(features), torch.from_numpy(lengths))
        return [decode(h) for h in hypotheses]

    return recognize, trained.frontend


@asr.command("eval")
@click.argument("model_path", type=click.Path(exists=True, path_type=Path))
@_CORPUS
@click.option(
    "--split",
    "splits",
    multiple=True,
    help="Split(s) to score (default: every evaluation split the corpus has).",
)
@click.option(
    "--precision",
    type=click.Choice(["trained", "float", "int8", "int4"]),
    default="trained",
    show_default=True,
    help="Weights of a trained model: as trained, or post-training quantized.",
)
@click.option("--limit", type=int, default=None, help="Score at most N utterances per split.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@_one_line_errors
def evaluate(
    model_path: Path,
    corpus_dir: Path,
    splits: tuple[str, ...],
    precision: str,
    limit: int | None,
    as_json: bool,
) -> None:
    """Word/character error rates of a trained model (model.pt or its folder) or a bundle."""
    from .corpus import CorpusError, open_split
    from .evaluate import EVALUATION_SPLITS, check_frontend, evaluate_split

    chosen = {"trained": True, "float": None}.get(precision, precision)
    recognize, frontend = _recognizer(model_path, chosen)
    results = []
    for name in splits or EVALUATION_SPLITS:
        try:
            split = open_split(corpus_dir, name)
        except CorpusError as error:
            if splits:
                raise
            click.echo(f"skipping {name}: {error}", err=True)
            continue
        check_frontend(split.frontend, frontend, f"{corpus_dir}/{name}")
        bar = _Bar(f"{name}")
        try:
            results.append(
                evaluate_split(recognize, split, name, frontend, limit=limit, progress=bar)
            )
        finally:
            bar.close()
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    click.echo(f"{'split':<18} {'utts':>6} {'words':>7} {'WER %':>7} {'CER %':>7}")
    for r in results:
        click.echo(
            f"{r.split:<18} {r.utterances:>6} {r.words:>7} {100 * r.wer:>7.2f} {100 * r.cer:>7.2f}"
        )


@asr.command()
@click.argument("model_path", type=click.Path(exists=True, path_type=Path))
@click.argument(
    "wavs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@_one_line_errors
def transcribe(model_path: Path, wavs: tuple[Path, ...]) -> None:
    """Transcribe WAV files with a bundle (numpy only: no PyTorch needed), or with a model
    compiled by `edgenpu compile` (a folder), run instruction by instruction in the
    functional simulator."""
    from .frontend import FrontEndConfig, check_input_rate
    from .wav import WavError, read_wav

    if model_path.is_dir():
        from ..compiler.host import SimulatedModel
        from ..errors import CompileError

        simulated = SimulatedModel.load(model_path)
        frontend_data = simulated.manifest.get("frontend")
        if frontend_data is None:
            raise CompileError(
                f"{model_path}: the compiled model has no front end (an ONNX export)"
            )
        frontend = FrontEndConfig.from_dict(frontend_data)
        run = simulated.transcribe
    else:
        from .bundle import load_bundle
        from .numpy_model import transcribe as run_bundle

        bundle = load_bundle(model_path)
        frontend = bundle.frontend

        def run(audio, rate):
            return run_bundle(bundle, audio, rate)

    for wav in wavs:
        audio, rate = read_wav(wav)
        try:
            check_input_rate(rate, frontend)
        except ValueError as error:
            raise WavError(f"{wav}: {error}") from None
        click.echo(f"{wav}\t{run(audio, rate)}")


@asr.command()
@click.argument("run_dir", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for the bundle and the ONNX graphs.",
)
@click.option(
    "--peer",
    is_flag=True,
    help="Also write onnxruntime's quantize_dynamic int8 graphs under peer/.",
)
@click.option(
    "--precision",
    type=click.Choice(["trained", "int8", "int4"]),
    default="trained",
    show_default=True,
    help="Weights as trained, or a float model quantized after training.",
)
@_one_line_errors
def export(run_dir: Path, out_dir: Path, peer: bool, precision: str) -> None:
    """Export a trained model as a bundle (.npz + .yaml) and as ONNX graphs."""
    _require_torch()
    from .bundle import save_bundle
    from .bundle_sizes import weight_sizes
    from .onnx_export import ExportError, export_onnx
    from .training.trained import load_trained, to_bundle

    trained = load_trained(run_dir)
    if precision != "trained" and trained.precision is not None:
        raise click.UsageError(
            f"{run_dir}: was trained for {trained.precision}; --precision quantizes float models"
        )
    post_training = None if precision == "trained" else precision
    bundle = to_bundle(trained, precision=post_training)
    out_dir.mkdir(parents=True, exist_ok=True)
    yaml_path, _ = save_bundle(bundle, out_dir / trained.recipe["name"])
    click.echo(f"bundle: {yaml_path}")
    click.echo(weight_sizes(bundle).table())
    try:
        paths = export_onnx(trained.model(precision=post_training or True), out_dir)
    except ExportError as error:
        click.echo(f"onnx: skipped ({error})")
        return
    click.echo("onnx: " + ", ".join(str(p) for p in paths.values()))
    if peer:
        from .onnx_peer import initializer_bytes, quantize_peer

        peer_paths = quantize_peer(out_dir, out_dir / "peer")
        click.echo(f"peer (quantize_dynamic int8): {initializer_bytes(peer_paths)} bytes")


@asr.command()
@click.argument(
    "runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@_CORPUS
@click.option(
    "--post-training",
    is_flag=True,
    help="Also score float models quantized after training (int8, int4).",
)
@click.option(
    "--peer",
    is_flag=True,
    help="Also score onnxruntime's quantize_dynamic int8 of each float model.",
)
@click.option("--limit", type=int, default=None, help="Score at most N utterances per split.")
@click.option(
    "-o",
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON results file, rewritten as each row finishes.",
)
@_one_line_errors
def report(
    runs: tuple[Path, ...],
    corpus_dir: Path,
    post_training: bool,
    peer: bool,
    limit: int | None,
    out_path: Path | None,
) -> None:
    """Table of trained models (RUNS: training output folders): bytes and WER per test set."""
    _require_torch()
    from .report import format_markdown, report_rows

    rows = report_rows(
        list(runs),
        corpus_dir,
        post_training=post_training,
        peer=peer,
        limit=limit,
        out=out_path,
        progress=lambda line: click.echo(line, err=True),
    )
    click.echo(format_markdown(rows))
