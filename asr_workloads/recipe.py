"""Training recipes: what to train, on which corpus, for how long, with which compression.

A recipe is a YAML file (bundled presets live in ``asr_workloads/recipes/``); every key is
checked here, before any training starts, so a misspelt key fails in one line that names
the file and the key. This module needs numpy and pyyaml only, so recipes can be checked on
a machine without torch.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .model_config import ModelConfig, check_keys, from_mapping

__all__ = [
    "PATTERNS",
    "CompressionConfig",
    "DistillationConfig",
    "PruningConfig",
    "Recipe",
    "RecipeError",
    "TrainingConfig",
    "load_recipe",
    "preset_names",
    "recipe_from_dict",
    "with_input_dim",
]

#: Sparsity patterns pruning can impose: unstructured, or N:M along each row.
PATTERNS = ("unstructured", "2:4")


class RecipeError(ValueError):
    """A recipe file that cannot be used (names the file and the key)."""


def _number(where: str, value: Any, low: float, high: float | None = None) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{where} must be a number, not {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{where} must be {bound}, not {value!r}")
    return value


def _count(where: str, value: Any, low: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{where} must be an integer >= {low}, not {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The optimisation schedule.

    Parameters
    ----------
    steps : int
        Optimizer steps in all.
    batch_size : int
        Utterances per step.
    learning_rate : float
        Peak Adam learning rate, reached after ``warmup_steps`` and decayed (cosine) to
        ``final_learning_rate`` at the last step.
    transducer_learning_rate : float or None
        None: one warm-up and cosine over the whole run. A rate: two of them, one per phase.
        The CTC phase's cosine ends at ``final_learning_rate`` at ``ctc_only_steps``; the
        transducer phase warms up again (over ``transducer_warmup_steps``) to this peak and
        decays to ``final_learning_rate`` at the last step. With one cosine over a long CTC
        phase, the freshly initialised prediction and joint networks would start near the
        final rate and barely train.
    ctc_weight : float
        Weight of the encoder's CTC loss beside the RNN-T loss. Both are summed per utterance
        and divided by the batch size (not by the target length): without it at full scale,
        the prediction network memorises a small corpus's phrases and the encoder is ignored.
    prune_window : int
        0: the transducer loss runs the joint network on the whole ``T x (U+1)`` lattice. A
        window ``S``: the pruned RNN-T loss (:mod:`.rnnt.pruned_loss`) runs it on ``S`` label
        positions per frame, chosen by a simple joint (the CTC head's logits plus a linear
        map of the prediction network's output, a training aid like the CTC head). On the
        default model a transducer step then costs 2 CTC-only steps instead of 3.6.
    simple_loss_weight : float
        Weight of the simple joint's RNN-T loss when ``prune_window`` is set (it must learn
        the alignments that choose the windows).
    bfloat16 : bool
        Run the networks' matrix products (the fused LSTM kernel, the joint, the CTC head)
        in bfloat16 under PyTorch's CPU autocast; parameters, optimizer state, the
        prediction network's recurrence and every loss stay float32. On a CPU with bfloat16
        instructions, a default-model CTC-only step takes 0.71x the time and a pruned
        transducer step 0.79x. Meant for float training: fake-quantized weights would be
        rounded again to bfloat16's 8-bit significand.
    predictor_dropout : float
        Probability, at the first transducer step (``ctc_only_steps``), of zeroing an
        utterance's prediction-network output; ramps linearly to 0 at
        ``predictor_dropout_until`` (forces the encoder to carry the transcript early on).
    vocal_tract_warp : float
        Each training utterance's formants are scaled by a factor drawn uniformly from
        ``[1 - vocal_tract_warp, 1 + vocal_tract_warp]`` (``corpus.augment.warp_vocal_tract``),
        a new voice every epoch; 0 turns it off.
    spec_augment : dict
        ``time_masks``, ``time_width``, ``freq_masks``, ``freq_width`` (frames / bands).
    ctc_only_steps : int
        Steps at the start that train the encoder alone, as a CTC model (no prediction or
        joint network: about half the cost of a transducer step). The encoder learns to
        align sounds with characters first; the transducer then starts from it instead of
        from a language model of the transcripts.
    sorted_steps : int
        Steps at the start that draw utterances shortest first (a curriculum; see
        ``training.batches.TrainingOrder``).
    compute_penalty_start, compute_penalty_ramp : int
        Branching encoder only: the compute penalty is off before ``compute_penalty_start``
        and ramps linearly to its full weight over the next ``compute_penalty_ramp`` steps,
        so both branches learn before the gate is asked to save compute (applied from step
        0, it shuts the expensive branch off before the transducer loss can value it).
    checkpoint_every, log_every : int
        Steps between resumable checkpoints and between progress records.
    """

    steps: int
    batch_size: int = 32
    learning_rate: float = 1.5e-3
    final_learning_rate: float = 5e-5
    transducer_learning_rate: float | None = None
    transducer_warmup_steps: int = 100
    warmup_steps: int = 200
    grad_clip: float = 5.0
    ctc_weight: float = 0.5
    prune_window: int = 0
    simple_loss_weight: float = 0.5
    bfloat16: bool = False
    predictor_dropout: float = 0.5
    predictor_dropout_until: int = 1000
    vocal_tract_warp: float = 0.0
    spec_augment: dict[str, int] = dataclasses.field(
        default_factory=lambda: {
            "time_masks": 2,
            "time_width": 10,
            "freq_masks": 2,
            "freq_width": 5,
        }
    )
    ctc_only_steps: int = 0
    sorted_steps: int = 0
    compute_penalty_start: int = 0
    compute_penalty_ramp: int = 0
    checkpoint_every: int = 200
    log_every: int = 20

    def __post_init__(self) -> None:
        _count("train.steps", self.steps)
        _count("train.batch_size", self.batch_size)
        _number("train.learning_rate", self.learning_rate, 0.0)
        _number("train.final_learning_rate", self.final_learning_rate, 0.0)
        _count("train.warmup_steps", self.warmup_steps, 0)
        _number("train.grad_clip", self.grad_clip, 0.0)
        _number("train.ctc_weight", self.ctc_weight, 0.0)
        _count("train.prune_window", self.prune_window, 0)
        _number("train.simple_loss_weight", self.simple_loss_weight, 0.0)
        if not isinstance(self.bfloat16, bool):
            raise ValueError(f"train.bfloat16 must be true or false, not {self.bfloat16!r}")
        _number("train.predictor_dropout", self.predictor_dropout, 0.0, 1.0)
        _number("train.vocal_tract_warp", self.vocal_tract_warp, 0.0, 0.5)
        _count("train.predictor_dropout_until", self.predictor_dropout_until, 0)
        _count("train.ctc_only_steps", self.ctc_only_steps, 0)
        _count("train.transducer_warmup_steps", self.transducer_warmup_steps, 0)
        if self.transducer_learning_rate is not None:
            _number("train.transducer_learning_rate", self.transducer_learning_rate, 0.0)
            if not 0 < self.ctc_only_steps < self.steps:
                raise ValueError(
                    "train.transducer_learning_rate needs a CTC phase and a transducer phase: "
                    f"0 < train.ctc_only_steps < train.steps, not {self.ctc_only_steps}"
                )
        if self.predictor_dropout_until and self.predictor_dropout_until <= self.ctc_only_steps:
            raise ValueError(
                "train.predictor_dropout_until must come after train.ctc_only_steps "
                f"({self.ctc_only_steps}), not {self.predictor_dropout_until}"
            )
        _count("train.sorted_steps", self.sorted_steps, 0)
        _count("train.compute_penalty_start", self.compute_penalty_start, 0)
        _count("train.compute_penalty_ramp", self.compute_penalty_ramp, 0)
        _count("train.checkpoint_every", self.checkpoint_every)
        _count("train.log_every", self.log_every)
        known = ("time_masks", "time_width", "freq_masks", "freq_width")
        check_keys(self.spec_augment, known, "train.spec_augment")
        for key, value in self.spec_augment.items():
            _count(f"train.spec_augment.{key}", value, 0)


@dataclasses.dataclass(frozen=True)
class PruningConfig:
    """Gradual magnitude pruning to ``sparsity`` between ``start`` and ``end`` (steps).

    The fraction pruned follows Zhu and Gupta's cubic schedule; masks are recomputed every
    ``every`` steps. ``pattern`` is ``"unstructured"`` (per matrix) or ``"2:4"`` (two of
    every four consecutive weights of a row kept; the sparsity is then 0.5 by construction).
    """

    sparsity: float
    start: int
    end: int
    pattern: str = "unstructured"
    every: int = 50

    def __post_init__(self) -> None:
        _number("compression.pruning.sparsity", self.sparsity, 0.0, 0.99)
        _count("compression.pruning.start", self.start, 0)
        _count("compression.pruning.end", self.end, self.start)
        _count("compression.pruning.every", self.every)
        if self.pattern not in PATTERNS:
            raise ValueError(
                f"compression.pruning.pattern must be one of {', '.join(PATTERNS)}, "
                f"not {self.pattern!r}"
            )
        if self.pattern == "2:4" and self.sparsity != 0.5:
            raise ValueError(
                f"compression.pruning.sparsity must be 0.5 for pattern 2:4, not {self.sparsity}"
            )


@dataclasses.dataclass(frozen=True)
class CompressionConfig:
    """Quantization-aware training and pruning.

    Parameters
    ----------
    precision : str or None
        ``"int8"`` or ``"int4"`` weights (fake-quantized from ``qat_start`` on), or None for
        a float model.
    qat_start : int
        Step at which fake quantization switches on (the float model settles first).
    grid_weight : float
        Weight of the regulariser pulling weights toward the quantization grid.
    pruning : PruningConfig or None
    """

    precision: str | None = None
    qat_start: int = 0
    grid_weight: float = 0.0
    pruning: PruningConfig | None = None

    def __post_init__(self) -> None:
        if self.precision not in (None, "int8", "int4"):
            raise ValueError(
                f"compression.precision must be int8, int4 or null, not {self.precision!r}"
            )
        _count("compression.qat_start", self.qat_start, 0)
        _number("compression.grid_weight", self.grid_weight, 0.0)


@dataclasses.dataclass(frozen=True)
class DistillationConfig:
    """Teacher-student training: the student also matches a trained teacher's joint outputs.

    ``teacher`` is a recipe name or file whose trained model is found in ``--teacher-dir``
    (the teacher's output directory); ``weight`` scales the KL term; ``temperature``
    softens both distributions.
    """

    teacher: str
    weight: float = 0.5
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.teacher, str) or not self.teacher:
            raise ValueError(
                f"distillation.teacher must be a non-empty string, not {self.teacher!r}"
            )
        _number("distillation.weight", self.weight, 0.0)
        _number("distillation.temperature", self.temperature, 1e-3)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A whole recipe; ``source`` is the file it came from (for messages)."""

    name: str
    corpus: str
    stack: int
    subsample: int
    model: ModelConfig
    train: TrainingConfig
    compression: CompressionConfig
    distillation: DistillationConfig | None
    seed: int
    init: str | None
    description: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The recipe as YAML-ready data (what a trained model's metadata records)."""
        return {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "corpus": self.corpus,
            "init": self.init,
            "frontend": {"stack": self.stack, "subsample": self.subsample},
            "model": {k: v for k, v in self.model.to_dict().items() if k != "input_dim"},
            "train": dataclasses.asdict(self.train),
            "compression": dataclasses.asdict(self.compression),
            "distillation": None
            if self.distillation is None
            else dataclasses.asdict(self.distillation),
        }


_TOP_KEYS = {
    "name",
    "description",
    "seed",
    "corpus",
    "init",
    "frontend",
    "model",
    "train",
    "compression",
    "distillation",
}


def _parse(data: Any, source: str) -> Recipe:
    if not isinstance(data, dict):
        raise ValueError(f"a recipe must be a mapping, not {type(data).__name__}")
    check_keys(data, _TOP_KEYS)
    for key in ("name", "corpus", "model", "train"):
        if key not in data:
            raise ValueError(f"missing key {key}")
    frontend = data.get("frontend") or {}
    check_keys(frontend, ("stack", "subsample"), "frontend")
    stack = _count("frontend.stack", frontend.get("stack", 1))
    subsample = _count("frontend.subsample", frontend.get("subsample", 1))
    model = dict(data["model"]) if isinstance(data["model"], dict) else data["model"]
    if isinstance(model, dict) and "input_dim" in model:
        raise ValueError("model.input_dim is derived (corpus n_mels x frontend.stack); remove it")
    compression = dict(data.get("compression") or {})
    if compression.get("pruning") is not None:
        compression["pruning"] = from_mapping(
            PruningConfig, compression["pruning"], "compression.pruning"
        )
    distillation = data.get("distillation")
    train = from_mapping(TrainingConfig, data["train"], "train")
    if distillation is not None and train.prune_window:
        raise ValueError(
            "distillation compares the joint's outputs over the whole lattice: it needs "
            f"train.prune_window 0, not {train.prune_window}"
        )
    return Recipe(
        name=str(data["name"]),
        description=str(data.get("description", "")),
        seed=_count("seed", data.get("seed", 0), 0),
        corpus=str(data["corpus"]),
        init=data.get("init"),
        stack=stack,
        subsample=subsample,
        # The input width depends on the corpus's mel bands; a placeholder of 1 keeps the
        # config checkable here, and `with_input_dim` sets the real one.
        model=ModelConfig.from_dict({**model, "input_dim": 1}),
        train=train,
        compression=from_mapping(CompressionConfig, compression, "compression"),
        distillation=None
        if distillation is None
        else from_mapping(DistillationConfig, distillation, "distillation"),
        source=source,
    )


def recipe_from_dict(data: Any, source: str) -> Recipe:
    """A recipe from its data (a YAML file's, or ``Recipe.to_dict`` of an older version).

    Keys a newer version added are filled with their defaults, so comparing
    ``recipe_from_dict(old).to_dict()`` with a current recipe's compares what they mean.

    Raises
    ------
    RecipeError
        Naming ``source`` and the offending key.
    """
    try:
        return _parse(data, source)
    except (ValueError, TypeError) as error:
        raise RecipeError(f"{source}: {error}") from None


def with_input_dim(recipe: Recipe, n_mels: int) -> ModelConfig:
    """The recipe's model for features of ``n_mels`` bands stacked ``recipe.stack`` times."""
    return dataclasses.replace(recipe.model, input_dim=n_mels * recipe.stack)


def preset_names() -> list[str]:
    """Names of the bundled recipes."""
    folder = resources.files(__package__) / "recipes"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A recipe from a YAML file, or a bundled preset by name.

    Raises
    ------
    RecipeError
        Naming the file and the offending key.
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        if str(name_or_path) not in preset_names():
            raise RecipeError(
                f"no recipe {str(name_or_path)!r}: not a .yaml file, nor a preset "
                f"({', '.join(preset_names())})"
            )
        path = Path(str(resources.files(__package__) / "recipes" / f"{name_or_path}.yaml"))
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise RecipeError(f"{path}: cannot read recipe ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML ({error})") from None
    return recipe_from_dict(data, str(path))
