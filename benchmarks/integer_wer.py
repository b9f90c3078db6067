"""What compiling costs in accuracy: a bundle's fake-quant model against its integer program.

Run ``python benchmarks/integer_wer.py BUNDLE --corpus CORPUS [--split valid] [--limit 600]
[--config default]``. BUNDLE is a bundle's ``.yaml`` or the name of a committed one
(``int4_sparse``); CORPUS a feature cache from ``edgenpu asr synth``. The bundle is compiled
for the config, and the same utterances (a length-stratified subset of the split) are
greedy-decoded twice: by the numpy model of the bundle (float activations, the fake-quant
weights) and by the compiler's quantized reference, the integer arithmetic the compiled
program computes (the test suite checks that they agree bit for bit on the functional
simulator, and samples of kernels on the RTL). It prints both word and character error
rates and their wall times.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bundles import bundle_path

from edgenpu.asr_workloads.bundle import load_bundle
from edgenpu.asr_workloads.corpus import open_split
from edgenpu.asr_workloads.evaluate import evaluate_split
from edgenpu.asr_workloads.numpy_model import greedy_decode as float_decode
from edgenpu.asr_workloads.text import decode
from edgenpu.compiler.compile import compile_model
from edgenpu.compiler.frontends.bundle_frontend import from_bundle
from edgenpu.compiler.quant.reference import greedy_decode as integer_decode
from edgenpu.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--split", default="valid")
    parser.add_argument("--limit", type=int, default=600)
    parser.add_argument("--config", default="default")
    args = parser.parse_args()
    path = bundle_path(args.bundle)
    bundle = load_bundle(path)
    compiled = compile_model(from_bundle(bundle, source=path.name), load_config(args.config))
    split = open_split(args.corpus, args.split)
    decoders = {
        "fake-quant": lambda f: float_decode(bundle, f),
        "integer": lambda f: integer_decode(compiled.qmodel, f),
    }
    print(f"{path.name} on {args.config}, {args.split}, up to {args.limit} utterances")
    for name, decoder in decoders.items():

        def recognize(features, lengths, decoder=decoder):
            return [decode(decoder(f[:n])) for f, n in zip(features, lengths, strict=True)]

        start = time.perf_counter()
        result = evaluate_split(recognize, split, args.split, bundle.frontend, limit=args.limit)
        seconds = time.perf_counter() - start
        print(
            f"{name:<11} WER {100 * result.wer:6.2f} %  CER {100 * result.cer:6.2f} %  "
            f"({result.utterances} utterances, {seconds:.0f} s)"
        )


if __name__ == "__main__":
    main()
