"""The training loop: a recipe, a feature cache and an output directory in; a model out.

One step: a length-bucketed batch (SpecAugment on), the RNN-T loss (on the whole lattice, or
pruned to a window per frame with its simple joint's loss beside it) plus the encoder's CTC
loss (all summed per utterance, divided by the batch size), the prediction network's output
dropped for a ramped-off fraction of utterances early on, the branching encoder's compute
penalty, the quantization-grid regulariser and distillation when the recipe asks; Adam with
warm-up and cosine decay, gradient clipping, then the pruning masks re-applied. The run
checkpoints every ``checkpoint_every`` steps and resumes from its last checkpoint when
started again on the same output directory. With ``workers`` > 1 the batch of every step is
split over that many processes (:mod:`.data_parallel`), computing what one process would.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..corpus.feature_cache import open_split
from ..frontend import FrontEndConfig
from ..recipe import Recipe, recipe_from_dict, with_input_dim
from ..rnnt.fake_quant import grid_regularizer
from ..rnnt.loss import rnnt_loss
from ..rnnt.model import RNNT
from ..rnnt.pruned_loss import pruned_rnnt_loss, window_size
from ..rnnt.pruning import Pruner
from ..text import BLANK
from .batches import TrainingOrder, feature_statistics, make_batch, take_rows
from .checkpoint import CHECKPOINT, LOG, MODEL, append_log, atomic_save, read_log
from .data_parallel import Shard, all_reduce_max, all_reduce_sum, run_workers, sum_gradients
from .mixed_precision import network_autocast
from .trained import load_trained, trained_payload

__all__ = [
    "TrainingError",
    "compute_penalty_scale",
    "learning_rate",
    "predictor_dropout",
    "train",
]


class TrainingError(RuntimeError):
    """A run that cannot start or continue (names the file or setting at fault)."""


def _warmup_cosine(step: int, steps: int, warmup: int, peak: float, final: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min((step - warmup) / max(steps - warmup, 1), 1.0)
    return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * progress))


def learning_rate(step: int, recipe: Recipe) -> float:
    """Linear warm-up to the peak, then cosine decay to the final rate at the last step;
    with ``transducer_learning_rate``, one such schedule per phase (CTC, then transducer)."""
    t = recipe.train
    if t.transducer_learning_rate is None:
        return _warmup_cosine(step, t.steps, t.warmup_steps, t.learning_rate, t.final_learning_rate)
    if step < t.ctc_only_steps:
        return _warmup_cosine(
            step, t.ctc_only_steps, t.warmup_steps, t.learning_rate, t.final_learning_rate
        )
    return _warmup_cosine(
        step - t.ctc_only_steps,
        t.steps - t.ctc_only_steps,
        t.transducer_warmup_steps,
        t.transducer_learning_rate,
        t.final_learning_rate,
    )


def predictor_dropout(step: int, recipe: Recipe) -> float:
    """Probability of dropping an utterance's prediction-network output at ``step``: from
    ``predictor_dropout`` at the first transducer step, linearly to 0 at
    ``predictor_dropout_until``."""
    t = recipe.train
    if step >= t.predictor_dropout_until:
        return 0.0
    start = t.ctc_only_steps
    if step <= start:
        return t.predictor_dropout
    return (
        t.predictor_dropout
        * (t.predictor_dropout_until - step)
        / (t.predictor_dropout_until - start)
    )


def compute_penalty_scale(step: int, recipe: Recipe) -> float:
    """Fraction of the branching encoder's compute penalty applied at ``step``."""
    t = recipe.train
    if step < t.compute_penalty_start:
        return 0.0
    if t.compute_penalty_ramp == 0:
        return 1.0
    return min(1.0, (step - t.compute_penalty_start + 1) / t.compute_penalty_ramp)


def _frontend(recipe: Recipe, corpus_frontend: FrontEndConfig, split: Any) -> FrontEndConfig:
    # The statistics are the corpus's, not the recipe's: every model trained on one corpus
    # gets the same front end, which distillation (teacher and student) requires.
    mean, std = feature_statistics(split)
    return dataclasses.replace(
        corpus_frontend, stack=recipe.stack, subsample=recipe.subsample, mean=mean, std=std
    )


def _distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(teacher || student) of the joint's distributions, summed over valid lattice nodes
    (scaled per utterance like the transducer loss by the caller)."""
    log_p = F.log_softmax(teacher / temperature, dim=-1)
    log_q = F.log_softmax(student / temperature, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    return (kl * valid).sum() * temperature**2


def _lattice_mask(enc_lengths: torch.Tensor, target_lengths: torch.Tensor, t: int, u1: int):
    frames = torch.arange(t)[None, :, None] < enc_lengths[:, None, None]
    labels = torch.arange(u1)[None, None, :] <= target_lengths[:, None, None]
    return (frames & labels).float()


class _Run:
    """State of one training run (kept together so the step function stays readable)."""

    def __init__(
        self,
        recipe: Recipe,
        corpus_dir: Path,
        out_dir: Path,
        teacher_dir: Path | None,
        init_dir: Path | None,
        shard: Shard,
    ) -> None:
        self.recipe = recipe
        self.out_dir = out_dir
        self.shard = shard
        self.train_split = open_split(corpus_dir, "train")
        if init_dir is not None:
            init = load_trained(init_dir)
            self.frontend = dataclasses.replace(
                init.frontend, stack=recipe.stack, subsample=recipe.subsample
            )
        else:
            init = None
            self.frontend = _frontend(recipe, self.train_split.frontend, self.train_split)
        self.config = with_input_dim(recipe, self.frontend.n_mels)
        torch.manual_seed(recipe.seed)
        self.model = RNNT(self.config)
        if init is not None:
            if init.config != self.config:
                raise TrainingError(
                    f"{init_dir}: its model does not match recipe {recipe.name}'s model"
                )
            self.model.load_state_dict(init.state_dict)
        self.teacher = None
        if recipe.distillation is not None:
            if teacher_dir is None:
                raise TrainingError(
                    f"recipe {recipe.name} distils from {recipe.distillation.teacher!r}: "
                    f"give the teacher's output directory"
                )
            teacher = load_trained(teacher_dir)
            if teacher.frontend != self.frontend or (
                teacher.config.time_reduction != self.config.time_reduction
            ):
                raise TrainingError(
                    f"{teacher_dir}: the teacher's front end or time reduction differs "
                    f"from the student's"
                )
            self.teacher = teacher.model().eval()
        # The pruned loss's simple joint reads the prediction network through its own map to
        # the vocabulary (a training aid, never bundled): the parent's when it has one (a
        # fresh one would send its large early gradients through the CTC head into the
        # trained encoder), else zero, so the windows start from the CTC head's alignments.
        self.simple_lm = None
        if recipe.train.prune_window:
            width = self.config.predictor.hidden[-1]
            self.simple_lm = torch.nn.Linear(width, self.config.vocab_size)
            torch.nn.init.zeros_(self.simple_lm.weight)
            torch.nn.init.zeros_(self.simple_lm.bias)
            if init is not None and "simple_lm" in init.aids:
                self.simple_lm.load_state_dict(init.aids["simple_lm"])
        # foreach: each update's operations run on all parameters at once, 8.6 ms a step
        # against 12. (fused=True takes 1.4 ms, but its two-worker runs drift from the
        # one-process run by 1e-3 in 14 steps against 1e-6.)
        self.optimizer = torch.optim.Adam(
            self.parameters(), lr=recipe.train.learning_rate, foreach=True
        )
        pruning = recipe.compression.pruning
        self.pruner = None if pruning is None else Pruner(self.model, pruning)
        self.order = TrainingOrder(
            self.train_split.frame_counts,
            recipe.train.batch_size,
            recipe.seed,
            recipe.train.sorted_steps,
        )
        self.step = 0
        self.seconds = 0.0  # training wall time before this process, from the checkpoint
        self._resume()

    def aids(self) -> dict[str, dict[str, torch.Tensor]]:
        """State dicts of the training aids outside the model, by name."""
        return {} if self.simple_lm is None else {"simple_lm": self.simple_lm.state_dict()}

    def parameters(self) -> list[torch.nn.Parameter]:
        """Everything the optimizer trains: the model's parameters and the training aids'."""
        aids = [] if self.simple_lm is None else list(self.simple_lm.parameters())
        return [*self.model.parameters(), *aids]

    def _resume(self) -> None:
        path = self.out_dir / CHECKPOINT
        if not path.exists():
            if self.shard.leader:
                (self.out_dir / LOG).unlink(missing_ok=True)
            return
        state = torch.load(path, weights_only=False)
        # Compared by meaning: a checkpoint written before the recipe gained a field (at its
        # default) still resumes.
        if recipe_from_dict(state["recipe"], str(path)).to_dict() != self.recipe.to_dict():
            raise TrainingError(
                f"{path}: was made by a different recipe; use a new output directory"
            )
        self.model.load_state_dict(state["model"])
        if self.simple_lm is not None:
            self.simple_lm.load_state_dict(state["aids"]["simple_lm"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.pruner is not None:
            self.pruner.load_state_dict(state["pruner"])
        self.frontend = FrontEndConfig.from_dict(state["frontend"])
        self.step = state["step"]
        self.seconds = state.get("seconds", 0.0)
        if not self.shard.leader:
            return
        # Records logged after the checkpoint would be logged again: drop them.
        kept = [r for r in read_log(self.out_dir) if r["step"] < self.step]
        (self.out_dir / LOG).unlink(missing_ok=True)
        for record in kept:
            append_log(self.out_dir, record)

    def checkpoint(self, seconds: float) -> None:
        atomic_save(
            {
                "recipe": self.recipe.to_dict(),
                "frontend": self.frontend.to_dict(),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "pruner": None if self.pruner is None else self.pruner.state_dict(),
                "aids": self.aids(),
                "step": self.step,
                "seconds": seconds,
            },
            self.out_dir / CHECKPOINT,
        )

    def losses(self, step: int) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """Step ``step``'s weighted losses by name, and what else it measured by name."""
        recipe, model, shard = self.recipe, self.model, self.shard
        rng = np.random.default_rng([recipe.seed, step, 1])
        bfloat16 = recipe.train.bfloat16
        # The whole batch, drawn as one process would draw it, then this worker's rows.
        batch = make_batch(
            self.train_split,
            self.order(step),
            self.frontend,
            rng,
            recipe.train.spec_augment,
            recipe.train.vocal_tract_warp,
        )
        size = len(batch.lengths)
        rows, share = shard.rows(size), 1.0
        if len(rows) == 0:
            # A batch with fewer utterances than workers: this one runs an utterance at zero
            # weight, so that every worker's losses reach the same parameters.
            rows, share = np.zeros(1, np.int64), 0.0
        batch = take_rows(batch, rows)
        per_utterance = share / size
        features = torch.from_numpy(batch.features)
        lengths = torch.from_numpy(batch.lengths)
        targets = torch.from_numpy(batch.targets)
        target_lengths = torch.from_numpy(batch.target_lengths)

        with network_autocast(bfloat16):
            encoded = model.encode(features, lengths)
            ctc_logits = model.ctc_logits(encoded.frames).float()
        losses = {}
        ctc_only = step < recipe.train.ctc_only_steps
        if not ctc_only:
            tokens = F.pad(targets, (1, 0), value=BLANK)
            with network_autocast(bfloat16):
                predicted = model.predict(tokens, final_state=False)[0].float()
            drop = predictor_dropout(step, recipe)
            if drop > 0:
                keep = torch.from_numpy(rng.random(size)[rows] >= drop).float()
                predicted = predicted * keep[:, None, None]
            if self.simple_lm is None:
                with network_autocast(bfloat16):
                    logits = model.joint(encoded.frames, predicted).float()
                rnnt = rnnt_loss(logits, targets, encoded.lengths, target_lengths, reduction="none")
            else:

                def joint_at(positions: torch.Tensor) -> torch.Tensor:
                    with network_autocast(bfloat16):
                        return model.joint_at(encoded.frames, predicted, positions).float()

                # The window widens for the batch's hardest utterance: every worker takes
                # the widest any worker needs, which is the whole batch's.
                window = window_size(
                    recipe.train.prune_window, encoded.lengths, target_lengths, tokens.shape[1]
                )
                rnnt, simple = pruned_rnnt_loss(
                    ctc_logits,
                    self.simple_lm(predicted),
                    joint_at,
                    targets,
                    encoded.lengths,
                    target_lengths,
                    all_reduce_max(window, shard),
                )
                losses["simple"] = recipe.train.simple_loss_weight * simple.sum() * per_utterance
            losses["rnnt"] = rnnt.sum() * per_utterance
        ctc_weight = 1.0 if ctc_only else recipe.train.ctc_weight
        if ctc_weight > 0:
            log_probs = F.log_softmax(ctc_logits, dim=-1)
            ctc = F.ctc_loss(
                log_probs.transpose(0, 1),
                targets,
                encoded.lengths,
                target_lengths,
                blank=BLANK,
                reduction="sum",
                zero_infinity=True,
            )
            losses["ctc"] = ctc_weight * ctc * per_utterance
        measures = {}
        if self.config.branching is not None:
            branching = self.config.branching
            # The batch's fraction of expensive frames is a ratio over every worker's frames.
            expensive = encoded.expensive_frames * share
            counts = torch.stack([expensive.detach(), encoded.lengths.sum().float() * share])
            expensive_all, frames = all_reduce_sum(counts, shard)
            frames = frames.clamp(min=1)
            fraction = float(expensive_all / frames)
            mine = expensive / frames  # this worker's part of the fraction (differentiable)
            weight = branching.penalty * compute_penalty_scale(step, recipe)
            if branching.budget is None:
                losses["compute"] = weight * mine
            else:
                # The value is the batch's penalty split evenly over the workers; the
                # gradient, its derivative 2 (f - b) df through this worker's frames.
                excess = fraction - branching.budget
                losses["compute"] = weight * (
                    excess**2 / shard.world + 2 * excess * (mine - mine.detach())
                )
            # Logged apart from the penalty, which is zero before the penalty starts.
            measures["expensive_fraction"] = fraction
        compression = recipe.compression
        if compression.precision is not None and compression.grid_weight > 0:
            # On the weights alone: every worker adds its part of it.
            losses["grid"] = (
                compression.grid_weight
                * grid_regularizer(model.quantized_parameters().values(), compression.precision)
                / shard.world
            )
        if self.teacher is not None and not ctc_only:
            with torch.no_grad():
                t_enc = self.teacher.encode(features, lengths)
                t_pred, _ = self.teacher.predict(tokens)
                t_logits = self.teacher.joint(t_enc.frames, t_pred)
            mask = _lattice_mask(encoded.lengths, target_lengths, *logits.shape[1:3])
            distill = recipe.distillation
            losses["distill"] = (
                distill.weight
                * _distillation_loss(logits, t_logits, mask, distill.temperature)
                * per_utterance
            )
        return losses, measures

    def train_step(self) -> dict[str, float]:
        recipe, step = self.recipe, self.step
        compression = recipe.compression
        quantize = compression.precision is not None and step >= compression.qat_start
        self.model.set_precision(compression.precision if quantize else None)
        if self.pruner is not None:
            self.pruner.update(step)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(step, recipe)
        self.model.train()
        losses, measures = self.losses(step)
        self.optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        values = sum_gradients(
            self.parameters(), [float(v.detach()) for v in losses.values()], self.shard
        )
        norm = torch.nn.utils.clip_grad_norm_(self.parameters(), recipe.train.grad_clip)
        self.optimizer.step()
        if self.pruner is not None:
            self.pruner.apply()
        self.step += 1
        record = dict(zip(losses, values, strict=True))
        record.update(
            measures,
            loss=sum(values),
            grad_norm=float(norm),
            lr=learning_rate(step, recipe),
        )
        return record


def train(
    recipe: Recipe,
    corpus_dir: str | Path,
    out_dir: str | Path,
    *,
    teacher_dir: str | Path | None = None,
    init_dir: str | Path | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    stop_after: int | None = None,
    threads: int | None = None,
    workers: int = 1,
) -> Path:
    """Train ``recipe`` on the feature cache in ``corpus_dir``; returns ``out_dir / model.pt``.

    Parameters
    ----------
    recipe : Recipe
    corpus_dir : path
        A corpus built by ``edgenpu asr synth`` (its ``train`` split is used).
    out_dir : path
        Created if needed. A checkpoint already there (same recipe) is resumed, whatever
        the number of workers that wrote it.
    teacher_dir, init_dir : path, optional
        Output directories of a finished teacher run (distillation) and of the run whose
        model this one starts from (fine-tuning, e.g. QAT and pruning of a float model).
    progress : callable, optional
        Called with ``(step, steps, record)`` every ``log_every`` steps.
    stop_after : int, optional
        Stop (with a checkpoint) after this many steps of this call: an interrupted run,
        for tests of resumption.
    threads : int, optional
        PyTorch's intra-op threads (per worker). The models are small and step through
        time one frame at a time, so on a busy machine one thread is often faster than
        several that wait on each other.
    workers : int
        Processes that split every batch between them (:mod:`.data_parallel`); on a
        machine with ``n`` free cores, ``workers=n`` with ``threads=1`` or one worker with
        ``threads=n``, whichever ``benchmarks/data_parallel_speed.py`` finds faster.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise TrainingError(f"workers must be an integer >= 1, not {workers!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = {
        "recipe": recipe,
        "corpus_dir": Path(corpus_dir),
        "out_dir": out_dir,
        "teacher_dir": None if teacher_dir is None else Path(teacher_dir),
        "init_dir": None if init_dir is None else Path(init_dir),
        "stop_after": stop_after,
    }
    if workers > 1:
        return run_workers(_train_shard, run, workers, threads, progress)
    if threads is not None:
        torch.set_num_threads(threads)
    return _train_shard(shard=Shard(), progress=progress, **run)


def _train_shard(
    recipe: Recipe,
    corpus_dir: Path,
    out_dir: Path,
    teacher_dir: Path | None,
    init_dir: Path | None,
    stop_after: int | None,
    shard: Shard,
    progress: Callable[[int, int, dict[str, float]], None] | None,
) -> Path:
    """One worker's part of :func:`train` (the whole of it for a single worker)."""
    run = _Run(recipe, corpus_dir, out_dir, teacher_dir, init_dir, shard)
    steps = recipe.train.steps
    started = time.monotonic() - run.seconds
    done_here = 0
    while run.step < steps:
        step = run.step
        record = run.train_step()
        done_here += 1
        if shard.leader and (run.step % recipe.train.log_every == 0 or run.step == steps):
            record.update(step=step, seconds=round(time.monotonic() - started, 2))
            append_log(out_dir, record)
            if progress is not None:
                progress(run.step, steps, record)
        stopping = stop_after is not None and done_here >= stop_after
        if shard.leader and (
            stopping or run.step % recipe.train.checkpoint_every == 0 or run.step == steps
        ):
            run.checkpoint(time.monotonic() - started)
        if stopping:
            return out_dir / CHECKPOINT
    if shard.leader:
        run.model.set_precision(recipe.compression.precision)
        payload = trained_payload(
            run.model,
            run.frontend,
            recipe,
            run.step,
            round(time.monotonic() - started, 1),
            run.aids(),
        )
        atomic_save(payload, out_dir / MODEL)
    return out_dir / MODEL
