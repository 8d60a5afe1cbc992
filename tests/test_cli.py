import json

import pytest

from hilovit.cli import main


def test_info_reports_the_environment(capsys):
    main(["info", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert {"torch", "device", "threads", "cuda_available"} <= set(report)


def test_unknown_command_is_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["frobnicate"])
    assert "invalid choice" in capsys.readouterr().err
