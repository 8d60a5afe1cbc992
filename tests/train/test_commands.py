import json

from hilovit.cli import main
from hilovit.train.demo import run_demo


def _train_args(idx_data, out, *overrides):
    return [
        "train",
        "configs/litv2_nano_fmnist.yaml",
        "img_size=16",
        "batch_size=32",
        "epochs=1",
        "progress=false",
        "throughput_batch=8",
        "time_budget=null",
        *overrides,
        "--data",
        str(idx_data),
        "--output",
        str(out),
    ]


def test_train_then_eval_a_checkpoint_and_its_safetensors(idx_data, tmp_path, capsys):
    main(_train_args(idx_data, tmp_path / "run"))
    assert "litv2_nano" in capsys.readouterr().out
    main(["eval", str(tmp_path / "run" / "last.pt"), "--data", str(idx_data), "--output", str(tmp_path / "e1")])
    from_checkpoint = json.loads(capsys.readouterr().out)
    assert from_checkpoint["images"] == 32 and 0 <= from_checkpoint["top1"] <= from_checkpoint["top5"] <= 100
    assert (tmp_path / "e1" / "confusion.png").is_file()
    main(
        [
            "eval",
            str(tmp_path / "run" / "model.safetensors"),
            "--model",
            "litv2_nano",
            "--model-kwargs",
            "{patch_size: 2}",
            "--img-size",
            "16",
            "--data",
            str(idx_data),
            "--output",
            str(tmp_path / "e2"),
        ]
    )
    assert json.loads(capsys.readouterr().out)["top1"] == from_checkpoint["top1"]


def test_resume_flag_continues_the_run_in_its_output(idx_data, tmp_path, capsys):
    main([*_train_args(idx_data, tmp_path / "run"), "--max-steps", "2"])
    main([*_train_args(idx_data, tmp_path / "run", "epochs=2"), "--resume"])
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert rows[-1].startswith("2.0,8,")


def test_demo_trains_hilo_and_global_msa_twins(idx_data, tmp_path):
    rows = run_demo(
        overrides=[
            f"data={idx_data}",
            "img_size=16",
            "batch_size=32",
            "time_budget=1",
            "progress=false",
            "throughput_batch=8",
            f"output={tmp_path}",
        ]
    )
    assert set(rows) == {"HiLo (LITv2)", "global MSA"}
    assert rows["HiLo (LITv2)"]["params"] != rows["global MSA"]["params"]
    assert all(row["throughput_img_s"] > 0 and row["steps"] > 0 for row in rows.values())
