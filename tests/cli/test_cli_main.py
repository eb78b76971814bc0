import pytest

from factorflow.cli.main import main


def test_overrides_may_follow_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake_run(args):
        seen["overrides"] = args.overrides
        seen["config"] = args.config
        return 0

    import factorflow.cli.train as train_cli

    monkeypatch.setattr(train_cli, "run", fake_run)
    argv = ["train", "--data", "D", "--out", "O", "a.b=1", "--config", "tiny", "c.d=2"]
    assert main(argv) == 0
    assert seen == {"overrides": ["a.b=1", "c.d=2"], "config": "tiny"}


def test_stray_arguments_are_still_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "D", "--out", "O", "a=1", "--config", "tiny", "stray"])
    assert exc.value.code == 2
    assert "unrecognized arguments: stray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["env", "x=1"])  # env takes no overrides
