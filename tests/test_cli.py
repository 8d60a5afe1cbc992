"""The top-level `hilovit` command: the parser of the grammar, one-line user errors with exit status 2, the
`info` and `models` commands, `python -m hilovit`, and no side effects at import."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hilovit.cli import build_parser, main
from hilovit.grammar import FLAGS, Parser
from hilovit.models import list_models
from hilovit.train import ConfigError


def test_info_reports_the_environment(tmp_path, capsys):
    output = tmp_path / "new" / "info.json"  # the missing folder is made
    main(["info", "--json", str(output)])
    report = json.loads(output.read_text())
    assert {"torch", "device", "threads", "cuda_available"} <= set(report)
    assert f"torch: {report['torch']}" in capsys.readouterr().out


def test_models_lists_the_registry(capsys):
    main(["models", "*_nano"])
    assert capsys.readouterr().out.split() == list_models("*_nano")
    main(["models", "--task", "segment"])
    assert capsys.readouterr().out.split() == [name for name in list_models() if name.startswith("semantic_fpn")]


def test_unknown_command_is_rejected(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hilovit: error: argument command: invalid choice: 'frobnicate'") and err.count("\n") == 1


def test_every_subcommand_is_a_grammar_parser():
    """One-line errors and defaults in `--help` in every subcommand, nested ones included."""
    pending, seen = [build_parser()], 0
    while pending:
        parser = pending.pop()
        assert isinstance(parser, Parser), parser.prog
        seen += 1
        for action in parser._actions:
            if action.choices and hasattr(action, "_name_parser_map"):
                pending.extend(action._name_parser_map.values())
    assert seen > 20


def test_help_documents_the_traceback_variable_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "HILOVIT_TRACEBACK=1" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["bench", "models", "--help"])
    assert "(default: auto)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "litv2_nano_fmnist", "epochs=0"], "epochs must be >= 1, got 0"),
        (["eval", "nope.pt"], "checkpoint nope.pt does not exist"),
        (["video", "eval", "nope.pt"], "checkpoint nope.pt does not exist"),
        (["volume", "train", "label_smoothing=2"], r"label_smoothing must be in \[0, 1\), got 2"),
        (["models", "retina*", "--task", "segment"], "no model matches 'retina\\*' for task segment"),
        (["bench", "models", "--models", "not_a_model"], "unknown model 'not_a_model'"),
        (["bench", "attention", "--device", "bogus"], "bench attention: argument --device: device 'bogus' is not"),
        (["tune", "resnet50"], "unknown tune target 'resnet50'"),
        (["export", "onnx", "litv2_xl"], "unknown model 'litv2_xl'"),
        (["timm", "nowhere/train.py", "--model", "litv2_s"], "no script at 'nowhere/train.py': expected the path"),
    ],
)
def test_user_errors_are_one_line_with_exit_status_2(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("HILOVIT_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert re.fullmatch(f"hilovit: error: {message}.*\n", err), err


def test_an_output_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HILOVIT_TRACEBACK", raising=False)
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["info", "--json", str(tmp_path / "file" / "info.json")])  # a file where a folder should be
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == f"hilovit: error: cannot make the folder of output {tmp_path}/file/info.json: File exists\n"


def test_a_user_error_spanning_lines_is_reported_in_one(capsys, monkeypatch):
    monkeypatch.delenv("HILOVIT_TRACEBACK", raising=False)

    def library_error(device):
        raise ValueError("first line\n\n   second line  \n")

    monkeypatch.setattr("hilovit.cli.environment", library_error)
    with pytest.raises(SystemExit) as exit_info:
        main(["info"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "hilovit: error: first line; second line\n"


def test_traceback_variable_lets_the_exception_through(monkeypatch):
    monkeypatch.setenv("HILOVIT_TRACEBACK", "1")
    with pytest.raises(ConfigError, match="epochs must be >= 1"):
        main(["train", "litv2_nano_fmnist", "epochs=0"])


def test_other_errors_keep_their_traceback(monkeypatch):
    def broken(device):
        raise RuntimeError("a bug, not bad input")

    monkeypatch.setattr("hilovit.cli.environment", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["info"])


def test_python_dash_m_hilovit(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "hilovit", "models", "litv2_s*"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["litv2_s", "litv2_s_backbone"]
    done = subprocess.run([sys.executable, "-m", "hilovit", "info", "--json"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == "hilovit: error: info: argument --json: expected one argument (see `hilovit info --help`)\n"


def test_timm_runs_a_script_with_the_models_registered(tmp_path):
    """`hilovit timm SCRIPT ARGS` runs a script that never imports hilovit (as timm's train.py does not) with the
    LITv2 names known to timm, and with the argv and sys.path that `python SCRIPT ARGS` gives it."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "sibling.py").write_text("ANSWER = 42\n")
    script = tmp_path / "scripts" / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import timm
            import sibling
            model = timm.create_model(sys.argv[2], num_classes=3)
            print(__name__, sys.argv[1:], type(model).__name__, model.num_classes, sibling.ANSWER)
            """
        )
    )
    argv = ["data", "litv2_nano", "--model-kwargs", "-h"]
    done = subprocess.run(
        [sys.executable, "-m", "hilovit", "timm", str(script), *argv], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"__main__ {argv} LITv2 3 42"


def test_no_side_effects_at_import_or_in_non_yolo_commands(tmp_path):
    """Importing hilovit and its CLI and running `hilovit info` change no environment variable, thread count,
    settings file or font cache; the YOLO plug-in is not even imported."""
    script = textwrap.dedent(
        """
        import json, os, sys
        import torch
        before = (dict(os.environ), torch.get_num_threads(), torch.get_num_interop_threads())
        import hilovit, hilovit.cli
        hilovit.cli.main(["info"])
        hilovit.cli.main(["models"])
        after = (dict(os.environ), torch.get_num_threads(), torch.get_num_interop_threads())
        print(json.dumps({"same": before == after, "ultralytics": "ultralytics" in sys.modules,
                          "yolo": sorted(m for m in sys.modules if m.startswith("hilovit.yolo."))}))
        """
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["same"] and not result["ultralytics"], result
    assert set(result["yolo"]) <= {"hilovit.yolo.cli"}, result
    assert list(home.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # no files


def test_grammar_table_in_the_readme_lists_every_flag():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for concept, flag in FLAGS.items():
        assert re.search(rf"^\| {concept} \| `{flag.flag}` \|", readme, re.MULTILINE), concept
