"""Load contract terms from YAML with errors that point at the file, line and field.

Why line numbers: the person who edits a terms file is a commissioner's analyst, not a Python
developer. "contracts/x.yaml:31: stages[1].at_risk_share: Input should be less than or equal
to 1" is something they can fix; a Pydantic traceback is not.

``--set name=value`` overrides are applied to the parsed YAML before validation, so a what-if is
checked exactly like the file itself, and every override is recorded with the loaded terms (and
in their fingerprint), so results always say which terms produced them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from carecontract.errors import UserError
from carecontract.terms import model
from carecontract.terms.model import Contract, _suggest
from carecontract.terms.parameters import PARAMETERS


class TermsError(UserError):
    """Invalid terms: one line per problem, each naming file, line and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Terms:
    """A validated contract and where it came from."""

    contract: Contract
    source: str
    overrides: tuple[str, ...] = field(default=())

    @property
    def fingerprint(self) -> str:
        """Identifies the terms that produced a result: the validated content plus the what-ifs."""
        canonical = json.dumps(self.contract.model_dump(mode="json"), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def provenance(self) -> dict[str, Any]:
        return {
            "terms": self.source,
            "name": self.contract.name,
            "fingerprint": self.fingerprint,
            "overrides": list(self.overrides),
        }


class _Loader(yaml.SafeLoader):
    """SafeLoader whose impossible dates (2017-13-01) are YAML errors with a line, not a crash."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a real date ({exc})", node.start_mark
            ) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _yaml_value(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


# -- YAML with line numbers --------------------------------------------------------------------
def _line_map(node: yaml.Node, path: tuple[str, ...] = (), out: dict | None = None) -> dict[tuple[str, ...], int]:
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            plain = key.value if key.tag == "tag:yaml.org,2002:str" else _yaml_value(yaml.serialize(key))
            child = (*path, str(plain))
            out[child] = key.start_mark.line + 1
            _line_map(value, child, out)
            out[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, (*path, str(i)), out)
    return out


def _parse(text: str, source: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = _yaml_value(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise TermsError([f"{source}:{line}: not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if not isinstance(data, dict):
        raise TermsError([f"{source}:1: a terms file is a mapping of keys (name, commissioners, term, ...)"])
    return data, _line_map(node) if node else {}


def _field_name(path: tuple[str, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if part.isdigit() and out else (f".{part}" if out else part)
    return out or "(top level)"


_ALL_FIELDS = sorted(
    {
        name
        for m in vars(model).values()
        if isinstance(m, type) and issubclass(m, BaseModel)
        for name in getattr(m, "model_fields", {})
    }
)


def _explain(
    error: dict[str, Any], source: str, lines: dict[tuple[str, ...], int], overridden: dict[tuple[str, ...], str]
) -> str:
    path: tuple[str, ...] = ()
    named: tuple[str, ...] = ()  # the field as the user would name it, even where the file lacks it
    previous = None
    for part in error["loc"]:
        is_tag = str(previous).isdigit() and part in ("fee", "outcomes")  # discriminated-union tag, not a key
        previous = part
        if is_tag:
            continue
        named = (*named, str(part))
        candidate = (*path, str(part))
        if candidate in lines:
            path = candidate
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        wrong = str(error["loc"][-1])
        path = (*path[:-1], wrong) if path and path[-1] == wrong else path
        if wrong in _ALL_FIELDS:  # a real key, in the wrong place: suggesting its own spelling would not help
            message = f"{wrong!r} is not a key of this part of the terms"
        else:
            message = f"unknown key {wrong!r}{_suggest(wrong, _ALL_FIELDS).split(' (valid')[0]}"
    elif error["type"] not in ("value_error", "assertion_error") and "input" in error:
        shown = error["input"]
        if not isinstance(shown, dict | list):
            message += f" (got {shown!r})"
    name = _field_name(named if len(named) > len(path) else path)
    blamed = _override_of(named, overridden)
    if blamed is not None:  # the value came from the command line, not from the file's line
        return f"--set {blamed}: {name}: {message}"
    within = [o for where, o in overridden.items() if where[: len(named)] == named]
    if within:  # a check across fields of which a what-if changed one: name the file's line and the what-if
        return f"{source}:{lines.get(path, 1)}: {name}: {message} (with --set {', --set '.join(within)})"
    return f"{source}:{lines.get(path, 1)}: {name}: {message}"


def _override_of(location: tuple[str, ...], overridden: dict[tuple[str, ...], str]) -> str | None:
    """The ``--set`` that put the value at ``location`` there (its own path or one above it), if any."""
    for path, override in overridden.items():
        if location[: len(path)] == path:
            return override
    return None


# -- overrides ---------------------------------------------------------------------------------
def _apply_override(data: dict[str, Any], override: str, source: str) -> tuple[str, ...]:
    """Apply one ``name=value`` to the parsed YAML; return the path it set (to blame it for errors)."""
    name, sep, raw = override.partition("=")
    name = name.strip()
    if not sep or not name:
        raise TermsError([f"--set {override!r}: expected name=value, e.g. --set demand_growth=0.02"])
    try:
        value = _yaml_value(raw)
    except yaml.YAMLError as exc:
        raise TermsError([f"--set {name}: cannot read the value {raw!r} ({getattr(exc, 'problem', exc)})"]) from None
    if "." not in name:
        if name not in PARAMETERS:
            raise TermsError([f"--set {name}: unknown parameter{_suggest(name, PARAMETERS)}"])
        start = data.get("term", {}).get("start")
        first = start.year if isinstance(start, date) else 1900
        data.setdefault("parameters", {})[name] = {first: value}  # constant over the whole term
        return ("parameters", name)
    target: Any = data
    parts = name.split(".")
    for part in parts[:-1]:
        key: Any = int(part) if isinstance(target, list) and part.isdigit() else part
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            raise TermsError([f"--set {name}: {source} has no {part!r} there"]) from None
    last: Any = int(parts[-1]) if isinstance(target, list) and parts[-1].isdigit() else parts[-1]
    if isinstance(target, dict) and last not in target and isinstance(last, str) and last.isdigit():
        last = int(last)
    target[last] = value
    return tuple(parts)


# -- public API --------------------------------------------------------------------------------
def load_terms(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Terms:
    """Read, override and validate a terms file; raise :class:`TermsError` with every problem."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TermsError([f"{source}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TermsError([f"{source}: cannot read ({exc})"]) from None
    data, lines = _parse(text, source)
    overridden = {_apply_override(data, override, source): override for override in overrides}
    try:
        contract = Contract.model_validate(data)
    except ValidationError as exc:
        problems = [_explain(e, source, lines, overridden) for e in exc.errors()]
        raise TermsError(sorted(problems, key=_problem_order(source))) from None
    return Terms(contract, source, tuple(overrides))


def _problem_order(source: str) -> Any:
    """Problems in the command line's (``--set``) first, then by line of the file."""

    def key(problem: str) -> tuple[int, int]:
        if problem.startswith("--set "):
            return (0, 0)
        return (1, int(problem[len(source) + 1 :].split(":", 1)[0]))

    return key


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _reporting(model: Any, dumped: dict[str, Any]) -> dict[str, Any]:
    """Put back what model_dump leaves out to keep the fingerprint (each ``clause`` and ``kind``)."""
    for name in type(model).model_fields:
        value, inner = getattr(model, name), dumped.get(name)
        if name in ("clause", "kind"):
            if value is not None:
                dumped[name] = value
        elif isinstance(value, BaseModel) and isinstance(inner, dict):
            _reporting(value, inner)
        elif isinstance(value, list) and isinstance(inner, list):
            for item, item_dumped in zip(value, inner, strict=True):
                if isinstance(item, BaseModel):
                    _reporting(item, item_dumped)
    return dumped


def dump_terms(contract: Contract) -> str:
    """YAML for a contract; loading it again gives an identical contract (clauses and kinds included)."""
    dumped = _reporting(contract, contract.model_dump(mode="python"))
    for name, clause in contract.parameter_clauses.items():
        dumped["parameters"][name]["clause"] = clause
    return yaml.safe_dump(_plain(dumped), sort_keys=False, allow_unicode=True)
