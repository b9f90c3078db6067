"""The ``edgenpu`` command line: a thin layer over the library.

Every error a user can cause is printed as one ``error: ...`` line naming the culprit, with
exit status 1. A program that traps in simulation exits with status 3 after its report; a
program on which the RTL and the functional simulator disagree (``edgenpu rtl run``) exits
with status 5 after naming the first instruction whose effect differs.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click
import numpy as np
import yaml

from edgenpu.asr_workloads.cli import asr
from edgenpu.atomic import write_atomically
from edgenpu.compiler.cli import compile_command
from edgenpu.errors import EdgenpuError
from edgenpu.formats import FormatError

#: Exit status of a simulation that ended in a trap rather than a halt.
EXIT_TRAP = 3
#: Exit status when another legal order of the streams changes the result (a data race).
EXIT_RACE = 4
#: Exit status when the RTL and the functional simulator disagree on a program.
EXIT_DISAGREE = 5


def _one_line_errors(fn):
    """Turn a user-caused error into one line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (EdgenpuError, FormatError) as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)

    return wrapper


#: The options that every command running a program takes, defined once.
_PROGRAM = click.argument("program", type=click.Path(exists=True, dir_okay=False, path_type=Path))
_CONFIG_DEFAULT = click.option(
    "-c",
    "--config",
    "config_name",
    default="default",
    show_default=True,
    help="Hardware config: a YAML file or a bundled name.",
)
_ENTRY = click.option(
    "-e",
    "--entry",
    default="0",
    show_default=True,
    help="Entry point: instruction index or entry symbol.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgenpu")
def main() -> None:
    """edgenpu: simulate, verify and compile for a sparse, low-bit neural edge processor."""


def _read_program(path: Path):
    """A program from a binary container, or from assembly source (``.s``/``.asm``)."""
    from edgenpu.errors import ProgramError
    from edgenpu.isa.asm import assemble_file
    from edgenpu.isa.program import MAGIC, Program

    try:
        data = path.read_bytes()
    except OSError as e:
        raise ProgramError(f"{path}: cannot read: {e.strerror}") from None
    if data[: len(MAGIC)] == MAGIC:
        return Program.from_bytes(data, source=str(path))
    if path.suffix in (".s", ".asm"):
        return assemble_file(path)
    raise ProgramError(f"{path}: neither an edgenpu binary nor assembly (.s/.asm) source")


@main.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Binary to write (default: SOURCE with suffix .bin).",
)
@_one_line_errors
def asm(source: Path, output: Path | None) -> None:
    """Assemble SOURCE into a binary program."""
    from edgenpu.isa.asm import assemble_file

    program = assemble_file(source)
    output = output or source.with_suffix(".bin")
    write_atomically(output, program.to_bytes())
    click.echo(
        f"{output}: {len(program.words)} instructions, {len(program.segments)} "
        f"segments, {len(program.symbols)} symbols"
    )


@main.command()
@click.argument("binary", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_one_line_errors
def disasm(binary: Path) -> None:
    """Print BINARY as assembly that `edgenpu asm` accepts back."""
    from edgenpu.isa.disasm import disassemble

    click.echo(disassemble(_read_program(binary)), nl=False)


@main.command()
@_PROGRAM
@_CONFIG_DEFAULT
@_ENTRY
@click.option(
    "-o",
    "--outdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each output as NAME.npy and summary.json here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--race-check",
    "orders",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also run in this many random legal stream orders; exit 4 if any result "
    "differs from program order (a missing dependency token).",
)
@_one_line_errors
def run(
    program: Path, config_name: str, entry: str, outdir: Path | None, as_json: bool, orders: int
) -> None:
    """Run PROGRAM (binary or assembly) in the functional simulator."""
    from edgenpu.config import load_config
    from edgenpu.sim.functional import run as simulate

    config = load_config(config_name)
    prog = _read_program(program)
    start = int(entry) if entry.isdigit() else entry
    result = simulate(prog, config, entry=start)
    summary = {
        "program": str(program),
        "config": config.name,
        "halted": result.halted,
        "trap": None
        if result.trap is None
        else {
            "cause": result.trap.cause.label,
            "index": result.trap.index,
            "instruction": result.trap.text,
            "message": result.trap.message,
        },
        **result.stats.as_dict(),
    }
    outputs = result.outputs()
    if outdir is not None:
        outdir.mkdir(parents=True, exist_ok=True)
        for name, values in outputs.items():
            tmp = outdir / f".{name}.partial.npy"
            np.save(tmp, values)
            tmp.replace(outdir / f"{name}.npy")
        write_atomically(outdir / "summary.json", json.dumps(summary, indent=2).encode())
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary, outputs)
    if result.trap is not None:
        if not as_json:
            click.echo(str(result.trap), err=True)
        sys.exit(EXIT_TRAP)
    if orders:
        from edgenpu.sim.interleave import find_race

        race = find_race(prog, config, orders, entry=start)
        if race is not None:
            click.echo(str(race), err=True)
            sys.exit(EXIT_RACE)
        click.echo(f"  race check: {orders} random stream orders agree with program order")


def _print_summary(summary: dict, outputs: dict[str, np.ndarray]) -> None:
    status = "halted" if summary["halted"] else f"trapped ({summary['trap']['cause']})"
    click.echo(
        f"{summary['program']} on {summary['config']}: {status} after "
        f"{summary['executed']} instructions"
    )
    macs = summary["macs"]
    if macs:
        click.echo(
            f"  MACs {macs:,}: non-zero weight {summary['nonzero_weight_macs']:,} "
            f"({summary['nonzero_weight_macs'] / macs:.1%}), both operands non-zero "
            f"{summary['nonzero_macs']:,} ({summary['nonzero_macs'] / macs:.1%})"
        )
    click.echo(
        f"  DRAM read {summary['dram_read_bytes']:,} B (weight streams "
        f"{summary['weight_stream_bytes']:,} B for {summary['dense_weight_bytes']:,} B "
        f"dense), written {summary['dram_write_bytes']:,} B"
    )
    click.echo(f"  vector elements {summary['vector_elements']:,}")
    for name, values in outputs.items():
        flat = values.reshape(-1)
        shown = " ".join(str(v) for v in flat[:8]) + (" ..." if flat.size > 8 else "")
        click.echo(f"  output {name} {values.dtype}{list(values.shape)}: {shown}")


def _entry(entry: str) -> int | str:
    return int(entry) if entry.isdigit() else entry


@main.command()
@_PROGRAM
@_CONFIG_DEFAULT
@_ENTRY
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option(
    "--trace",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a Chrome/Perfetto trace-event JSON of unit activity and stalls here "
    "(1 us of the trace = 1 cycle).",
)
@click.option(
    "--weight-density",
    type=click.FloatRange(0.0, 1.0),
    help="Statistical mode: the fraction of non-zero weights (with --activation-density); "
    "the program's data are not used.",
)
@click.option(
    "--activation-density",
    type=click.FloatRange(0.0, 1.0),
    help="Statistical mode: the fraction of non-zero activations.",
)
@_one_line_errors
def perf(
    program: Path,
    config_name: str,
    entry: str,
    as_json: bool,
    trace: Path | None,
    weight_density: float | None,
    activation_density: float | None,
) -> None:
    """Model PROGRAM's cycles, stalls, traffic and energy, exactly as the RTL counts them."""
    from edgenpu.config import load_config
    from edgenpu.sim import perf as model

    if (weight_density is None) != (activation_density is None):
        raise click.UsageError("--weight-density and --activation-density go together")
    config = load_config(config_name)
    prog = _read_program(program)
    if weight_density is None:
        report = model.run(prog, config, _entry(entry))
    else:
        report = model.estimate(
            prog,
            config,
            _entry(entry),
            weight_density=weight_density,
            activation_density=activation_density,
        )
    if trace is not None:
        model.write_trace(report, trace)
    if as_json:
        click.echo(json.dumps({"program": str(program), **model.report_to_dict(report)}, indent=2))
    else:
        click.echo(f"{program}: {model.format_report(report)}")
    if not report.halted:
        sys.exit(EXIT_TRAP)


@main.group()
def rtl() -> None:
    """The processor's RTL: export Verilog, run programs on it."""


_CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config_name",
    required=True,
    help="Hardware config: a YAML file or a bundled name.",
)


_PROGRAM_WORDS = click.option(
    "--program-words",
    type=int,
    default=256,
    show_default=True,
    help="Words of the instruction memory (128 bits each).",
)


@rtl.command("verilog")
@_CONFIG_OPTION
@_PROGRAM_WORDS
@click.option(
    "--dram-bytes",
    type=int,
    help="Size of the simulation DRAM, a power of two (default: the config's DRAM; its "
    "initial contents are in the Verilog, so a large one makes a large file).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Verilog file to write.",
)
@_one_line_errors
def rtl_verilog(config_name: str, program_words: int, dram_bytes: int | None, output: Path) -> None:
    """Write the Verilog of the whole processor (module npu) for a config."""
    from edgenpu.config import load_config
    from edgenpu.sim.rtl_run import write_verilog

    cfg = load_config(config_name)
    write_verilog(cfg, output, program_words=program_words, dram_bytes=dram_bytes)
    text = output.read_text()
    modules = sum(line.startswith("module ") for line in text.splitlines())
    size = cfg.dram.bytes if dram_bytes is None else dram_bytes
    click.echo(
        f"{output}: npu for {cfg.name} ({program_words} program words, {size:,} B DRAM), "
        f"{modules} modules, {len(text):,} bytes"
    )


@rtl.command("run")
@_PROGRAM
@_CONFIG_OPTION
@_ENTRY
@click.option(
    "--sim",
    "simulator",
    type=click.Choice(["verilator", "icarus"]),
    help="Simulator (default: $EDGENPU_SIM, else verilator).",
)
@click.option(
    "--waves",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the simulator's whole trace here (.fst; .vcd from a Verilator without lz4).",
)
@click.option(
    "--waves-window",
    "window",
    type=click.IntRange(min=1),
    help="If the RTL disagrees, write a VCD of this many cycles around the issue of the "
    "first instruction whose effect differs.",
)
@click.option(
    "--window-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where --waves-window writes (default: PROGRAM's name with -window.vcd).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@_one_line_errors
def rtl_run(
    program: Path,
    config_name: str,
    entry: str,
    simulator: str | None,
    waves: Path | None,
    window: int | None,
    window_file: Path | None,
    as_json: bool,
) -> None:
    """Run PROGRAM (binary or assembly) once on the RTL and compare with the functional
    simulator. Exit status: 0 agreed and halted, 3 agreed on a trap, 5 disagreed."""
    from edgenpu.config import load_config
    from edgenpu.sim.rtl_run import run_on_rtl

    cfg = load_config(config_name)
    prog = _read_program(program)
    if window is not None and window_file is None:
        window_file = Path(f"{program.stem}-window.vcd")
    result = run_on_rtl(
        prog,
        cfg,
        entry=_entry(entry),
        simulator=simulator,
        waves=waves,
        window=window,
        window_path=window_file,
        name=str(program),
        progress=lambda line: click.echo(line, err=True),
    )
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        _print_rtl_run(result)
    if not result.agreed:
        sys.exit(EXIT_DISAGREE)
    if result.trap is not None:
        sys.exit(EXIT_TRAP)


def _print_rtl_run(r) -> None:
    rules = "matches the rules" if r.cycles == r.rules_cycles else f"rules {r.rules_cycles}"
    click.echo(
        f"{r.program} on {r.config} ({r.simulator}, {r.program_words} program words, "
        f"{r.dram_bytes:,} B DRAM): {r.ending()}, {r.cycles:,} cycles ({rules})"
    )
    click.echo(
        f"  functional simulator: {r.expected_ending()}; agreed: {'yes' if r.agreed else 'no'}"
    )
    if not r.status_agreed:
        click.echo(f"  disagreement: RTL {r.ending()}, functional simulator {r.expected_ending()}")
    if r.divergence is not None:
        click.echo(f"  {r.divergence}")
    click.echo(
        f"  wall time {r.seconds:.2f} s (build {r.build_seconds:.2f} s); the program ran "
        f"in {r.run_seconds:.3f} s: {r.cycles_per_second:,.0f} simulated cycles/s"
    )
    for label, path in (("waves", r.waves), ("window", r.window)):
        if path is not None:
            click.echo(f"  {label}: {path}")
    for note in r.notes:
        click.echo(f"  {note}")


@rtl.command("area")
@_CONFIG_OPTION
@_PROGRAM_WORDS
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_one_line_errors
def rtl_area(config_name: str, program_words: int, as_json: bool) -> None:
    """Synthesise the processor with Yosys to 4-input LUTs: LUTs, flip-flop bits and memory
    bits per unit, SRAMs kept as memories (cached; the default config takes about 15 CPU
    minutes the first time). Needs the full Yosys: pip install 'edgenpu[area]'."""
    from edgenpu.config import load_config
    from edgenpu.sim.area import area_report, format_area, report_to_dict

    report = area_report(
        load_config(config_name),
        program_words=program_words,
        progress=lambda line: click.echo(line, err=True),
    )
    if as_json:
        click.echo(json.dumps(report_to_dict(report), indent=2))
    else:
        click.echo(format_area(report))


@main.group()
def config() -> None:
    """Inspect and validate hardware configs."""


@config.command("list")
def config_list() -> None:
    """List the bundled configs."""
    from edgenpu.config import bundled_configs

    for name, path in bundled_configs().items():
        click.echo(f"{name}\t{path}")


@config.command("show")
@click.argument("name", default="default")
@_one_line_errors
def config_show(name: str) -> None:
    """Print a config (a YAML file or a bundled name) as validated YAML."""
    from edgenpu.config import config_to_dict, load_config

    cfg = load_config(name)
    click.echo(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), nl=False)
    mac = cfg.mac
    peaks = ", ".join(f"{p.label} {mac.macs_per_cycle(p)}" for p in mac.precisions)
    click.echo(f"# peak MACs/cycle: {peaks}")


@config.command("check")
@click.argument("files", nargs=-1, required=True)
@_one_line_errors
def config_check(files: tuple[str, ...]) -> None:
    """Validate config FILES; stop at the first bad one."""
    from edgenpu.config import load_config

    for f in files:
        cfg = load_config(f)
        click.echo(f"{f}: ok ({cfg.name})")


main.add_command(asr)
main.add_command(compile_command)


if __name__ == "__main__":
    main()
