"""``verilog_rewrites``: all-zero memory initialisers become loops, nothing else changes, and
the memories still start at zero (Icarus starts a ``reg`` array as X); every combinational
process is evaluated at time zero on Icarus, as it is on Verilator."""

# No ``from __future__ import annotations``: Amaranth reads the component's port annotations.

import shutil
import subprocess
from pathlib import Path

import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from edgenpu.sim.hdl_build import lint
from edgenpu.sim.verilog_rewrites import compact_zero_inits, wake_processes

ZEROS = """\
module m;
  reg [7:0] mem [2:0];
  initial begin
    mem[0] = 8'h00;
    mem[1] = 8'h00;
    mem[2] = 8'h00;
  end
  reg [31:0] \\bank$3 [1:0];
  initial begin
    \\bank$3 [0] = 32'd0;
    \\bank$3 [1] = 32'd0;
  end
endmodule
"""

LOOPS = """\
module m;
  reg [7:0] mem [2:0];
  initial begin : zero_init_1
    integer i;
    for (i = 0; i < 3; i = i + 1) mem[i] = 8'h0;
  end
  reg [31:0] \\bank$3 [1:0];
  initial begin : zero_init_2
    integer i;
    for (i = 0; i < 2; i = i + 1) \\bank$3 [i] = 32'h0;
  end
endmodule
"""


def test_all_zero_initialisers_become_loops():
    assert compact_zero_inits(ZEROS) == LOOPS


@pytest.mark.parametrize(
    "body",
    [
        ["mem[0] = 8'h00;", "mem[1] = 8'h01;"],  # a non-zero element
        ["mem[0] = 8'h00;", "mem[2] = 8'h00;"],  # a gap
        ["mem[1] = 8'h00;", "mem[0] = 8'h00;"],  # out of order
        ["mem[0] = 8'h00;", "other[1] = 8'h00;"],  # two memories
        ["mem[0] = 8'h00;", "mem[1] = 16'h0000;"],  # two widths
    ],
)
def test_other_initialisers_stay_as_written(body):
    text = (
        "module m;\n  initial begin\n" + "".join(f"    {b}\n" for b in body) + "  end\nendmodule\n"
    )
    assert compact_zero_inits(text) == text


def test_block_labels_avoid_names_in_the_design():
    text = ZEROS.replace("module m;", "module m;\n  wire zero_init_1;")
    assert "initial begin : _zero_init_1\n" in compact_zero_inits(text)


class _Memories(wiring.Component):
    """One memory initialised to zeros and one to other values, each with a write port (so
    that Yosys keeps them memories) and an asynchronous read port."""

    addr: In(2)
    we: In(1)
    wdata: In(8)
    zeros: Out(8)
    values: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.zero_mem = zero_mem = Memory(shape=8, depth=4, init=[])
        m.submodules.value_mem = value_mem = Memory(shape=8, depth=4, init=[1, 0, 0, 5])
        for memory, out in ((zero_mem, self.zeros), (value_mem, self.values)):
            write = memory.write_port()
            read = memory.read_port(domain="comb")
            m.d.comb += [
                write.addr.eq(self.addr),
                write.data.eq(self.wdata),
                write.en.eq(self.we),
                read.addr.eq(self.addr),
                out.eq(read.data),
            ]
        return m


_TESTBENCH = """\
module tb;
  reg clk = 0, rst = 0, we = 0;
  reg [1:0] addr;
  reg [7:0] wdata = 0;
  wire [7:0] zeros, values;
  memories dut(.clk(clk), .rst(rst), .addr(addr), .we(we), .wdata(wdata),
               .zeros(zeros), .values(values));
  integer a;
  initial begin
    for (a = 0; a < 4; a = a + 1) begin
      addr = a;
      #1 $display("%h %h", zeros, values);
    end
  end
endmodule
"""


@pytest.fixture(scope="module")
def memories_verilog() -> str:
    return verilog.convert(_Memories(), name="memories")


def test_converted_memories_keep_their_contents(memories_verilog, tmp_path):
    compact = compact_zero_inits(memories_verilog)
    assert "initial begin : zero_init_1" in compact  # the zero memory was rewritten...
    assert "8'h05;" in compact  # ...and the other kept element by element
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (Debian: apt-get install iverilog)")
    (tmp_path / "dut.v").write_text(compact)
    (tmp_path / "tb.v").write_text(_TESTBENCH)
    subprocess.run(
        ["iverilog", "-g2012", "-o", "sim.vvp", "-s", "tb", "dut.v", "tb.v"],
        cwd=tmp_path,
        check=True,
    )
    out = subprocess.run(
        ["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout
    assert out.split() == ["00", "01", "00", "00", "00", "00", "00", "05"]


def test_verilator_accepts_the_loops(memories_verilog, tmp_path):
    path = Path(tmp_path / "memories-compact.v")
    path.write_text(compact_zero_inits(memories_verilog))
    lint(path)


class _Pick(wiring.Component):
    """A combinational pick from an ``Array`` by an index that stays 0: Yosys writes it as an
    ``always @*`` process that nothing but its time-zero trigger ever runs."""

    index: In(2)
    out: Out(8)

    def elaborate(self, platform):
        from amaranth import Array, Const

        m = Module()
        m.d.comb += self.out.eq(Array(Const(v, 8) for v in (5, 6, 7, 8))[self.index])
        return m


_PICK_BENCH = """\
module tb;
  reg [1:0] index = 0;
  wire [7:0] out;
  pick dut(.index(index), .out(out));
  initial begin #1 $display("%h", out); $finish; end
endmodule
"""


@pytest.mark.parametrize("rewritten", [False, True])
def test_icarus_evaluates_every_process_at_time_zero(rewritten, tmp_path):
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (Debian: apt-get install iverilog)")
    text = verilog.convert(_Pick(), name="pick")
    (tmp_path / "dut.v").write_text(wake_processes(text) if rewritten else text)
    (tmp_path / "tb.v").write_text(_PICK_BENCH)
    subprocess.run(
        ["iverilog", "-g2012", "-o", "sim.vvp", "-s", "tb", "dut.v", "tb.v"],
        cwd=tmp_path,
        check=True,
    )
    out = subprocess.run(
        ["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.split()
    # Without the rewrite the pick stays X: the case the rewrite exists for.
    assert out == (["05"] if rewritten else ["xx"])


def test_verilator_accepts_the_wake_up(tmp_path):
    path = Path(tmp_path / "pick-woken.v")
    path.write_text(wake_processes(verilog.convert(_Pick(), name="pick")))
    lint(path)
