"""The result cache in front of `resdsl check` / `resdsl info` (resdsl/entry.py).

Most tests run the entry in process against a private copy of the tool's files (so edits others make
to the checkout meanwhile cannot turn an expected hit into a miss), with XDG_CACHE_HOME in tmp_path so
the user's cache is never touched. RESDSL_CACHE_DEBUG=1 makes the entry say `hit` / `miss (why)` /
`stored` / `not stored (why)` / `bypass (why)` on stderr; those lines are split off before comparing.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resdsl import entry

ROOT = Path(__file__).resolve().parent.parent

NET = """\
import "lib.rd"

param n = 3

network tiny {
    input 3x32x32
    classes 10
    shortcut A
    stem { conv 3x3, 16; bn; relu }
    stage conv2 = pair(16) * n
    stage conv3 = pair(32, stride: 2) * n
    head { avgpool global; fc classes }
}
"""

LIB = """\
block pair(c, stride = 1) {
    residual {
        conv 3x3, c, stride: stride; bn; relu
        conv 3x3, c; bn
    }
    relu
}
"""

BAD = NET.replace("pair(16)", "pear(16)")

# uses the bundled standard library: a std.rd beside it would shadow that
STD_NET = """\
import "std.rd"

network viastd {
    input 3x32x32
    classes 10
    shortcut A
    stem { conv 3x3, 16; bn; relu }
    stage conv2 = basic(16) * 2
    head { avgpool global; fc classes }
}
"""


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of the files the fingerprint covers: resdsl/*.py, grammars/, specs/."""
    root = tmp_path_factory.mktemp("tool")
    shutil.copytree(ROOT / "resdsl", root / "resdsl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "grammars", root / "grammars")
    shutil.copytree(ROOT / "specs", root / "specs")
    return root


@pytest.fixture
def work(tmp_path: Path, tool: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("RESDSL_CACHE_DEBUG", "1")
    monkeypatch.delenv("RESDSL_NO_CACHE", raising=False)
    monkeypatch.setattr(entry, "_PACKAGE", str(tool / "resdsl"))
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "net.rd").write_text(NET)
    (work / "lib.rd").write_text(LIB)
    (work / "bad.rd").write_text(BAD)
    (work / "sub" / "viastd.rd").write_text(STD_NET)
    monkeypatch.chdir(work)
    return work


def resdsl(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str, list[str]]:
    """(exit code, stdout, stderr without the debug lines, the debug lines)."""
    code = entry.run(list(args))
    out, err = capsys.readouterr()
    debug = [line.removeprefix("resdsl cache: ") for line in err.splitlines() if line.startswith("resdsl cache: ")]
    err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith("resdsl cache: "))
    return (0 if code is None else code), out, err, debug


def results(work: Path) -> list[Path]:
    folder = work.parent / "cache" / "resdsl" / "results"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_second_run_hits_with_identical_output(work: Path, capsys: pytest.CaptureFixture) -> None:
    first = resdsl(capsys, "info", "net.rd")
    assert first[3] == ["miss (no entry)", "stored"]
    assert first[0] == 0 and "layers" in first[1]
    second = resdsl(capsys, "info", "net.rd")
    assert second[3] == ["hit"]
    assert second[:3] == first[:3]
    assert len(results(work)) == 1


@pytest.mark.parametrize("args", [["info", "net.rd", "--json"], ["info", "net.rd", "--ir"], ["check", "-q", "net.rd"]])
def test_every_flag_combination_is_its_own_entry(work: Path, capsys: pytest.CaptureFixture, args: list[str]) -> None:
    first = resdsl(capsys, *args)
    second = resdsl(capsys, *args)
    assert (first[3], second[3]) == (["miss (no entry)", "stored"], ["hit"])
    assert second[:3] == first[:3]


def test_error_run_is_replayed_with_exit_1_and_the_same_stderr(work: Path, capsys: pytest.CaptureFixture) -> None:
    first = resdsl(capsys, "check", "net.rd", "bad.rd", "sub/viastd.rd")
    assert first[0] == 1
    assert "bad.rd:10:19: error: unknown block `pear`" in first[2]
    assert "net.rd: ok:" in first[1] and "sub/viastd.rd: ok:" in first[1]
    second = resdsl(capsys, "check", "net.rd", "bad.rd", "sub/viastd.rd")
    assert second[3] == ["hit"]
    assert second[:3] == first[:3]


def test_stdout_and_stderr_keep_their_order(work: Path, capsys: pytest.CaptureFixture) -> None:
    resdsl(capsys, "check", "net.rd", "bad.rd", "net.rd")
    folder = work.parent / "cache" / "resdsl" / "results"
    (path,) = folder.iterdir()
    import marshal

    _, chunks, code = marshal.loads(path.read_bytes()[32:])
    assert [tag for tag, _ in chunks] == [1, 2, 1] and code == 1


def test_editing_the_spec_misses(work: Path, capsys: pytest.CaptureFixture) -> None:
    resdsl(capsys, "info", "net.rd")
    (work / "net.rd").write_text(NET.replace("param n = 3", "param n = 4"))
    again = resdsl(capsys, "info", "net.rd")
    assert again[3] == [f"miss (read {work / 'net.rd'} changed)", "stored"]
    assert again[1] != resdsl(capsys, "info", "net.rd", "--set", "n=3")[1]
    assert resdsl(capsys, "info", "net.rd")[3] == ["hit"]


def test_editing_an_imported_file_misses(work: Path, capsys: pytest.CaptureFixture) -> None:
    before = resdsl(capsys, "info", "net.rd")
    (work / "lib.rd").write_text(LIB.replace("conv 3x3, c; bn\n", "conv 1x1, c; bn; relu\n        conv 3x3, c; bn\n"))
    after = resdsl(capsys, "info", "net.rd")
    assert after[3] == [f"miss (read {work / 'lib.rd'} changed)", "stored"]
    assert after[1] != before[1]


def test_a_file_shadowing_a_bundled_import_misses(work: Path, capsys: pytest.CaptureFixture) -> None:
    before = resdsl(capsys, "check", "sub/viastd.rd")
    assert before[0] == 0
    assert resdsl(capsys, "check", "sub/viastd.rd")[3] == ["hit"]
    (work / "sub" / "std.rd").write_text(LIB)  # defines `pair`, not `basic`
    after = resdsl(capsys, "check", "sub/viastd.rd")
    assert after[3][0] == f"miss (absent {work / 'sub' / 'std.rd'} changed)"
    assert after[0] == 1 and "unknown block `basic`" in after[2]


def test_a_missing_spec_then_created_misses(work: Path, capsys: pytest.CaptureFixture) -> None:
    first = resdsl(capsys, "check", "later.rd")
    assert first[0] == 1 and "cannot read spec `later.rd`: no such file" in first[2]
    assert resdsl(capsys, "check", "later.rd")[3] == ["hit"]
    (work / "later.rd").write_text(NET)
    after = resdsl(capsys, "check", "later.rd")
    assert after[3][0].startswith("miss (absent") and after[0] == 0


def test_a_repointed_symlink_misses(work: Path, capsys: pytest.CaptureFixture) -> None:
    (work / "other.rd").write_text(NET.replace("param n = 3", "param n = 1"))
    (work / "link.rd").symlink_to("net.rd")
    first = resdsl(capsys, "info", "link.rd")
    (work / "link.rd").unlink()
    (work / "link.rd").symlink_to("other.rd")
    after = resdsl(capsys, "info", "link.rd")
    assert after[3][0] == f"miss (resolves {work / 'link.rd'} changed)"
    assert after[1] != first[1]


def test_different_set_and_cwd_are_different_entries(work: Path, capsys: pytest.CaptureFixture) -> None:
    resdsl(capsys, "info", "net.rd")
    assert resdsl(capsys, "info", "net.rd", "--set", "n=5")[3] == ["miss (no entry)", "stored"]
    os.chdir(work / "sub")
    assert resdsl(capsys, "info", "../net.rd")[3] == ["miss (no entry)", "stored"]
    assert len(results(work)) == 3


def test_touching_a_resdsl_source_file_misses(work: Path, tool: Path, capsys: pytest.CaptureFixture) -> None:
    resdsl(capsys, "info", "net.rd")
    source = tool / "resdsl" / "lower.py"
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert resdsl(capsys, "info", "net.rd")[3] == ["miss (no entry)", "stored"]
    grammar = tool / "grammars" / "resdsl.lark"
    os.utime(grammar, ns=(st.st_atime_ns, grammar.stat().st_mtime_ns + 1_000_000_000))
    assert resdsl(capsys, "info", "net.rd")[3] == ["miss (no entry)", "stored"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage-with-valid-digest", "empty"])
def test_a_corrupt_entry_falls_back_to_a_normal_run(work: Path, capsys: pytest.CaptureFixture, damage: str) -> None:
    first = resdsl(capsys, "info", "net.rd")
    (path,) = results(work)
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        import marshal

        payload = marshal.dumps(("not", "an", "entry", "at all"))
        path.write_bytes(entry._hash(payload) + payload)
    again = resdsl(capsys, "info", "net.rd")
    assert again[:3] == first[:3]
    assert again[3][0] in ("miss (corrupt entry)", "bypass (ValueError: too many values to unpack (expected 3))")


def test_usage_errors_are_not_stored(work: Path, capsys: pytest.CaptureFixture) -> None:
    for args in (["info", "net.rd", "--bogus"], ["info", "net.rd", "--set", "nope=1"], ["check"]):
        code, _, err, debug = resdsl(capsys, *args)
        assert code == 2, err
        assert debug == ["miss (no entry)", "not stored (exit 2)"]
    assert results(work) == []


def test_help_version_and_other_commands_bypass_silently(work: Path, capsys: pytest.CaptureFixture) -> None:
    for args in (["info", "--help"], ["check", "net.rd", "-h"], ["--version"], ["--help"]):
        code, out, _, debug = resdsl(capsys, *args)
        assert code == 0 and out and debug == []
    assert results(work) == []


def test_no_cache_env_bypasses(work: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESDSL_NO_CACHE", "1")
    assert resdsl(capsys, "info", "net.rd")[3] == ["bypass (RESDSL_NO_CACHE)"]
    assert not (work.parent / "cache" / "resdsl" / "results").exists()


def test_an_unwritable_cache_still_runs(
    work: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = work.parent / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # every mkdir below it fails
    code, out, _, debug = resdsl(capsys, "info", "net.rd")
    assert code == 0 and "layers" in out
    assert debug[0] == "miss (no entry)" and debug[1].startswith("not stored (")


def test_output_that_could_not_be_written_is_not_stored(
    work: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Closed:
        encoding, errors = "utf-8", "strict"

        def write(self, text: str) -> int:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def flush(self) -> None:
            pass

    with monkeypatch.context() as m:
        m.setattr(sys, "stdout", Closed())
        assert entry.run(["info", "net.rd"]) == 1  # click's EPIPE handling
    assert "resdsl cache: not stored (exit 1, output failed)" in capsys.readouterr().err
    assert results(work) == []
    assert resdsl(capsys, "info", "net.rd")[3] == ["miss (no entry)", "stored"]


def test_the_cache_is_bounded(work: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entry, "MAX_ENTRIES", 3)
    for n in range(1, 6):
        resdsl(capsys, "info", "net.rd", "--set", f"n={n}")
    assert len(results(work)) == 3
    assert resdsl(capsys, "info", "net.rd", "--set", "n=5")[3] == ["hit"]  # the newest are kept
    assert resdsl(capsys, "info", "net.rd", "--set", "n=1")[3][0] == "miss (no entry)"


def test_a_hit_imports_neither_the_cli_nor_its_dependencies(tool: Path, tmp_path: Path) -> None:
    """In a fresh interpreter (python -m resdsl, the tool copy on PYTHONPATH): a hit loads no click,
    lark or networkx, and its exit code and output equal the stored run's."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "net.rd").write_text(NET)
    (work / "lib.rd").write_text(LIB)
    (work / "bad.rd").write_text(BAD)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "RESDSL_CACHE_DEBUG": "1"}
    env["PYTHONPATH"] = str(tool)
    env.pop("RESDSL_NO_CACHE", None)
    for spec, expected in (("net.rd", 0), ("bad.rd", 1)):
        cmd = [sys.executable, "-X", "importtime", "-m", "resdsl", "check", spec]
        first, second = (subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True) for _ in range(2))
        assert first.returncode == second.returncode == expected, first.stderr
        assert "resdsl cache: stored" in first.stderr
        assert "resdsl cache: hit" in second.stderr
        assert second.stdout == first.stdout

        def strip(err: str) -> str:
            return "".join(
                line for line in err.splitlines(True) if not line.startswith(("import time", "resdsl cache"))
            )

        assert strip(second.stderr) == strip(first.stderr)
        imported = {
            line.split("|")[-1].strip() for line in second.stderr.splitlines() if line.startswith("import time")
        }
        assert "resdsl.entry" in imported
        assert not imported & {"resdsl._record", "resdsl.cli", "click", "lark", "networkx", "hashlib", "json", "re"}, (
            imported
        )
