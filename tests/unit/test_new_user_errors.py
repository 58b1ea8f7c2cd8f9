"""A new user's mistakes on the own-model path (README "Compile your own model"): each is one line naming the
culprit, exit code 2, no traceback, nothing written outside the named folder; and the help texts explain the
own-model options."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgeflow.cli import main

pytestmark = pytest.mark.unit


def _model(path: str, shape: list) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])),
              path)


@pytest.fixture
def user(tmp_path, monkeypatch):
    """An empty folder outside the repo holding a tiny model with a (1, 3, 100) input and a CSV."""
    monkeypatch.chdir(tmp_path)
    _model("har.onnx", [1, 3, 100])
    Path("walk.csv").write_text("x,y,z\n" + "1,2,3\n" * 200)
    return tmp_path


def test_time_major_model_gets_the_layout_hint(user, capsys):
    _model("tmajor.onnx", [1, 100, 3])
    assert main(["build", "--onnx", "tmajor.onnx", "--card", "accel-har"]) == 2
    _one_line(capsys, "the model's input is [100, 3]", "export it with its input as (1, channels, samples)")


@pytest.mark.parametrize("shape", [["N", 3, 100], [1, 3, "T"]])
def test_symbolic_input_sizes_are_named(user, capsys, shape):
    _model("dyn.onnx", shape)
    assert main(["build", "--onnx", "dyn.onnx", "--card", "accel-har"]) == 2
    _one_line(capsys, "graph input 'x'", str(shape).replace('"', "'"), "no dynamic_axes")
    if shape[0] == 1:
        assert main(["build", "--onnx", "dyn.onnx", "--sfreq", "50"]) == 2
        _one_line(capsys, "dyn.onnx: the model's input has no fixed shape", "no dynamic_axes")


def _one_line(capsys, *want: str) -> str:
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for w in want:
        assert w in err, (w, err)
    return err


def _left(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_missing_onnx_file_is_named_as_missing(user, capsys):
    assert main(["build", "--onnx", "nothere.onnx", "--sfreq", "50"]) == 2
    _one_line(capsys, "nothere.onnx: no such file")
    assert _left(user) == {"har.onnx", "walk.csv"}


def test_a_file_that_is_not_onnx_is_named(user, capsys):
    assert main(["build", "--onnx", "walk.csv", "--sfreq", "50"]) == 2
    _one_line(capsys, "walk.csv", "not an ONNX file")


def test_target_typo_suggests_the_target(user, capsys):
    assert main(["build", "--onnx", "har.onnx", "--sfreq", "50", "--target", "hots"]) == 2
    _one_line(capsys, "--target hots: unknown target", "did you mean 'host'?", "pulp-open")
    assert main(["build", "--onnx", "har.onnx", "--sfreq", "50", "--target", "jetson-orin-nan"]) == 2
    _one_line(capsys, "did you mean 'jetson-orin-nano'?")
    assert not (user / "build").exists() or not any((user / "build").iterdir())


def test_out_below_a_file_is_one_line(user, capsys):
    assert main(["build", "--onnx", "har.onnx", "--sfreq", "50", "--out", "walk.csv/sub"]) == 2
    _one_line(capsys, "walk.csv/sub: walk.csv is a file, not a folder")
    assert (user / "walk.csv").is_file() and _left(user) == {"har.onnx", "walk.csv"}


def test_card_without_kind_says_it_defaulted_to_femba(user, capsys):
    Path("mine.toml").write_text('[model]\nname = "mine"\n[input]\nchannels = 3\nsample_rate = 50.0\n'
                                 'window_s = 2.0\n')
    assert main(["build", "--onnx", "har.onnx", "--card", "mine.toml"]) == 2
    _one_line(capsys, "mine.toml: missing section [arch]", 'model.kind = "sensor"')


def test_stream_out_at_a_file_is_refused_before_the_port(user, capsys, monkeypatch):
    import edgeflow.build_folder
    import edgeflow.card_match

    monkeypatch.setattr(edgeflow.build_folder, "read_graph", lambda build: object())
    monkeypatch.setattr(edgeflow.card_match, "stream_card", lambda build, card: None)
    Path("b").mkdir()
    for out in ("walk.csv", "walk.csv/x"):   # no --port, no device.json: the --out is named first
        assert main(["stream", "--build", "b", "--input", "walk.csv", "--out", out]) == 2
        _one_line(capsys, f"{out}:", "is a file, not a folder; give another --out")
    assert (user / "walk.csv").read_text().startswith("x,y,z\n")


@pytest.mark.parametrize("argv, words", [
    (["build"], ("--onnx", "--card", "--sfreq", "quantize_static", "pulp-open", "minimal sensor card")),
    (["stream"], ("--input", "--card", "CSV", "sample_rate", "sensor")),
    (["data", "inspect"], ("--card", "sensor card", "accel-har", "CSV")),
    ([], ("your own quantized ONNX", "edgeflow build --onnx")),
])
def test_help_explains_the_own_model_options(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for w in words:
        assert w in out, w


def _guide() -> str:
    text = (Path(__file__).parents[2] / "README.md").read_text()
    return text.split("## Compile your own model", 1)[1].split("\n## ", 1)[0]


def test_guide_commands_name_real_cards_and_files_the_guide_writes():
    """Run literally, the guide's commands find their cards (a shipped name or a .toml path) and their inputs
    (written by the guide's own snippets), and its card example loads."""
    import re
    import tomllib

    from edgeflow.cards import available_cards, card_from_dict

    guide = _guide()
    commands = [ln.strip() for ln in guide.splitlines() if ln.startswith("    edgeflow ")]
    assert commands
    for cmd in commands:
        for card in re.findall(r"--card (\S+)", cmd):
            assert card in available_cards() or card.endswith(".toml"), cmd
        for f in re.findall(r"--(?:input|onnx) (\S+)", cmd) + re.findall(r"data inspect (\S+)", cmd):
            if f != "FILE":
                assert re.search(rf"[\"']{re.escape(f)}[\"']", guide), f"{cmd}: nothing in the guide writes {f}"
    toml = guide.split("```toml\n", 1)[1].split("```", 1)[0]
    assert card_from_dict(tomllib.loads(toml)).input.window_samples == 100


@pytest.mark.skipif(shutil.which("qemu-system-riscv32") is None, reason="flash checks QEMU first")
def test_flash_of_the_model_file_points_at_the_build(user, capsys):
    assert main(["flash", "har.onnx"]) == 2
    _one_line(capsys, "har.onnx: a file, not a build directory", "edgeflow build --onnx har.onnx")
    assert _left(user) == {"har.onnx", "walk.csv"}


def test_data_inspect_of_a_folder_says_so(user, capsys):
    Path("recordings").mkdir()
    assert main(["data", "inspect", "recordings", "--card", "accel-har"]) == 2
    _one_line(capsys, "recordings: a folder, not a recording")
