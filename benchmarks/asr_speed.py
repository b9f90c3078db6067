"""Speed of the speech models: training steps, and decoding against real time.

Run ``python benchmarks/asr_speed.py [--recipe default] [--seconds 3] [--threads 1]``. With
random weights of the recipe's model (the sizes are what matter) it times, each as the best
of ``--repeats`` runs:

* one training step (forward, RNN-T + CTC loss, backward) on a batch of the recipe's size,
  utterances of ``--seconds`` seconds with 34-character transcripts, in PyTorch; and the
  same step's parts (encoder, joint, loss) as fractions of it; the same step with the
  pruned RNN-T loss (``--prune-window`` label positions per frame, the recipe's if it sets
  one) and its ratio to the full step; a CTC-only step (the recipe's first phase), and the
  recipe's training time estimated from the steps it uses;
* greedy decoding of that batch in PyTorch (batched), and of one utterance with the numpy
  model of the bundle (the host runtime's path) at float and int4: real-time factor
  (audio seconds per compute second; above 1 is faster than real time).

Decoding speed depends on how many symbols the model emits; random weights emit few, so the
decode numbers are a lower bound on the work of a trained model.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from timing import best_time

from edgenpu.asr_workloads.bundle import bundle_from_weights
from edgenpu.asr_workloads.frontend import FrontEndConfig
from edgenpu.asr_workloads.numpy_model import greedy_decode as numpy_decode
from edgenpu.asr_workloads.recipe import load_recipe, with_input_dim
from edgenpu.asr_workloads.rnnt.decode import greedy_decode
from edgenpu.asr_workloads.rnnt.loss import rnnt_loss
from edgenpu.asr_workloads.rnnt.model import RNNT
from edgenpu.asr_workloads.rnnt.pruned_loss import pruned_rnnt_loss
from edgenpu.asr_workloads.text import BLANK

N_MELS = 40
HOP_S = 0.01
TRANSCRIPT = 34


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prune-window", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    recipe = load_recipe(args.recipe)
    config = with_input_dim(recipe, N_MELS)
    model = RNNT(config)
    batch = recipe.train.batch_size
    frames = int(args.seconds / HOP_S) // recipe.subsample
    features = torch.randn(batch, frames, config.input_dim)
    lengths = torch.full((batch,), frames)
    targets = torch.randint(1, config.vocab_size, (batch, TRANSCRIPT))
    target_lengths = torch.full((batch,), TRANSCRIPT)
    params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("ctc."))
    print(
        f"recipe {recipe.name}: {params:,} parameters, batch {batch} x {args.seconds:g} s, "
        f"{args.threads} thread(s)"
    )

    parts: dict[str, float] = {}

    def ctc_step() -> None:
        encoded = model.encode(features, lengths)
        log_probs = F.log_softmax(model.ctc_logits(encoded.frames), -1).transpose(0, 1)
        F.ctc_loss(log_probs, targets, encoded.lengths, target_lengths).backward()
        model.zero_grad(set_to_none=True)

    def step() -> None:
        start = time.perf_counter()
        encoded = model.encode(features, lengths)
        predicted, _ = model.predict(F.pad(targets, (1, 0), value=BLANK))
        parts["encoder"] = time.perf_counter() - start
        start = time.perf_counter()
        logits = model.joint(encoded.frames, predicted)
        parts["joint"] = time.perf_counter() - start
        start = time.perf_counter()
        loss = rnnt_loss(logits, targets, encoded.lengths, target_lengths, reduction="sum")
        ctc = F.ctc_loss(
            F.log_softmax(model.ctc_logits(encoded.frames), -1).transpose(0, 1),
            targets,
            encoded.lengths,
            target_lengths,
            reduction="sum",
        )
        parts["losses"] = time.perf_counter() - start
        start = time.perf_counter()
        (loss + ctc).backward()
        parts["backward"] = time.perf_counter() - start
        model.zero_grad(set_to_none=True)

    window = recipe.train.prune_window or args.prune_window
    simple_lm = torch.nn.Linear(config.predictor.hidden[-1], config.vocab_size)

    def pruned_step() -> None:
        encoded = model.encode(features, lengths)
        predicted, _ = model.predict(F.pad(targets, (1, 0), value=BLANK))
        ctc_logits = model.ctc_logits(encoded.frames)
        pruned, simple = pruned_rnnt_loss(
            ctc_logits,
            simple_lm(predicted),
            lambda positions: model.joint_at(encoded.frames, predicted, positions),
            targets,
            encoded.lengths,
            target_lengths,
            window,
        )
        ctc = F.ctc_loss(
            F.log_softmax(ctc_logits, -1).transpose(0, 1),
            targets,
            encoded.lengths,
            target_lengths,
            reduction="sum",
        )
        (pruned.sum() + 0.5 * simple.sum() + ctc).backward()
        model.zero_grad(set_to_none=True)
        simple_lm.zero_grad(set_to_none=True)

    seconds = best_time(step, args.repeats)
    shares = ", ".join(f"{k} {v / seconds:.0%}" for k, v in parts.items())
    print(f"transducer training step: {seconds:.3f} s ({shares})")
    pruned_seconds = best_time(pruned_step, args.repeats)
    print(
        f"pruned transducer step (window {window}): {pruned_seconds:.3f} s, "
        f"{seconds / pruned_seconds:.2f}x faster than the full lattice"
    )
    ctc_seconds = best_time(ctc_step, args.repeats)
    ctc_steps = min(recipe.train.ctc_only_steps, recipe.train.steps)
    transducer_steps = recipe.train.steps - ctc_steps
    used = pruned_seconds if recipe.train.prune_window else seconds
    print(
        f"CTC-only step: {ctc_seconds:.3f} s; the recipe's {ctc_steps} CTC-only + "
        f"{transducer_steps} transducer steps = "
        f"{(ctc_steps * ctc_seconds + transducer_steps * used) / 60:.1f} min"
    )

    model.eval()
    audio = batch * args.seconds
    seconds = best_time(lambda: greedy_decode(model, features, lengths), args.repeats)
    print(
        f"PyTorch greedy decoding, batch {batch}: {seconds:.3f} s, "
        f"real-time factor {audio / seconds:.0f}"
    )
    frontend = FrontEndConfig(
        sample_rate=8000, n_mels=N_MELS, stack=recipe.stack, subsample=recipe.subsample
    )
    weights = {n: w.numpy() for n, w in model.effective_parameters().items()}
    one = features[0].numpy()
    for precision in (None, "int4"):
        bundle = bundle_from_weights(config, frontend, weights, precision)
        seconds = best_time(lambda b=bundle: numpy_decode(b, one), args.repeats)
        print(
            f"numpy bundle decoding ({precision or 'float'}), one utterance: "
            f"{seconds * 1000:.1f} ms, real-time factor {args.seconds / seconds:.0f}"
        )


if __name__ == "__main__":
    main()
