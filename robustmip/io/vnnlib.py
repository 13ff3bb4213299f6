"""VNN-LIB properties: parsing into an :class:`~robustmip.spec.OutputProperty`, and VNN-COMP result files.

A VNN-LIB file declares inputs ``X_i`` and outputs ``Y_j`` (``declare-const``) and asserts the *unsafe*
region: the property is ``sat`` (violated) iff some input satisfies every assertion. Supported
assertions are ``and``/``or`` over linear ``<=``/``>=`` atoms. Atoms on one input variable and a
constant form the input box; atoms over outputs only become ``A y <= c`` rows. The whole formula is
brought to disjunctive normal form and grouped by input box: ``OR_k (x in box_k and OR_i A_ki y <= c_ki)``.
"""

from __future__ import annotations

import gzip
import itertools
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from robustmip.errors import DataError, VnnlibError
from robustmip.spec import OutputConjunction, OutputProperty, PropertyCase

_VAR = re.compile(r"^([XY])_(\d+)$")
_MAX_CONJUNCTIONS = 100_000
_MAX_DEPTH = 256
"""Deepest nesting of parentheses accepted (VNN-COMP files nest 4 levels; the parser recurses)."""
Linear = dict  # {("X"|"Y", index) or "const": coefficient}


def _tokens(text: str) -> list[str]:
    text = re.sub(r";[^\n]*", " ", text)
    return text.replace("(", " ( ").replace(")", " ) ").split()


def _parse_sexprs(tokens: list[str]) -> list:
    stack: list[list] = [[]]
    for tok in tokens:
        if tok == "(":
            if len(stack) > _MAX_DEPTH:
                raise VnnlibError(f"formula nested deeper than {_MAX_DEPTH} levels")
            stack.append([])
        elif tok == ")":
            if len(stack) == 1:
                raise VnnlibError("unbalanced ')' in VNN-LIB file")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise VnnlibError("unbalanced '(' in VNN-LIB file (truncated?)")
    return stack[0]


def _linear(term, declared: set[str]) -> Linear:
    """A linear term as ``{(kind, index): coef, "const": value}``."""
    if isinstance(term, str):
        match = _VAR.match(term)
        if match:
            if term not in declared:
                raise VnnlibError(f"variable {term} is used but not declared")
            return {(match.group(1), int(match.group(2))): 1.0}
        try:
            value = float(term)
        except ValueError:
            raise VnnlibError(f"unknown symbol {term!r}") from None
        if not np.isfinite(value):
            raise VnnlibError(f"constant {term!r} is not a finite number")
        return {"const": value}
    if not term:
        raise VnnlibError("empty term ()")
    op, args = term[0], [_linear(a, declared) for a in term[1:]]
    if op == "+":
        out: Linear = {}
        for a in args:
            for k, v in a.items():
                out[k] = out.get(k, 0.0) + v
        return out
    if op == "-":
        if len(args) == 1:
            return {k: -v for k, v in args[0].items()}
        out = dict(args[0])
        for a in args[1:]:
            for k, v in a.items():
                out[k] = out.get(k, 0.0) - v
        return out
    if op == "*":
        consts = [a for a in args if set(a) <= {"const"}]
        if len(args) - len(consts) > 1:
            raise VnnlibError(f"non-linear product {term}")
        factor = float(np.prod([a.get("const", 0.0) for a in consts]))
        rest = [a for a in args if not set(a) <= {"const"}]
        base = rest[0] if rest else {"const": 1.0}
        return {k: v * factor for k, v in base.items()}
    raise VnnlibError(f"unsupported operator {op!r} in term {term}")


def _dnf(expr, declared: set[str]) -> list[list[Linear]]:
    """Disjunctive normal form: a list of conjunctions of atoms ``L <= 0``."""
    if not isinstance(expr, list) or not expr:
        raise VnnlibError(f"expected a formula, got {expr!r}")
    op = expr[0]
    if op == "and":
        result: list[list[Linear]] = [[]]
        for sub in expr[1:]:
            result = [a + b for a, b in itertools.product(result, _dnf(sub, declared))]
            if len(result) > _MAX_CONJUNCTIONS:
                raise VnnlibError(f"formula expands to more than {_MAX_CONJUNCTIONS} conjunctions")
        return result
    if op == "or":
        return [conj for sub in expr[1:] for conj in _dnf(sub, declared)]
    if op in ("<=", ">="):
        if len(expr) != 3:
            raise VnnlibError(f"{op} needs two arguments: {expr}")
        left, right = _linear(expr[1], declared), _linear(expr[2], declared)
        if op == ">=":
            left, right = right, left
        atom = dict(left)
        for k, v in right.items():
            atom[k] = atom.get(k, 0.0) - v
        return [[atom]]
    raise VnnlibError(f"unsupported connective {op!r} (supported: and, or, <=, >=)")


def _case_from_conjunction(atoms: list[Linear], n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, OutputConjunction]:
    lower, upper = np.full(n_in, -np.inf), np.full(n_in, np.inf)
    rows, rhs = [], []
    for atom in atoms:
        const = atom.get("const", 0.0)
        terms = {k: v for k, v in atom.items() if k != "const" and v != 0.0}
        kinds = {k[0] for k in terms}
        if kinds == {"X"} and len(terms) == 1:
            ((_, i), coef), = terms.items()
            bound = -const / coef
            if coef > 0:
                upper[i] = min(upper[i], bound)
            else:
                lower[i] = max(lower[i], bound)
        elif kinds == {"Y"}:
            row = np.zeros(n_out)
            for (_, j), coef in terms.items():
                row[j] += coef
            rows.append(row)
            rhs.append(-const)
        elif not terms:
            if const > 0:
                rows.append(np.zeros(n_out))
                rhs.append(-1.0)
        else:
            raise VnnlibError("only single-input bounds and output-only linear constraints are supported")
    missing = np.flatnonzero(~np.isfinite(lower) | ~np.isfinite(upper))
    if missing.size:
        raise VnnlibError(f"input X_{missing[0]} has no finite lower and upper bound")
    if not rows:
        rows, rhs = [np.zeros(n_out)], [0.0]
    return lower, upper, (np.array(rows), np.array(rhs))


def parse_vnnlib(text: str) -> OutputProperty:
    """Parse VNN-LIB text into a :class:`OutputProperty`."""
    declared: set[str] = set()
    formulas = []
    for command in _parse_sexprs(_tokens(text)):
        if not isinstance(command, list) or not command:
            raise VnnlibError(f"unexpected top-level token {command!r}")
        if command[0] == "declare-const":
            if len(command) != 3 or not _VAR.match(str(command[1])):
                raise VnnlibError(f"declare-const must name X_i or Y_j: {command}")
            declared.add(command[1])
        elif command[0] == "assert":
            if len(command) != 2:
                raise VnnlibError(f"assert takes one formula: {command}")
            formulas.append(command[1])
        else:
            raise VnnlibError(f"unsupported command {command[0]!r}")
    n_in = 1 + max((int(v[2:]) for v in declared if v[0] == "X"), default=-1)
    n_out = 1 + max((int(v[2:]) for v in declared if v[0] == "Y"), default=-1)
    if n_in == 0 or n_out == 0:
        raise VnnlibError("the property declares no X_i or no Y_j")
    dnf = _dnf(["and", *formulas], declared)
    groups: dict[bytes, PropertyCase] = {}
    for atoms in dnf:
        lower, upper, conj = _case_from_conjunction(atoms, n_in, n_out)
        if (lower > upper).any():
            continue
        key = lower.tobytes() + upper.tobytes()
        groups.setdefault(key, PropertyCase(lower, upper, [])).conjunctions.append(conj)
    if not groups:
        raise VnnlibError("every input box of the property is empty (some X_i has a lower bound above its upper bound)")
    return OutputProperty(n_in, n_out, list(groups.values()))


def load_vnnlib(path: str | Path) -> OutputProperty:
    """Read and parse a ``.vnnlib`` (or ``.vnnlib.gz``) file."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"VNN-LIB path {path} is a directory, not a file")
    if not path.is_file():
        raise DataError(f"VNN-LIB file not found: {path}")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"cannot read VNN-LIB file {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise VnnlibError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from exc
    try:
        return parse_vnnlib(text)
    except VnnlibError as exc:
        raise VnnlibError(f"{path}: {exc}") from exc


VnnOutcome = Literal["sat", "unsat", "timeout", "unknown", "error"]


@dataclass
class VnnResult:
    """Outcome of one VNN-LIB instance, with the re-checked counterexample when ``sat``."""

    result: VnnOutcome
    seconds: float
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    reason: str = ""
    times: dict = field(default_factory=dict)

    def result_file_text(self) -> str:
        """The VNN-COMP result file: the verdict line, then ``((X_0 v) ... (Y_0 v) ...)`` when sat."""
        lines = [self.result]
        if self.result == "sat" and self.x is not None and self.y is not None:
            pairs = [f"(X_{i} {float(v)!r})" for i, v in enumerate(self.x)]
            pairs += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(self.y)]
            lines.append("(" + "\n".join(pairs) + ")")
        return "\n".join(lines) + "\n"
