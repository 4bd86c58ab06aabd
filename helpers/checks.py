"""Checks for the exercises: compare a learner's answer with a reference and print one line.

A check cell in a workbook looks like::

    check_function(
        previous_token_attention, reference.previous_token_attention,
        [Case((pattern,), label="3 heads, 5 positions")],
        name="previous_token_attention",
        known_mistakes={"next": (attend_next, "you read the attention to the *next* token")},
    );

Each check prints one line starting with ✅ or ❌ (never a traceback) and returns a
:class:`CheckResult`, which is truthy when the check passed.
"""
from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

__all__ = ["Case", "CheckResult", "check_function", "check_value", "copy_inputs", "one_thread", "report",
           "single_threaded"]


@contextmanager
def one_thread():
    """Run torch and the BLAS under numpy and scikit-learn on one thread inside the block, then restore.

    The course's models, tensors and probes are small: a second thread buys little, and on a busy 2-core
    machine the threads' waiting made lesson 2's training check 30 times slower (35 s instead of 1.2 s),
    lesson 3's patching sweep 7 times slower and lesson 4's probe fits 14 times slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


def single_threaded(check: Callable) -> Callable:
    """Decorator: run a check inside :func:`one_thread` (the learner's function runs inside it too)."""
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        with one_thread():
            return check(*args, **kwargs)
    return wrapper


@dataclass
class Case:
    """One input to an exercise function: ``fn(*args, **kwargs)``, named by ``label`` in messages."""

    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass
class CheckResult:
    """Outcome of a check: ``passed`` and the one learner-facing line that was printed."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:
        """Show nothing when a check is a cell's last expression: its line is already printed."""


def report(passed: bool, message: str) -> CheckResult:
    """Print a check's one line (✅ or ❌, then ``message``) and return it as a :class:`CheckResult`."""
    line = ("✅ " if passed else "❌ ") + message
    print(line)
    return CheckResult(passed, line)


def _kind(x: Any) -> str:
    """A short English name for the type of ``x``, for messages."""
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"a numpy array of shape {x.shape}"
    if isinstance(x, (bool, np.bool_)):
        return "a bool"
    return f"{'an' if type(x).__name__[0] in 'aeiou' else 'a'} {type(x).__name__}"


def _shape_hint(got: tuple[int, ...], want: tuple[int, ...]) -> str:
    """A guess at the mistake behind a wrong shape, or ''."""
    if len(got) == len(want) and sorted(got) == sorted(want):
        return " — looks transposed: check the order of the dimensions"
    diffs = [d for d in range(len(want)) if len(got) == len(want) and got[d] != want[d]]
    if len(diffs) == 1 and abs(got[diffs[0]] - want[diffs[0]]) == 1:
        d = diffs[0]
        if got[d] > want[d]:
            return f" — one position too many on dim {d}: did you forget to drop the BOS position?"
        return f" — one position too few on dim {d}: did you drop the BOS position, or slice one too far?"
    if len(got) == len(want) + 1:
        return " — one dimension too many: did you forget to sum or average over a dimension?"
    if len(got) + 1 == len(want):
        return " — one dimension too few: did you reduce away a dimension you should keep?"
    return ""


def _dtype_family(t: torch.Tensor) -> str:
    return "bool" if t.dtype == torch.bool else "floating-point" if t.is_floating_point() else "integer"


def _tensor_problem(got: torch.Tensor, want: torch.Tensor, where: str, on_case: str,
                    atol: float, rtol: float) -> str | None:
    """Compare two tensors: shape, then dtype family, then NaN/inf, then values."""
    got, want = got.detach().cpu(), want.detach().cpu()
    if got.shape != want.shape:
        hint = _shape_hint(tuple(got.shape), tuple(want.shape))
        return f"returned shape {tuple(got.shape)}{where}, expected {tuple(want.shape)}{on_case}{hint}"
    if _dtype_family(got) != _dtype_family(want):
        family = _dtype_family(want)
        return f"returned dtype {got.dtype}{where}, expected a {family} dtype like {want.dtype}{on_case}"
    if not want.is_floating_point():
        wrong = int((got != want).sum())
        return None if wrong == 0 else f"wrong values{where}{on_case} ({wrong} of {want.numel()} entries differ)"
    got, want = got.double(), want.double()
    for bad, test in (("NaN", torch.isnan), ("inf", torch.isinf)):
        if (test(got) & ~test(want)).any():
            return f"returned {bad} values{where}{on_case} — look for a division by zero or a log of 0"
    if torch.allclose(got, want, atol=atol, rtol=rtol, equal_nan=True):
        return None
    error = (got - want).abs().nan_to_num(0.0).max().item()
    flipped = bool((want != 0).any()) and torch.allclose(got, -want, atol=atol, rtol=rtol, equal_nan=True)
    sign = " — the sign looks flipped" if flipped else ""
    return f"wrong values{where}{on_case} (max abs error {error:.3g}){sign}"


def _problem(got: Any, want: Any, atol: float, rtol: float, on_case: str = "", path: str = "") -> str | None:
    """Describe how ``got`` differs from ``want`` (None when they match within tolerance).

    Handles tensors, numpy arrays, Python/numpy numbers and bools, and tuples/lists/dicts of these.
    """
    where = f" in output{path}" if path else ""
    if got is None and want is not None:
        return f"returned None{where} — did you forget `return`?"
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"returned {_kind(got)}{where}, expected {_kind(want)}{on_case}"
        return _tensor_problem(got, want, where, on_case, atol, rtol)
    if isinstance(want, np.ndarray):
        if not isinstance(got, np.ndarray):
            tip = " (use .numpy())" if isinstance(got, torch.Tensor) else ""
            return f"returned {_kind(got)}{where}, expected {_kind(want)}{on_case}{tip}"
        return _tensor_problem(torch.as_tensor(got), torch.as_tensor(want), where, on_case, atol, rtol)
    if isinstance(want, (bool, np.bool_)):
        if not isinstance(got, (bool, np.bool_)):
            return f"returned {_kind(got)}{where}, expected a bool{on_case}"
        return None if bool(got) == bool(want) else f"wrong value{where}{on_case} (got {bool(got)})"
    if isinstance(want, numbers.Real):
        if not isinstance(got, numbers.Real) or isinstance(got, (bool, np.bool_)):
            tip = " (use .item())" if isinstance(got, torch.Tensor) and got.numel() == 1 else ""
            return f"returned {_kind(got)}{where}, expected a number{on_case}{tip}"
        if isinstance(want, numbers.Integral) and not isinstance(got, numbers.Integral):
            return f"returned {_kind(got)}{where}, expected an int{on_case}"
        if isinstance(want, numbers.Integral):
            same = int(got) == int(want)  # type: ignore[call-overload]  # numbers.Integral has __int__
            return None if same else f"wrong value{where}{on_case} (got {int(got)})"  # type: ignore[call-overload]
        as_tensor = lambda x: torch.tensor(float(x), dtype=torch.float64)  # noqa: E731
        return _tensor_problem(as_tensor(got), as_tensor(want), where, on_case, atol, rtol)
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"returned {_kind(got)}{where}, expected a {type(want).__name__} of {len(want)} items{on_case}"
        if len(got) != len(want):
            return f"returned {len(got)} items{where}, expected {len(want)}{on_case}"
        for i, (g, w) in enumerate(zip(got, want)):
            problem = _problem(g, w, atol, rtol, on_case, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            keys = f"keys {sorted(map(str, got))}" if isinstance(got, dict) else _kind(got)
            return f"returned {keys}{where}, expected a dict with keys {sorted(map(str, want))}{on_case}"
        for key in want:
            problem = _problem(got[key], want[key], atol, rtol, on_case, f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    return None if got == want else f"wrong value{where}{on_case}"


def _diagnose(got: Any, want: Any, mistakes: list[tuple[Any, str]], *, on_case: str, atol: float, rtol: float,
              compare: Callable[[Any, Any], bool] | None, hint: str, case_first: bool = False) -> str | None:
    """The one failure message for ``got`` (None if it passes): a known mistake's, else the generic one.

    With ``case_first`` the case is named first (``on case 'k': <what went wrong>``), and the hint follows
    only wrong values: a wrong type or shape gets no hint, which would give away the body."""
    if got is None and want is not None:
        return "returned None — did you forget `return`?"
    where = "" if case_first else on_case
    if compare is not None:
        same = lambda a, b: bool(compare(a, b))  # noqa: E731
        problem = None if same(got, want) else f"wrong values{where}"
    else:
        same = lambda a, b: _problem(a, b, atol, rtol) is None  # noqa: E731
        problem = _problem(got, want, atol, rtol, where)
    if problem is None:
        return None
    first = f"{on_case.strip()}: " if case_first and on_case else ""
    for mistake_output, message in mistakes:
        if same(got, mistake_output) and not same(want, mistake_output):
            return f"{first}{message}" + (f" (failed {where.strip()})" if where else "")
    if not hint or (case_first and not problem.startswith("wrong value")):
        return first + problem
    return first + problem + (" " if problem.endswith((".", "?", "!")) else ". ") + f"Hint: {hint}"


_FAILED = object()


def _try(wrong_fn: Callable[..., Any], case: Case) -> Any:
    """A known mistake's output on ``case``, or ``_FAILED`` if that mistake does not apply to it."""
    try:
        return wrong_fn(*copy_inputs(case.args), **copy_inputs(case.kwargs))
    except Exception:  # noqa: BLE001 - a mistake that cannot run on this input explains nothing
        return _FAILED


def _ruled_out(wrong_fn: Callable[..., Any], passed: list[tuple[Case, Any]], atol: float, rtol: float,
               compare: Callable[[Any, Any], bool] | None) -> bool:
    """Whether a known mistake cannot be what the learner did: on the first case, which the learner passed,
    it gives another output than the reference (which the learner's matched). ``passed`` holds that case."""
    if not passed:
        return False
    case, want = passed[0]
    output = _try(wrong_fn, case)
    if output is _FAILED:
        return False
    same = bool(compare(output, want)) if compare is not None else _problem(output, want, atol, rtol) is None
    return not same


def _is_cache(x: Any) -> bool:
    """True for a TransformerLens ``ActivationCache`` (checked by name: no import needed)."""
    return type(x).__name__ == "ActivationCache" and isinstance(getattr(x, "cache_dict", None), dict)


def copy_inputs(x: Any) -> Any:
    """Copy tensors, arrays and activation caches (inside tuples, lists, dicts) so an in-place edit cannot leak."""
    if _is_cache(x):
        return type(x)({key: copy_inputs(value) for key, value in x.cache_dict.items()}, x.model,
                       has_batch_dim=x.has_batch_dim)
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, (tuple, list)):
        return type(x)(copy_inputs(item) for item in x)
    if isinstance(x, dict):
        return {key: copy_inputs(value) for key, value in x.items()}
    return x  # models and other objects are shared, not copied


def _changed_input(copy: Any, original: Any, path: str = "") -> str | None:
    """Where ``copy`` (what the learner received) no longer equals ``original``, or None."""
    if _is_cache(copy):
        return _changed_input(copy.cache_dict, original.cache_dict, path)
    if isinstance(copy, torch.Tensor):
        same = copy.shape == original.shape and torch.equal(copy, original)
        return None if same else (path or "a tensor")
    if isinstance(copy, np.ndarray):
        return None if np.array_equal(copy, original) else (path or "an array")
    if isinstance(copy, (tuple, list)):
        for i, (c, o) in enumerate(zip(copy, original)):
            if (where := _changed_input(c, o, f"{path}[{i}]" if path else f"argument {i + 1}")) is not None:
                return where
    if isinstance(copy, dict):
        for key in original:
            if key in copy and (where := _changed_input(copy[key], original[key], f"{path}[{key!r}]")) is not None:
                return where
    return None


def _attached_hooks(x: Any) -> list:
    """The TransformerLens models among ``x`` (args, kwargs) that have hooks attached right now."""
    if isinstance(x, (tuple, list)):
        return [model for item in x for model in _attached_hooks(item)]
    if isinstance(x, dict):
        return [model for item in x.values() for model in _attached_hooks(item)]
    hook_dict = getattr(x, "hook_dict", None)
    if isinstance(hook_dict, dict) and any(getattr(hp, "fwd_hooks", None) or getattr(hp, "bwd_hooks", None)
                                           for hp in hook_dict.values()):
        return [x]
    return []


def _short(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [""])[0]
    text = text if len(text) <= 120 else text[:117] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def check_function(learner_fn: object, reference_fn: Callable[..., Any], cases: Sequence[Case | tuple], *,
                   name: str | None = None, atol: float = 1e-4, rtol: float = 1e-4,
                   known_mistakes: dict[str, tuple[Callable[..., Any], str]] | None = None,
                   compare: Callable[[Any, Any], bool] | None = None, hint: str = "",
                   rule_out_on_first_case: bool = False, case_first: bool = False) -> CheckResult:
    """Run ``learner_fn`` and ``reference_fn`` on every case and compare their outputs.

    Args:
        learner_fn: the learner's function from the exercise cell.
        reference_fn: the solution, called on fresh copies of the same inputs.
        cases: ``Case(args, kwargs, label)`` objects, or plain tuples of positional args.
        name: the exercise's name in messages (default: ``learner_fn.__name__``).
        atol, rtol: tolerances for floating-point outputs, as in ``torch.allclose``.
        known_mistakes: ``{key: (wrong_fn, message)}``; when the learner's output matches
            ``wrong_fn``'s (and not the reference's) on a case, ``message`` is shown.
        compare: ``compare(learner_output, reference_output) -> bool`` replacing the built-in
            comparison (e.g. for outputs that are equal up to order).
        hint: appended to the generic failure message.
        rule_out_on_first_case: for checks whose first case is cheap and later ones dear (a patching sweep
            of a real model): when the learner passed the first case and fails a later one, the known
            mistakes are run on the first case, and those whose output there differs from the reference's
            (so not what the learner did) are not run on the failing case. A wrong answer then costs
            about what a right one does, not one more dear run per known mistake. Only for mistakes that
            are functions of the case (not a lookup of a verdict).
        case_first: name the case before what went wrong (``on case 'k': you forgot the ReLU ...``), and
            append ``hint`` to wrong values only, not to a wrong type or shape.

    Returns:
        CheckResult; the line in ``message`` is also printed. Stops at the first failing case.
    """
    name = name or getattr(learner_fn, "__name__", "exercise")
    if not callable(learner_fn):
        return report(False, f"{name}: expected a function, got {_kind(learner_fn)}")
    all_cases: list[Case] = [c if isinstance(c, Case) else Case(args=tuple(c)) for c in cases]
    passed: list[tuple[Case, Any]] = []   # the first case, with the reference's output, once the learner passed it
    for i, case in enumerate(all_cases):
        label = case.label or f"#{i + 1}"
        want = reference_fn(*copy_inputs(case.args), **copy_inputs(case.kwargs))
        hooked_before = {id(model) for model in _attached_hooks((case.args, case.kwargs))}
        args, kwargs = copy_inputs(case.args), copy_inputs(case.kwargs)
        try:
            got = learner_fn(*args, **kwargs)
        except NotImplementedError:
            return report(False, f"{name}: not implemented yet — "
                                  "replace the `raise NotImplementedError` line with your code.")
        except Exception as error:  # noqa: BLE001 - any learner error becomes one line, not a traceback
            return report(False, f"{name} raised {_short(error)} on case '{label}'")
        finally:
            left = [m for m in _attached_hooks((case.args, case.kwargs)) if id(m) not in hooked_before]
            for model in left:
                model.reset_hooks(including_permanent=False)   # leave the check's models clean
        if left:
            return report(False, f"{name}: you left hooks attached to the model on case '{label}': use "
                                  "model.run_with_hooks(..., fwd_hooks=...), or call model.reset_hooks() when done")
        options: dict[str, Any] = dict(on_case=f" on case '{label}'", atol=atol, rtol=rtol, compare=compare, hint=hint,
                                       case_first=case_first)
        problem = _diagnose(got, want, [], **options)
        if problem and known_mistakes:  # run the wrong functions only when they can explain a failure
            mistakes = [(output, message) for wrong_fn, message in known_mistakes.values()
                        if not (rule_out_on_first_case and _ruled_out(wrong_fn, passed, atol, rtol, compare))
                        and (output := _try(wrong_fn, case)) is not _FAILED]
            problem = _diagnose(got, want, mistakes, **options)
        if problem:
            return report(False, f"{name}: {problem}")
        where = _changed_input(args, case.args) or _changed_input(kwargs, case.kwargs)
        if where is not None:  # a right answer that wrote into its inputs (a wrong one gets its own message)
            return report(False, f"{name}: you modified your input in place ({where}) on case '{label}': use "
                                  ".clone(), or write resid = resid + ... instead of resid += ...")
        if rule_out_on_first_case and not passed:
            passed.append((case, want))
    return report(True, f"{name}: passed all {len(all_cases)} case{'s' if len(all_cases) != 1 else ''}.")


def check_value(learner_value: Any, expected_value: Any, *, name: str, atol: float = 1e-4, rtol: float = 1e-4,
                known_mistakes: dict[str, tuple[Any, str]] | None = None,
                compare: Callable[[Any, Any], bool] | None = None, hint: str = "") -> CheckResult:
    """Compare a value the learner computed with the expected one (same rules as :func:`check_function`).

    ``known_mistakes`` maps a key to ``(wrong_value, message)``.
    """
    if learner_value is Ellipsis:
        return report(False, f"{name}: not filled in yet — replace the `...` with your answer.")
    problem = _diagnose(learner_value, expected_value, list((known_mistakes or {}).values()), on_case="",
                        atol=atol, rtol=rtol, compare=compare, hint=hint)
    return report(not problem, f"{name}: {problem}" if problem else f"{name}: correct.")
