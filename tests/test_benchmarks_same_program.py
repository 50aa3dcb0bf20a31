"""benchmarks/same_program.py: a refactor's compiled epochs against another commit's."""

import pytest

from benchmarks import same_program

HLO = """HloModule jit_epoch, is_scheduled=true, entry_computation_layout={(f32[2]{0})->f32[2]{0}}

FileNames
1 "/somewhere/fnbackprop/training.py"

FunctionNames
1 "epoch"

StackFrames
1 {file_location_id=1 parent_frame_id=1}

ENTRY %main.2 (x.1: f32[2]) -> f32[2] {
  %x.1 = f32[2]{0} parameter(0), metadata={op_name="x" source_file="/a/b.py" source_line=3}
  ROOT %add.1 = f32[2]{0} add(%x.1, %x.1), metadata={op_name="add"}, stack_frame_id=1
}
"""


def test_normalised_keeps_the_program_and_drops_where_it_came_from():
    text = same_program.normalised(HLO)
    assert "training.py" not in text and "source_line" not in text and "stack_frame" not in text
    assert "ROOT %add.1 = f32[2]{0} add(%x.1, %x.1)" in text
    moved = HLO.replace("/somewhere", "/elsewhere").replace("source_line=3", "source_line=9")
    assert same_program.normalised(moved) == text
    changed = HLO.replace("add(%x.1, %x.1)", "multiply(%x.1, %x.1)")
    assert same_program.normalised(changed) != text


@pytest.mark.slow
def test_the_working_tree_compiles_the_epochs_of_head(capsys):
    assert same_program.main(["HEAD", "--sizes", "8,5,3"]) == 0
    assert "16 of 16 compiled epochs identical to HEAD" in capsys.readouterr().out
