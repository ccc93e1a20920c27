"""Turning an objective function into source text that a trial process can run on its own,
as Katib's SDK does: the function travels in the trial's command, not as a pickle.

The rule for what a function may use besides its parameter and its own body:

- modules (``import numpy as np`` at module level) are imported again in the trial;
- functions and classes imported from another module (``from math import sqrt``) are
  imported again from that module, so it must be importable where the trial runs;
- plain constants (numbers, strings, booleans, None, and lists, tuples, dicts and sets of
  them, up to ``MAX_CONSTANT_CHARS`` of text) are copied by value;
- other functions of the objective's own module are copied by source, under the same rule;
- anything else (objects, classes of the same module, big data) is refused: build or load
  it inside the function.

Refused outright: lambdas, closures (functions using variables of an enclosing function),
decorated wrappers, coroutines and generators, and functions whose source ``inspect``
cannot find (typed into a plain Python REPL, built with ``exec``).
"""

from __future__ import annotations

import ast
import builtins
import dis
import importlib
import inspect
import textwrap
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_CONSTANT_CHARS = 10_000
"""A module-level constant whose text is longer is refused: it would bloat every trial's
command line (Kubernetes keeps the Job object in etcd, ~1.5 MB at most)."""

_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_CONTAINERS = (list, tuple, set, frozenset, dict)


class SourceError(ValueError):
    """The objective function cannot be sent to a trial; the message says why and what to do."""


@dataclass(frozen=True)
class FunctionSource:
    """``source`` is a module text that defines ``name`` (and what it needs) when executed."""

    name: str
    source: str


@dataclass
class _Capture:
    module: str
    imports: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)


def function_source(fn: Callable[..., Any]) -> FunctionSource:
    """The self-contained source of objective ``fn`` (see the module docstring for the rule).

    Raises ``SourceError`` naming the function and the reason.
    """
    shown = getattr(fn, "__qualname__", None) or repr(fn)
    if not isinstance(fn, types.FunctionType):
        raise SourceError(
            f"{shown!r} is not a plain function (a def statement); methods, functools.partial "
            "and callable objects cannot travel to a trial; wrap the call in a module-level "
            "def taking one argument, the parameters dict"
        )
    _check_function(fn, shown)
    try:
        signature = inspect.signature(fn)
        signature.bind({})
    except TypeError as e:
        raise SourceError(
            f"{shown}{signature}: the objective is called with one argument, the parameters "
            "dict (name -> value); other parameters need defaults"
        ) from e
    capture = _Capture(module=fn.__module__, seen={fn.__name__})
    _copy_function(fn, fn.__name__, capture)
    parts = ["from __future__ import annotations", *capture.imports.values()]
    parts += [f"{name} = {text}" for name, text in capture.constants.items()]
    body = "\n".join(parts) + "\n"
    # Helpers before their callers: a default argument may name a helper at def time.
    for text in reversed(capture.functions.values()):
        body += "\n\n" + text
    return FunctionSource(fn.__name__, body)


def _check_function(fn: types.FunctionType, shown: str) -> None:
    if fn.__name__ == "<lambda>":
        raise SourceError(
            f"{shown}: a lambda cannot travel to a trial (its source is part of another "
            "statement); define the objective with def at module level"
        )
    if hasattr(fn, "__wrapped__"):
        raise SourceError(
            f"{shown} is wrapped by a decorator; pass the undecorated function (the trial "
            "runs its source, so the wrapper would be lost anyway)"
        )
    if fn.__code__.co_freevars:
        names = ", ".join(fn.__code__.co_freevars)
        raise SourceError(
            f"{shown} is a closure: it uses {names} from an enclosing function, and a trial "
            "runs the function's source alone; define it at module level and pass values as "
            "tuned parameters, module-level constants or default arguments"
        )
    if inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn):
        raise SourceError(f"{shown}: async functions and generators cannot be objectives")


def _copy_function(fn: types.FunctionType, as_name: str, capture: _Capture) -> None:
    shown = fn.__qualname__
    try:
        text = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as e:
        raise SourceError(
            f"{shown}: its source code cannot be found ({e}); functions typed into an "
            "interactive interpreter or built with exec() cannot travel to a trial; define it "
            "in a .py file (or a notebook cell)"
        ) from e
    node = _function_node(text, fn.__name__, shown)
    # Decorators are dropped: a decorator that replaced the function was refused above.
    lines = text.splitlines()[node.lineno - 1 :]
    source = "\n".join(lines) + "\n"
    if "${trialParameters." in source:
        raise SourceError(
            f"{shown}: its source contains '${{trialParameters.', which Katib would replace "
            "in the trial command; spell it differently (e.g. '$' '{trialParameters.')"
        )
    if fn.__name__ != as_name:
        source += f"\n{as_name} = {fn.__name__}\n"
    capture.functions[as_name] = source
    # Only names the source spells: bytecode may read globals of its own (pytest's assert
    # rewriting adds `@py_builtins`), which the source, run as written, never needs.
    written = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    for name in sorted((_global_names(fn.__code__) & written) | _default_names(node)):
        _capture_global(fn, name, capture)


def _function_node(text: str, name: str, shown: str) -> ast.FunctionDef:
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise SourceError(f"{shown}: its source does not parse on its own: {e}") from e
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise SourceError(f"{shown}: no 'def {name}' found in its source")


def _global_names(code: types.CodeType) -> set[str]:
    """Names the code reads from module globals (or builtins), nested code included."""
    names = set()
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            names.add(str(instruction.argval))
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _global_names(constant)
    return names


def _default_names(node: ast.FunctionDef) -> set[str]:
    """Names the default values read (evaluated where the def runs, not in the body)."""
    defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
    return {
        n.id
        for default in defaults
        for n in ast.walk(default)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }


def _capture_global(fn: types.FunctionType, name: str, capture: _Capture) -> None:
    if name in capture.seen:
        return
    capture.seen.add(name)
    if name not in fn.__globals__:
        return  # a builtin, or a NameError the trial will report as the caller would see it
    value = fn.__globals__[name]
    if value is getattr(builtins, name, _MISSING):
        return
    if isinstance(value, types.ModuleType):
        capture.imports[name] = _import_module_line(name, value, fn)
    elif isinstance(value, types.FunctionType) and value.__module__ == capture.module:
        _check_function(value, value.__qualname__)
        _copy_function(value, name, capture)
    elif _is_constant(value):
        text = repr(value)
        if len(text) > MAX_CONSTANT_CHARS:
            raise SourceError(
                f"{fn.__qualname__} uses the module-level {name!r} ({len(text)} characters as "
                f"text, more than {MAX_CONSTANT_CHARS}); load or build it inside the function"
            )
        capture.constants[name] = text
    else:
        capture.imports[name] = _import_object_line(name, value, fn)


_MISSING = object()


def _import_module_line(name: str, module: types.ModuleType, fn: types.FunctionType) -> str:
    module_name = module.__name__
    if module_name == "__main__":
        raise SourceError(
            f"{fn.__qualname__} uses {name!r}, the __main__ module, which a trial cannot import"
        )
    if module_name == name:
        return f"import {module_name}"
    return f"import {module_name} as {name}"


def _import_object_line(name: str, value: Any, fn: types.FunctionType) -> str:
    module_name = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    refusal = (
        f"{fn.__qualname__} uses the module-level {name!r} ({type(value).__name__}), which "
        "cannot travel to a trial: the trial runs the function's source, and only modules, "
        "importable functions and classes, functions of the same module and plain constants "
        "are recreated there; create or import it inside the function"
    )
    if (
        not isinstance(module_name, str)
        or not isinstance(qualname, str)
        or module_name in ("__main__", fn.__module__)
        or "." in qualname
        or "<" in qualname
    ):
        raise SourceError(refusal)
    try:
        found = getattr(importlib.import_module(module_name), qualname)
    except (ImportError, AttributeError) as e:
        raise SourceError(refusal) from e
    if found is not value:
        raise SourceError(refusal)
    if qualname == name:
        return f"from {module_name} import {name}"
    return f"from {module_name} import {qualname} as {name}"


def _is_constant(value: Any) -> bool:
    return all(isinstance(v, _PLAIN) for v in _leaves(value, 0)) and _round_trips(value)


def _leaves(value: Any, depth: int) -> Iterator[Any]:
    if depth > 20:
        yield _MISSING
    elif type(value) in _CONTAINERS:
        items = value.items() if isinstance(value, dict) else value
        for item in items:
            yield from _leaves(item, depth + 1)
    elif type(value) in _PLAIN:
        yield value
    else:
        yield _MISSING


def _round_trips(value: Any) -> bool:
    """Whether ``repr(value)`` reads back as an equal value (not so for NaN or inf)."""
    try:
        return bool(ast.literal_eval(repr(value)) == value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False
