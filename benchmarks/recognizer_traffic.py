"""What a whole recognizer costs per second of audio on the processor: every kernel call
greedy search makes, counted on real recordings.

Run ``python benchmarks/recognizer_traffic.py [WAV ...] [--bundle int4_sparse] [--config
default]``; ``--bundle`` is a committed bundle's name or a bundle's ``.yaml``. Without WAV
files it reads the spoken digits beside the project (``../shared/data/fsdd/recordings``,
the first 8 of speaker jackson). The bundle is compiled twice, with the joint's input
projections hoisted into the encoder and predictor (the default) and without, and each
version transcribes the recordings through the compiled kernels in the functional
simulator (:class:`edgenpu.compiler.host.SimulatedModel`). It prints, per second of audio:
kernel calls of each entry point, weight and all DRAM bytes read, and modeled cycles (each
kernel's performance-model cycles on one call, times its calls: the cycles of a call vary a
little with its data), and the transcripts.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from bundles import bundle_path

from edgenpu.asr_workloads.bundle import load_bundle
from edgenpu.asr_workloads.wav import read_wav
from edgenpu.compiler.compile import compile_model
from edgenpu.compiler.frontends.bundle_frontend import from_bundle
from edgenpu.compiler.host import SimulatedModel
from edgenpu.compiler.quant import branch_calls
from edgenpu.compiler.report import compile_report
from edgenpu.compiler.spec import CompileSpec
from edgenpu.config import load_config

ROOT = Path(__file__).resolve().parents[1]
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"


class CountingModel(SimulatedModel):
    """A simulated model that also counts its calls by entry point."""

    def __init__(self, *args):
        super().__init__(*args)
        self.calls: Counter = Counter()

    def call(self, kernel, inputs):
        self.calls[kernel] += 1
        return super().call(kernel, inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wavs", nargs="*", type=Path)
    parser.add_argument("--bundle", default="int4_sparse")
    parser.add_argument("--config", default="default")
    args = parser.parse_args()
    wavs = args.wavs or sorted(FSDD.glob("*_jackson_*.wav"))[:8]
    if not wavs:
        parser.error(f"no WAV files given and none in {FSDD}")
    path = bundle_path(args.bundle)
    model = from_bundle(load_bundle(path), source=path.name)
    config = load_config(args.config)
    audio = [read_wav(w) for w in wavs]
    seconds = sum(len(a) / rate for a, rate in audio)
    print(f"{args.bundle} on {config.name}: {len(wavs)} recordings, {seconds:.2f} s of audio")
    print(f"{'joint split':<12} {'calls/s (enc, pred, joint)':>28} {'weight B/s':>12} "
          f"{'DRAM read B/s':>14} {'cycles/s':>12}")  # fmt: skip
    for hoist in (True, False):
        compiled = compile_model(model, config, CompileSpec(hoist_joint=hoist))
        per_call = {k.name: k.cycles for k in compile_report(compiled, path.name).kernels}
        host = CountingModel.from_compiled(compiled)
        texts = [host.transcribe(a, rate) for a, rate in audio]
        weight = sum(s.weight_stream_bytes for s in host.stats) / seconds
        dram = sum(s.dram_read_bytes for s in host.stats) / seconds
        cycles = sum(per_call[k] * n for k, n in host.calls.items()) / seconds
        rates = ", ".join(
            f"{host.calls[k] / seconds:.1f}" for k in ("encoder_chunk", "predictor_step", "joint")
        )
        label = "yes" if hoist else "no"
        print(f"{label:<12} {rates:>28} {weight:>12,.0f} {dram:>14,.0f} {cycles:>12,.0f}")
        expensive = sum(n for k, n in host.calls.items() if branch_calls.is_expensive(k))
        if expensive:
            print(f"{'':<12} expensive-branch calls/s: {expensive / seconds:.1f}")
        print(f"{'':<12} transcripts: {texts}")


if __name__ == "__main__":
    main()
