"""Atomic writes (scaling.files): a whole new file or the old one; devices and FIFOs are written in place."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from scaling.files import atomic_write_bytes, atomic_write_text, writing


def test_a_write_replaces_the_file_whole_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "fit.json"
    target.write_text("old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["fit.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "fit.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), writing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["fit.json"]


def test_a_fifo_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    """As /dev/null would be: renaming over a device or FIFO would put a regular file in its place."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that opening it for writing does not block
    try:
        atomic_write_bytes(fifo, b"streamed")
        assert os.read(reader, 64) == b"streamed"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe"]


def test_a_directory_target_is_an_error_naming_it(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(OSError) as err:
        atomic_write_text(target, "x")
    assert err.value.filename == os.fspath(target) and os.listdir(tmp_path) == ["out"]
