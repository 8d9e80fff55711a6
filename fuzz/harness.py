"""The fuzzing property, checked on one input: `check_one(text)`.

One spec text goes through the whole pipeline, as `resdsl check`, `info` and `compile --verify`
would run it:

    parse -> imports -> lower -> passes (load_network)     the front end
    -> IR invariants, report (to_json, table)               what `check`/`info` print
    -> render_model (twice: it must be deterministic)      the PyTorch code generator
    -> compile + import the module, build it on the meta device, compare with the IR (verify_model)
    -> small networks: one real forward + backward step on the CPU, zero_init_residual=True,
       in a forked child (a kernel that hangs or segfaults is a finding, not the end of the run)

The property: the input ends either in a clear error (a ResdslError whose render() is non-empty,
starts with `file:line:col: error:` or `error:`, and holds no traceback) or in a generated module
that imports and matches its IR (and, when small, trains a step). Anything else raises `Finding`. Inputs past the resource bounds
(bytes, ops to compile) are skipped, not failed. Used by tests/test_fuzz_corpus.py (CI) and by
fuzz/run.py (`make fuzz`).
"""

from __future__ import annotations

import enum
import faulthandler
import os
import re
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Imported here, not lazily, so that fuzz/run.py instruments every module the harness reaches.
from resdsl.backends.pytorch.codegen import render_model
from resdsl.backends.pytorch.verify import load_module, verify_model
from resdsl.backends.report import table, to_json
from resdsl.diagnostics import ResdslError
from resdsl.ir.graph import print_ir
from resdsl.ir.pipeline import load_network

MAX_INPUT_BYTES = 64 * 1024  # longer inputs are skipped
MAX_OPS_TO_COMPILE = 20_000  # a bigger IR is checked but not compiled (verify builds every op: ~2 ms each)
# A network this small also runs one real training step on the CPU (in a child process):
TRAIN_STEP_MAX_WORK = 20_000_000  # conv/fc multiply-adds + pooling window work, per image
TRAIN_STEP_MAX_ELEMENTS = 2_000_000  # activations summed over ops, per image
TRAIN_STEP_TIMEOUT_S = 10.0  # such a step takes well under a second
TIMEOUT_S = 60.0  # per input, wall clock; past it the input is a finding (a hang)
SPEC_NAME = "fuzz.rd"

# The first line of a rendered error: `path:line:col: error: ...` or `error: ...`.
_HEADLINE = re.compile(r"(?:[^\n]+:\d+:\d+: )?error: \S")


class Outcome(enum.Enum):
    ERROR = "error"  # a clear ResdslError from the front end
    REFUSED = "refused"  # a clear ResdslError from the code generator (an unsupported construct)
    COMPILED = "compiled"  # a module that imports and matches its IR
    SKIPPED = "skipped"  # past a resource bound


class Finding(Exception):
    """An input that breaks the property. `signature` groups findings with the same cause."""

    def __init__(self, kind: str, stage: str, detail: str, where: str = "") -> None:
        super().__init__(f"{kind} in {stage}: {detail}")
        self.kind = kind
        self.stage = stage
        self.detail = detail
        self.where = where  # a crash: `Type@file.py:function` (innermost resdsl frame); a mismatch: its text
        self.signature = ":".join(p for p in (kind, stage, where) if p)
        self.traceback = ""


class Timeout(BaseException):
    """Raised by the per-input alarm; a BaseException so that no `except Exception` swallows it."""


def check_one(
    data: str | bytes,
    *,
    max_ops: int = MAX_OPS_TO_COMPILE,
    timeout: float | None = TIMEOUT_S,
    compile_model: bool = True,
    train_step: bool = True,
    train_timeout: float = TRAIN_STEP_TIMEOUT_S,
) -> Outcome:
    """Run one spec text through the pipeline; return how it ended, or raise Finding."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_INPUT_BYTES:
        return Outcome.SKIPPED
    # A fresh folder per input: `import "std.rd"` is found from the package, other imports fail
    # cleanly, and nothing an input names can meet a file another input wrote.
    with tempfile.TemporaryDirectory(prefix="resdsl-fuzz-") as tmp:
        spec = Path(tmp) / SPEC_NAME
        spec.write_bytes(raw)
        try:
            with _deadline(timeout):
                return _check(spec, max_ops, compile_model, train_step and train_timeout)
        except Timeout:  # between stages
            raise Finding("timeout", "pipeline", "the input took longer than its time limit") from None


def _check(spec: Path, max_ops: int, compile_model: bool, train_timeout: float) -> Outcome:
    with _stage("front end"):
        try:
            ir = load_network(spec)
        except ResdslError as err:
            check_rendered(err, "front end")
            return Outcome.ERROR
    with _stage("IR invariants"):
        ir.verify()
    with _stage("report"):
        to_json(ir, SPEC_NAME)
        table(ir, SPEC_NAME)
        print_ir(ir)
    if not compile_model or ir.graph.number_of_nodes() > max_ops:
        return Outcome.SKIPPED
    with _stage("code generator"):
        try:
            source = render_model(ir, spec)
        except ResdslError as err:
            check_rendered(err, "code generator")
            return Outcome.REFUSED
        again = render_model(ir, spec)
    if again != source:
        raise Finding("nondeterministic", "code generator", "rendering the same IR twice gave different text")
    try:
        compile(source, "model.py", "exec")
    except SyntaxError as err:
        raise Finding("syntax-error", "generated model.py", f"line {err.lineno}: {err.msg}") from None
    with _stage("verify"):
        problems = verify_model(ir, source)
    if problems:
        # the first problem, numbers and quoted names blotted out: `FLOPs: ...`, `... fails to build ...: RuntimeError: ...`
        where = re.sub(r"-?\d[\d,.]*|'[^']*'|`[^`]*`", "#", problems[0])[:90]
        raise Finding("verify-mismatch", "generated model.py", "; ".join(problems), where=where)
    if train_timeout and _small(ir):
        run_in_child(lambda: _train_step(ir, source), "train step", train_timeout)
    return Outcome.COMPILED


def _small(ir) -> bool:
    """Cheap enough for a real step: conv/fc MACs, pooling work and activations, per image."""
    work = ir.totals.flops
    elements = 0
    for op in ir.ops():
        n = 1
        for d in op.shape or ():
            n *= d
        elements += n
        if "kernel" in op.attrs and op.kind.value in ("maxpool", "avgpool"):
            kh, kw = op.attrs["kernel"]
            work += n * kh * kw
    return work <= TRAIN_STEP_MAX_WORK and elements <= TRAIN_STEP_MAX_ELEMENTS


def _train_step(ir, source: str) -> None:
    """A small network also runs for real: built with zero_init_residual=True (its branch names
    the last BN of each block), one forward and backward pass in training mode on a batch of 2
    (in-place ReLUs and additions must not break autograd; stochastic depth draws)."""
    import torch

    torch.manual_seed(0)
    model = load_module(source, "resdsl_fuzz_model").build_model(zero_init_residual=True)
    model.train()
    out = model(torch.randn(2, *ir.input_shape))
    if tuple(out.shape) != (2, ir.classes):
        raise Finding("train-step", "generated model.py", f"output {tuple(out.shape)}, expected (2, {ir.classes})")
    out.sum().backward()


def run_in_child(step, stage: str, timeout: float) -> None:
    """Run `step` in a forked child: PyTorch's kernels can hang or crash the process (a segfault),
    which no alarm in this one could stop. A Finding raised by the step, an exception, a death by
    signal or a run past `timeout` is a Finding here."""
    import pickle

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, exit without running any cleanup of the parent's
        code = 0
        try:
            os.close(read)
            faulthandler.disable()  # pytest's, which would print the crash before dying of it
            signal.setitimer(signal.ITIMER_REAL, 0)
            for sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT, signal.SIGALRM):
                signal.signal(sig, signal.SIG_DFL)  # die of it: not libFuzzer's or pytest's handler
            import torch

            torch.set_num_threads(1)
            with _stage(stage):
                step()
        except Finding as f:
            code = 1
            info = (f.kind, f.stage, f.detail, f.where, f.traceback)
            os.write(write, pickle.dumps(info)[:60_000])
        except BaseException:  # noqa: BLE001 - nothing may escape the child
            code = 2
        os._exit(code)
    os.close(write)
    status = None
    try:
        deadline = time.monotonic() + timeout
        while True:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = code
                break
            if time.monotonic() > deadline:
                raise Finding("timeout", stage, f"the step took longer than {timeout:g} s")
            time.sleep(0.002)
        data = b""
        while chunk := os.read(read, 65536):
            data += chunk
    finally:
        os.close(read)
        if status is None:  # a timeout here or an alarm of check_one: the child must not outlive it
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise Finding("crash", stage, f"the process died of {name}", where=name)
    code = os.WEXITSTATUS(status)
    if code == 1:
        kind, stage_, detail, where, tb = pickle.loads(data)
        finding = Finding(kind, stage_, detail, where)
        finding.traceback = tb
        raise finding
    if code != 0:
        raise Finding("crash", stage, f"the child exited with status {code}")


def check_rendered(err: ResdslError, stage: str) -> None:
    """A clear error: render() works, is non-empty, is located or says `error:`, no traceback."""
    try:
        text = err.render()
    except Exception as e:  # noqa: BLE001 - rendering must never fail
        raise _crash("render-crash", stage, e) from None
    if not isinstance(text, str) or not text.strip():
        raise Finding("empty-error", stage, f"{type(err).__name__}.render() is {text!r}", type(err).__name__)
    if not _HEADLINE.match(text):
        raise Finding("unlocated-error", stage, f"render() starts {text.splitlines()[0][:120]!r}", type(err).__name__)
    if "Traceback" in text:
        raise Finding("traceback-in-error", stage, text[:200], type(err).__name__)
    if "resdsl bug" in text or "(a bug" in text:
        raise Finding("bug-error", stage, text.splitlines()[0][:200], type(err).__name__)


@contextmanager
def _stage(name: str) -> Iterator[None]:
    """Anything but a Finding or KeyboardInterrupt escaping a stage is a finding of that stage."""
    try:
        yield
    except (Finding, KeyboardInterrupt):
        raise
    except Timeout:
        raise Finding("timeout", name, "the input took longer than its time limit") from None
    except AssertionError as e:
        raise _crash("assertion", name, e) from None
    except BaseException as e:  # noqa: BLE001 - SystemExit and RecursionError included
        raise _crash("crash", name, e) from None


def _crash(kind: str, stage: str, e: BaseException) -> Finding:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/resdsl/" in f.filename.replace("\\", "/")]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].name}" if frames else ""
    detail = f"{type(e).__name__}: {e}"[:300]
    if where:
        where = f"{type(e).__name__}@{where}"
    else:  # not in resdsl (the generated module, torch): the message tells causes apart
        where = f"{type(e).__name__}: " + re.sub(r"-?\d[\d,.]*|'[^']*'|`[^`]*`|\[[^\]]*\]", "#", str(e))[:60]
    finding = Finding(kind, stage, detail, where)
    finding.traceback = "".join(traceback.format_exception(e))
    return finding


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Raise Timeout after `seconds` of wall clock (main thread only; SIGALRM)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame) -> None:
        raise Timeout

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def signature_of(data: str | bytes, **kwargs) -> str | None:
    """The signature of the finding an input produces, or None if it satisfies the property."""
    try:
        check_one(data, **kwargs)
    except Finding as f:
        return f.signature
    return None
