"""Outputs written whole or not at all (diffbench.contract.files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffbench.contract.files import replace_whole, write_text_whole


def test_an_interrupted_write_leaves_the_previous_file_and_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("previous")

    def half_then_ctrl_c(path: Path) -> None:
        path.write_text("half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_whole(target, half_then_ctrl_c)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_link_keeps_pointing_at_the_file_it_names_which_gets_the_new_text(tmp_path: Path) -> None:
    real = tmp_path / "real.html"
    real.write_text("previous")
    link = tmp_path / "latest.html"
    link.symlink_to(real)
    write_text_whole(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.html", "real.html"]


def test_a_special_file_is_written_directly() -> None:
    write_text_whole("/dev/null", "nothing to keep")  # cannot be replaced; must not be tried
    assert Path("/dev/null").exists() and not Path("/dev/null").is_file()
