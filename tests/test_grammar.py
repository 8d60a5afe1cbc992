"""hilovit.grammar: comma-list sweeps, output files prepared before work, flag overrides, devices."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from hilovit.grammar import POSITIVE_INTS, Parser, add_flags, comma_list, prepare_output_file, resolve_device


def test_comma_lists_parse_and_name_the_bad_item():
    assert POSITIVE_INTS("224, 256") == (224, 256) and POSITIVE_INTS("7") == (7,)
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected an integer >= 1, got '0' in the comma list '4,0'"):
        POSITIVE_INTS("4,0")
    with pytest.raises(argparse.ArgumentTypeError, match="no empty item"):
        POSITIVE_INTS("1,,2")
    assert comma_list(str)("a,b") == ("a", "b")


def test_output_files_are_prepared_before_the_work(tmp_path: Path):
    path = prepare_output_file(tmp_path / "a" / "b" / "r.json")
    assert path.parent.is_dir() and not path.exists()
    assert prepare_output_file(None) is None
    with pytest.raises(IsADirectoryError, match="is a directory: expected a file path"):
        prepare_output_file(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match=r"cannot make the folder of output .*file/r\.json: File exists"):
        prepare_output_file(tmp_path / "file" / "r.json")


def test_add_flags_takes_a_type_override_and_shows_defaults(capsys):
    parser = Parser(prog="hilovit sweep")
    add_flags(parser, "img_size", "device", img_size_type=POSITIVE_INTS, img_size_default=(224,))
    assert parser.parse_args(["--img-size", "160,224"]).img_size == (160, 224)
    assert parser.parse_args([]).device == "auto"
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--img-size", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("hilovit: error: sweep: argument --img-size: expected an integer")
    with pytest.raises(ValueError, match="unknown add_flags option"):
        add_flags(Parser(), "seed", seed_kind=int)


def test_devices_are_checked_against_this_machine():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device 'bogus' is not a torch device; this machine has: auto, cpu"):
        resolve_device("bogus")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' is not available on this machine; it has: auto, cpu"):
            resolve_device("cuda")
