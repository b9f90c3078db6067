"""Build a corpus: plan, render, augment, compute features, cache; resumable and parallel.

``build_corpus`` plans every utterance from the spec (:mod:`.plan`), renders them in shards
of ``spec.shard_size`` (in ``jobs`` processes), and, once a split's shards are all there,
joins them into the split's memory-mapped feature array (:mod:`.feature_cache`). A shard is
written atomically when finished, so an interrupted build resumes at the first missing
shard; a changed spec or plan (e.g. FSDD data that appeared since) is detected by digest.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml

from ...atomic import write_atomically
from ..frontend import log_mel
from ..resample import resample
from .augment import augment_audio
from .feature_cache import (
    INDEX,
    SKIPPED,
    CorpusError,
    assemble_split,
    read_index,
    write_shard,
)
from .fsdd import FsddError, Recording, default_fsdd_dir, digit_string, find_recordings
from .plan import FSDD, Utterance, plan_corpus, plan_digest
from .spec import SPLITS, CorpusSpec, CorpusSpecError, spec_from_dict
from .synthesizers import (
    ESPEAK,
    FLITE,
    espeak_languages,
    espeak_variants,
    flite_voices,
    render,
)

__all__ = ["build_corpus", "render_utterance"]

Progress = Callable[[int, int], None]
SPEC_FILE = "spec.yaml"


def render_utterance(
    utt: Utterance,
    spec: CorpusSpec,
    fsdd_dir: Path | None = None,
    executables: dict[str, str] | None = None,
) -> np.ndarray:
    """Audio of one planned utterance, augmented if planned so, as float32 log-mel frames.

    Parameters
    ----------
    utt : Utterance
        The planned utterance.
    spec : CorpusSpec
        Its corpus spec (front end, augmentation ranges).
    fsdd_dir : pathlib.Path or None
        FSDD folder, for FSDD utterances.
    executables : dict or None
        Program to run per synthesizer (``{"espeak-ng": ..., "flite": ...}``).
    """
    rng = np.random.default_rng(list(utt.seed))
    if utt.source == FSDD:
        if fsdd_dir is None:
            raise ValueError("an FSDD utterance needs fsdd_dir")
        recs = [_recording(fsdd_dir, name) for name in utt.recordings]
        audio, rate, _ = digit_string(recs, utt.gaps_s, rng)
    else:
        audio, rate = render(utt.text, utt.voice, (executables or {}).get(utt.source))
    fe = spec.frontend
    audio = resample(audio, rate, fe.sample_rate)
    if utt.augment:
        audio = augment_audio(audio, fe.sample_rate, rng, spec.augment)
    return log_mel(audio, fe.sample_rate, fe)


def _recording(fsdd_dir: Path, name: str) -> Recording:
    digit, speaker, index = name[: -len(".wav")].split("_")
    return Recording(fsdd_dir / "recordings" / name, int(digit), speaker, int(index))


def _render_shard(task: tuple) -> tuple[str, int]:
    """Worker: render one shard's utterances and write the shard file."""
    split, path, utts, spec, fsdd_dir, executables = task
    feats = [render_utterance(u, spec, fsdd_dir, executables) for u in utts]
    write_shard(path, feats)
    return split, len(utts)


def _check_voices(spec: CorpusSpec, plans: dict[str, list[Utterance]], exe: dict) -> None:
    """Every voice the plan uses is installed, before hours of rendering start."""
    v = spec.voices
    if any(u.source == ESPEAK for utts in plans.values() for u in utts):
        for key, names, installed in (
            ("espeak_train.languages", v.espeak_train.languages, espeak_languages(exe[ESPEAK])),
            ("espeak_train.variants", v.espeak_train.variants, espeak_variants(exe[ESPEAK])),
            ("espeak_heldout.languages", v.espeak_heldout.languages, espeak_languages(exe[ESPEAK])),
            ("espeak_heldout.variants", v.espeak_heldout.variants, espeak_variants(exe[ESPEAK])),
        ):
            for name in names:
                if name not in installed:
                    raise CorpusSpecError(
                        f"spec {spec.name!r}: voices.{key}: {name!r} is not an installed "
                        f"espeak-ng voice (installed: {', '.join(installed)})"
                    )
    if any(u.source == FLITE for utts in plans.values() for u in utts):
        installed = flite_voices(exe[FLITE])
        for name in v.flite:
            if name not in installed:
                raise CorpusSpecError(
                    f"spec {spec.name!r}: voices.flite: {name!r} is not an installed flite "
                    f"voice (installed: {', '.join(installed)})"
                )


def _claim_folder(spec: CorpusSpec, out: Path) -> None:
    """Write the spec beside the corpus, or check that the folder holds this spec's corpus."""
    spec_file = out / SPEC_FILE
    if spec_file.exists():
        existing = spec_from_dict(yaml.safe_load(spec_file.read_text()), str(spec_file))
        if existing != spec:
            raise CorpusError(
                f"{spec_file}: the folder holds corpus {existing.name!r} of another spec; "
                "build into a new folder or delete this one"
            )
        return
    write_atomically(spec_file, yaml.safe_dump(spec.to_dict(), sort_keys=False).encode())


def _find_fsdd(fsdd_dir: Path) -> dict[str, tuple[Recording, ...]] | None:
    if not (fsdd_dir / "recordings").is_dir():
        warnings.warn(
            f"FSDD data not found at {fsdd_dir}: building without FSDD utterances and without "
            "the heldout_speakers split",
            stacklevel=3,
        )
        return None
    return find_recordings(fsdd_dir)


def build_corpus(
    spec: CorpusSpec,
    out_dir: str | os.PathLike,
    jobs: int = 2,
    progress: Progress | None = None,
    fsdd_dir: str | os.PathLike | None = None,
    espeak: str = ESPEAK,
    flite: str = FLITE,
) -> dict[str, int | None]:
    """Render, augment and cache the features of every split of ``spec`` in ``out_dir``.

    Parameters
    ----------
    spec : CorpusSpec
        What to build.
    out_dir : str or os.PathLike
        Corpus folder; created if needed. A folder holding a partial build of the same spec
        is resumed; one holding another spec's corpus is refused.
    jobs : int
        Worker processes; 1 renders in this process.
    progress : callable or None
        Called as ``progress(done, total)`` (utterances) after every finished shard.
    fsdd_dir : str or os.PathLike or None
        FSDD folder; ``None`` means ``fsdd.default_fsdd_dir()``. If it is absent, FSDD
        utterances are left out and ``heldout_speakers`` is skipped, with a warning.
    espeak, flite : str
        The synthesizer programs to run.

    Returns
    -------
    dict of str to int or None
        Utterances per split; ``None`` for a skipped split.

    Raises
    ------
    SynthesizerMissing
        If a synthesizer the plan needs is not installed.
    CorpusSpecError
        If the spec names a voice that is not installed, or an FSDD speaker with no data.
    CorpusError
        If ``out_dir`` holds a corpus of another spec.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, not {jobs!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fsdd_path = Path(fsdd_dir) if fsdd_dir is not None else default_fsdd_dir()
    recordings = _find_fsdd(fsdd_path)
    try:
        plans = plan_corpus(spec, recordings)
    except (ValueError, FsddError) as error:
        raise CorpusSpecError(f"spec {spec.name!r}: {error}") from None
    executables = {ESPEAK: espeak, FLITE: flite}
    _check_voices(spec, plans, executables)
    _claim_folder(spec, out)

    tasks, shards, digests, result = [], {}, {}, {}
    total = sum(len(p) for p in plans.values())
    done = 0
    for split in SPLITS:
        split_dir, utts = out / split, plans[split]
        split_dir.mkdir(exist_ok=True)
        if not utts:
            reason = (
                f"FSDD data not found at {fsdd_path}"
                if split == "heldout_speakers" and recordings is None
                else "the spec asks for no utterances"
            )
            write_atomically(split_dir / SKIPPED, (reason + "\n").encode())
            _remove_stale(split_dir)
            result[split] = None
            continue
        (split_dir / SKIPPED).unlink(missing_ok=True)
        result[split] = len(utts)
        digests[split] = plan_digest(spec, utts)
        index = read_index(split_dir)
        if index is not None and index.get("digest") == digests[split]:
            done += len(utts)
            continue
        (split_dir / INDEX).unlink(missing_ok=True)
        shard_dir = split_dir / f"shards-{digests[split]}"
        for stale in split_dir.glob("shards-*"):
            if stale != shard_dir:  # work for a plan that has since changed
                shutil.rmtree(stale)
        shard_dir.mkdir(exist_ok=True)
        shards[split] = []
        for k, lo in enumerate(range(0, len(utts), spec.shard_size)):
            path = shard_dir / f"{k:05d}.npz"
            shards[split].append(path)
            chunk = utts[lo : lo + spec.shard_size]
            if path.exists():
                done += len(chunk)
            else:
                tasks.append((split, path, chunk, spec, fsdd_path, executables))
    if progress is not None:
        progress(done, total)
    for _, n in _run(tasks, jobs):
        done += n
        if progress is not None:
            progress(done, total)
    for split, paths in shards.items():
        index = {
            "split": split,
            "digest": digests[split],
            "frontend": spec.frontend.to_dict(),
            "texts": [u.text for u in plans[split]],
            "info": [u.info() for u in plans[split]],
        }
        assemble_split(out / split, paths, index, spec.frontend.n_mels)
        shutil.rmtree(paths[0].parent)
    return result


def _run(tasks: Sequence[tuple], jobs: int):
    """Results of ``_render_shard`` over ``tasks``, as they finish."""
    if jobs == 1 or len(tasks) <= 1:
        yield from map(_render_shard, tasks)
        return
    # "fork" where there is one: "spawn" and "forkserver" re-run the caller's main script in
    # every worker, which breaks any script without an ``if __name__ == "__main__"`` guard.
    # The workers only run subprocesses and numpy, so inheriting the parent's state is safe.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(min(jobs, len(tasks))) as pool:
        yield from pool.imap_unordered(_render_shard, tasks)


def _remove_stale(split_dir: Path) -> None:
    """Drop a previous build's files from a split that is now skipped."""
    for name in (INDEX, "features.npy"):
        (split_dir / name).unlink(missing_ok=True)
    for shard_dir in split_dir.glob("shards-*"):
        shutil.rmtree(shard_dir)
