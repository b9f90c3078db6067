"""What ``edgenpu compile`` hands a host runtime: the manifest, the DRAM image, the listing.

The manifest (``manifest.yaml``) is plain data derived from a :class:`CompiledModel`: for
each kernel its entry point and every input, output and state tensor with its DRAM address,
bytes, shape, dtype and scale (``real = code * scale``); the weight, constant and LUT
regions; the DRAM size. A host runtime drives a kernel by writing its inputs' codes, running
its entry, and reading its outputs; it zeroes every ``state`` tensor at the start of an
utterance (:class:`edgenpu.compiler.host.SimulatedModel` is that protocol on the simulator).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgenpu.atomic import write_atomically
from edgenpu.isa import Opcode, Program
from edgenpu.isa.asm import assemble
from edgenpu.isa.disasm import disassemble, disassemble_word

from ..errors import CompileError, EdgenpuError
from .compile import CompiledModel, symbol_name
from .quant import branch_calls

__all__ = ["FORMAT", "HOST_PROTOCOL", "dram_image", "listing", "manifest", "write_outputs"]

#: The manifest's ``format`` field; ``version`` changes when a field changes meaning
#: (2: a branching encoder's expensive branch is ``encoder_expensive_<n>``, run in groups).
FORMAT = "edgenpu-compiled-model"
VERSION = 2

#: The host's side of a call, written into every manifest.
HOST_PROTOCOL = (
    "at the start of an utterance, zero every kernel's state tensors",
    "write each input's int codes (little-endian; code = round(real / scale), saturated) "
    "at its address",
    "run the kernel from its entry instruction until it halts",
    "read each output's codes from its address (real = code * scale)",
)

_MNEMONICS = frozenset(op.label for op in Opcode)

#: Notes on tensors whose meaning the shape does not tell.
_NOTES = {
    "token_onehot": "one-hot int8 row: 1 at the previous token's index (blank, token 0, at the "
    "start of an utterance), 0 elsewhere",
}


def _tensor(compiled: CompiledModel, kernel: str, name: str) -> dict:
    t = compiled.qmodel.kernels[kernel].tensor(name)
    region = compiled.region(kernel, name)
    out = {
        "symbol": symbol_name(region.name),
        "addr": region.addr,
        "bytes": region.nbytes,
        "shape": list(t.shape),
        "dtype": f"int{t.bits}",
        "scale": float(t.scale),
    }
    if name in _NOTES:
        out["note"] = _NOTES[name]
    return out


def _kernel(compiled: CompiledModel, name: str) -> dict:
    q = compiled.qmodel.kernels[name]
    k = compiled.kernels[name]
    out = {"entry": k.entry, "instructions": k.length}
    for field in ("inputs", "outputs", "state"):
        out[field] = {n: _tensor(compiled, name, n) for n in getattr(q, field)}
    if branch_calls.is_expensive(name):
        out["note"] = (
            "a branching encoder's expensive branch over "
            f"{q.tensor(q.inputs[0]).shape[0]} frame(s): after each encoder_chunk call, "
            "gather the stem rows of the valid frames whose gate code (encoder_chunk's third "
            "output) is >= 0, in order; run them through the encoder_expensive_<n> kernels, "
            "n the binary digits of their count, largest first; their outputs replace those "
            "frames. All of them share one state, which persists between calls"
        )
    if name == "predictor_step" and q.state == ():
        out["note"] = (
            "the host keeps the predictor's state: feed each h*_out/c*_out back as h*/c* "
            "for the next token (zeros at the start of an utterance)"
        )
    return out


def manifest(compiled: CompiledModel, source: str) -> dict:
    """The manifest of ``compiled`` (read from ``source``) as YAML-ready data."""
    qmodel = compiled.qmodel
    encoder = qmodel.kernels["encoder_chunk"]
    rows_in = encoder.tensor(encoder.inputs[0]).shape[0]
    rows_out = encoder.tensor(encoder.outputs[0]).shape[0]
    frontend = qmodel.frontend
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": source,
        "config": compiled.config.name,
        "chunk_frames": qmodel.chunk_frames,
        "time_reduction": rows_in // rows_out,
        "schedule": compiled.spec.schedule,
        "frontend": None if frontend is None else frontend.to_dict(),
        "program": {"file": "program.bin", "instructions": len(compiled.program.words)},
        "dram": {"file": "dram.bin", "bytes": compiled.dram_bytes},
        "host_protocol": list(HOST_PROTOCOL),
        "kernels": {name: _kernel(compiled, name) for name in compiled.kernels},
        "regions": [
            {"name": r.name, "kind": r.kind, "addr": r.addr, "bytes": r.nbytes}
            for r in compiled.regions
            if r.kind in ("weights", "constants", "lut")
        ],
    }


def dram_image(compiled: CompiledModel) -> bytes:
    """The initial DRAM contents, ``dram_bytes`` long (I/O and state regions zero)."""
    image = np.zeros(compiled.dram_bytes, np.uint8)
    for segment in compiled.program.segments:
        image[segment.addr : segment.end] = np.frombuffer(segment.data, np.uint8)
    return image.tobytes()


def _same_image(a: Program, b: Program) -> bool:
    return a.words == b.words and [(s.addr, s.data) for s in a.segments] == [
        (s.addr, s.data) for s in b.segments
    ]


def _comment(tag: str, note: str) -> str:
    """``[step] note``, either part left out when empty."""
    return " ".join(x for x in (f"[{tag}]" if tag else "", note) if x)


def _annotate(text: str, compiled: CompiledModel) -> str | None:
    """``text`` with each instruction line followed by its step and note as a comment, or
    None if its instruction lines are not the program's words one for one."""
    comments = [""] * len(compiled.program.words)
    for k in compiled.kernels.values():
        for i, (tag, note) in enumerate(zip(k.tags, k.notes, strict=True)):
            comments[k.entry + i] = _comment(tag, note)
    out, index = [], 0
    for line in text.splitlines():
        # Instruction lines are indented and start with a mnemonic; data lines with values.
        if line.startswith(" ") and line.split()[0] in _MNEMONICS:
            if index >= len(comments):
                return None
            if comments[index]:
                line += ("  " if " ; " in line else "  ; ") + comments[index]
            index += 1
        out.append(line)
    return "\n".join(out) + "\n" if index == len(comments) else None


def listing(compiled: CompiledModel) -> str:
    """The program as assembly with each instruction's step and note as a comment.

    When the disassembly assembles back to the same words and DRAM segments, the listing
    is that text;
    otherwise it is one line per instruction, for reading only.
    """
    program = compiled.program
    text = disassemble(program)
    try:
        roundtrip = _same_image(assemble(text, "listing"), program)
    except EdgenpuError:
        roundtrip = False
    annotated = _annotate(text, compiled) if roundtrip else None
    if annotated is not None:
        return (
            "; assembles back to program.bin's instructions and DRAM image; its tensors' "
            "addresses are in manifest.yaml\n" + annotated
        )
    lines = ["; listing for reading only (the disassembly does not reassemble to program.bin)"]
    for k in compiled.kernels.values():
        lines.append(f".entry {k.name}")
        for i in range(k.length):
            word = disassemble_word(program.words[k.entry + i])
            comment = _comment(k.tags[i], k.notes[i])
            lines.append(f"    {word}" + (f"  ; {comment}" if comment else ""))
    return "\n".join(lines) + "\n"


def write_outputs(outdir: Path, files: dict[str, bytes]) -> None:
    """Write each of ``files`` (name -> bytes, all computed beforehand, so that a compile
    that fails writes nothing) into ``outdir``, each whole or not at all."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            write_atomically(outdir / name, data)
    except OSError as error:
        raise CompileError(f"{outdir}: cannot write ({error.strerror or error})") from None
