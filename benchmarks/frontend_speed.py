"""Speed of the log-mel front end: seconds of audio per second of compute.

Run ``python benchmarks/frontend_speed.py [--seconds 30] [--n-mels 80] [--chunk-ms 10]``.
For noise of the given length it times, each as the best of ``--repeats`` runs:

* ``log_mel`` on 16 kHz audio (batch, no resampling);
* ``log_mel`` on 8 kHz audio (batch, resampled to 16 kHz first);
* ``resample`` alone, 8 kHz -> 16 kHz;
* ``LogMelStream`` fed ``--chunk-ms`` pieces of the 16 kHz audio (the on-device form), and
  of the 8 kHz audio (resampled as it streams);

and prints the real-time factor of each (audio seconds per compute second; above 1 is
faster than real time).
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import best_time

from edgenpu.asr_workloads.frontend import FrontEndConfig, LogMelStream, log_mel
from edgenpu.asr_workloads.resample import resample

SEED = 0


def stream_all(cfg: FrontEndConfig, audio: np.ndarray, rate: int, chunk_ms: float) -> np.ndarray:
    """Push ``audio`` (at ``rate``) through a fresh stream ``chunk_ms`` at a time."""
    stream = LogMelStream(cfg, sample_rate=rate)
    chunk = max(1, round(chunk_ms * rate / 1000))
    pieces = [stream.push(audio[i : i + chunk]) for i in range(0, len(audio), chunk)]
    return np.concatenate([*pieces, stream.finish()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio length")
    parser.add_argument("--n-mels", type=int, default=80)
    parser.add_argument("--chunk-ms", type=float, default=10.0, help="streaming piece size")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cfg = FrontEndConfig(n_mels=args.n_mels)
    rng = np.random.default_rng(SEED)
    audio16 = rng.uniform(-0.5, 0.5, round(args.seconds * 16000))
    audio8 = rng.uniform(-0.5, 0.5, round(args.seconds * 8000))

    cases = {
        "batch log_mel, 16 kHz in": lambda: log_mel(audio16, 16000, cfg),
        "batch log_mel, 8 kHz in": lambda: log_mel(audio8, 8000, cfg),
        "resample 8 -> 16 kHz only": lambda: resample(audio8, 8000, 16000),
        f"stream, 16 kHz, {args.chunk_ms:g} ms pushes": lambda: stream_all(
            cfg, audio16, 16000, args.chunk_ms
        ),
        f"stream, 8 kHz, {args.chunk_ms:g} ms pushes": lambda: stream_all(
            cfg, audio8, 8000, args.chunk_ms
        ),
    }
    print(f"{args.seconds:g} s of audio, n_mels {args.n_mels}, n_fft {cfg.n_fft}")
    print(f"{'case':32} {'seconds':>9} {'x real time':>12}")
    for name, run in cases.items():
        seconds = best_time(run, args.repeats)
        print(f"{name:32} {seconds:9.4f} {args.seconds / seconds:12.0f}")


if __name__ == "__main__":
    main()
