"""The command line speaks one way: help and defaults on every option, examples on every subcommand, the
output spelling rule with its deprecated aliases, -v/-q/--progress everywhere and documented exit codes."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atacdenoise.cli import EXAMPLES, build_parser, main, subcommand_parsers
from atacdenoise.cli_args import DeprecatedAlias, HelpFormatter

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{REPO / 'pyscripts'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
SUBCOMMANDS = dict(subcommand_parsers(build_parser()))


def cli(*argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "atacdenoise.cli", *map(str, argv)], capture_output=True,
                          text=True, env=ENV, timeout=120, **kwargs)


def test_every_subcommand_is_walked():
    assert {"bin", "peaks", "denoise", "search", "registry serve", "samplesheet check", "qc"} <= set(SUBCOMMANDS)
    assert set(SUBCOMMANDS) == set(EXAMPLES)


@pytest.mark.parametrize("path", sorted(SUBCOMMANDS))
def test_every_option_has_help_and_shows_its_default(path):
    parser = SUBCOMMANDS[path]
    formatter = HelpFormatter(prog=parser.prog)
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, DeprecatedAlias)):
            continue
        assert action.help and action.help is not argparse.SUPPRESS, (path, action.dest)
        if action.option_strings and action.nargs != 0 and action.default is not None:
            assert "default" in formatter._get_help_string(action), (path, action.dest)
    text = parser.format_help()
    assert "examples:" in text and text.rstrip().splitlines()[-1].strip().startswith("atacdenoise ")
    assert {"--verbose", "--quiet", "--progress"} <= set(parser._option_string_actions)


def test_top_level_help_documents_the_rule_and_exit_codes():
    text = build_parser().format_help()
    assert "--out-prefix PREFIX" in text and "--outdir DIR" in text
    for code in ("0", "1", "2", "130", "143"):
        assert f"\n  {code} " in text


@pytest.mark.parametrize("command, old, new, dest", [
    (["bin", "--input", "x.bam"], "--output-prefix", "--out-prefix", "out_prefix"),
    (["peaks", "--input", "x.bam"], "--output-prefix", "--out-prefix", "out_prefix"),
    (["simulate"], "--out-dir", "--outdir", "outdir"),
    (["search", "--train", "t.npz", "--val", "v.npz"], "--out", "--outdir", "outdir"),
    (["prepare", "--insertions", "i", "--clean-bigwig", "c", "--clean-peaks", "p", "--chrom-sizes", "s",
      "--train-chroms", "chr1", "--val-chroms", "chr2"], "--out", "--outdir", "outdir"),
])
def test_old_spellings_still_work_and_say_the_new_one(command, old, new, dest, caplog):
    parser = build_parser()
    assert getattr(parser.parse_args([*command, new, "o"]), dest) == "o"
    with caplog.at_level("WARNING"):
        assert getattr(parser.parse_args([*command, old, "o"]), dest) == "o"
    assert f"{old} is deprecated; use {new}" in caplog.text
    assert not re.search(rf"{old}\b(?!-)", SUBCOMMANDS[command[0]].format_help())  # hidden
    with pytest.raises(SystemExit) as err:
        parser.parse_args(command)  # still required
    assert err.value.code == 2


def test_no_caller_uses_an_old_spelling():
    """Modules, the local runner, benchmarks and docs call the new spellings (the aliases are for users)."""
    files = [*REPO.glob("modules/*.nf"), REPO / "pyscripts/atacdenoise/pipeline.py", REPO / "README.md",
             *REPO.glob("registry/models/*.md"), *REPO.glob("benchmarks/*.sh")]
    for path in files:
        text = re.sub(r"### Command-line conventions.*?\n### ", "", path.read_text(), flags=re.S)  # names them
        assert "--output-prefix" not in text and "atacdenoise simulate --out-dir" not in text, path


def test_progress_follows_the_terminal_and_the_flags(monkeypatch):
    from atacdenoise.cli_args import progress_wanted

    parse = build_parser().parse_args
    base = ["bin", "--input", "x.bam", "--out-prefix", "o"]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress_wanted(parse(base)) and not progress_wanted(parse([*base, "-q"]))
    assert not progress_wanted(parse([*base, "--progress", "never"]))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not progress_wanted(parse(base)) and progress_wanted(parse([*base, "-q", "--progress", "always"]))


def test_exit_0_and_quiet(tmp_path):
    done = cli("simulate", "--outdir", tmp_path / "sim", "--chroms", "1", "--chrom-length", "50000",
               "--fragments", "500")
    assert done.returncode == 0, done.stderr
    sim = tmp_path / "sim"
    loud = cli("insertions", "--input", sim / "sim.bam", "--output", tmp_path / "a.bed")
    quiet = cli("insertions", "--input", sim / "sim.bam", "--output", tmp_path / "b.bed", "-q")
    assert loud.returncode == quiet.returncode == 0
    assert "wrote" in loud.stderr and quiet.stderr == ""


def test_exit_2_on_bad_input_and_usage(tmp_path):
    bad = cli("bin", "--input", tmp_path / "missing.bam", "--out-prefix", tmp_path / "x")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("atacdenoise: error:"), bad.stderr
    usage = cli("bin", "--input", "x.bam")
    assert usage.returncode == 2 and "--out-prefix" in usage.stderr


def test_exit_1_on_an_internal_error_with_a_traceback_only_under_verbose(monkeypatch, tmp_path, capsys):
    import atacdenoise.cli as cli_module

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli_module, "cmd_windows", broken)
    argv = ["windows", "--noisy", "n", "--clean", "c", "--chroms", "chr1", "--output", str(tmp_path / "w.npz")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err and "please report" in err and "Traceback" not in err
    assert main([*argv, "-v"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_exit_1_in_a_real_process(tmp_path):
    """A real subprocess whose subcommand crashes (a bug, simulated): 1, 'please report', no traceback."""
    code = ("import sys, atacdenoise.cli as c\n"
            "def boom(args): raise ZeroDivisionError('x')\n"
            "c.cmd_windows = boom\n"
            "sys.exit(c.main(sys.argv[1:]))\n")
    argv = ["windows", "--noisy", "n", "--clean", "c", "--chroms", "chr1", "--output", str(tmp_path / "w.npz")]
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 1 and "please report" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_exit_130_interrupted_and_143_terminated(tmp_path, sig, code):
    """A real run stopped by Ctrl-C or SIGTERM while it works: no partial output, the documented code."""
    code_text = ("import sys, time, atacdenoise.cli as c\n"
                 "def slow(args):\n"
                 "    print('started', flush=True)\n"
                 "    time.sleep(60)\n"
                 "c.cmd_windows = slow\n"
                 "sys.exit(c.main(sys.argv[1:]))\n")
    argv = ["windows", "--noisy", "n", "--clean", "c", "--chroms", "chr1", "--output", str(tmp_path / "w.npz")]
    run = subprocess.Popen([sys.executable, "-c", code_text, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=ENV)
    try:
        assert run.stdout.readline().strip() == "started"
        run.send_signal(sig)
        assert run.wait(timeout=60) == code
        assert ("terminated" if sig == signal.SIGTERM else "interrupted") in run.stderr.read()
    finally:
        if run.poll() is None:
            run.kill()
            time.sleep(0.1)
