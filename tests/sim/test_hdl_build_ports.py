"""Verilator builds make the top-level ports public, and only them: the control file
``hdl_build`` writes instead of cocotb's ``--public-flat-rw``."""

import pytest

from edgenpu.sim import hdl_build

VERILOG = """\
module inner(clk, x);
  input clk;
  input x;
endmodule

module top(clk, rst, cmd__valid, cmd__payload,
    done);
  input clk;
  input rst;
  input cmd__valid;
  input [7:0] cmd__payload;
  output done;
  wire internal;
endmodule
"""


def test_control_file_lists_the_top_ports():
    assert hdl_build._public_ports_control(VERILOG, "top").splitlines() == [
        "`verilator_config",
        'public_flat_rw -module "top" -var "clk"',
        'public_flat_rw -module "top" -var "rst"',
        'public_flat_rw -module "top" -var "cmd__valid"',
        'public_flat_rw -module "top" -var "cmd__payload"',
        'public_flat_rw -module "top" -var "done"',
    ]


def test_a_missing_top_is_named():
    with pytest.raises(RuntimeError) as info:
        hdl_build._public_ports_control(VERILOG, "npu")
    assert str(info.value) == "no module 'npu' with ports in the converted Verilog"
