"""Preset and playlist errors as one line a performer can act on: the file, the line and the key, and
the nearest valid key for a typo. tomllib keeps no positions, so lines are found by scanning the text."""

from __future__ import annotations

import difflib
import re
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from engine.errors import BeatcanvasError


class PresetError(BeatcanvasError):
    """A preset that does not parse or validate; `file`, `line` and `key` say where."""

    def __init__(self, message: str, file: str = "", line: int | None = None, key: str = "") -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.key = key


# --- error messages ------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_KEYLINE = re.compile(r"^\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")


def _split_key(key: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in key.split("."))


def find_key_line(text: str, loc: tuple[str | int, ...]) -> int | None:
    """1-based line where the dotted key `loc` (or its longest defined prefix) is set.

    tomllib keeps no positions, so scan the text: track the current [table] (counting
    [[array]] tables, so `("entry", 2, "preset")` finds the third entry), match `key = ...` lines
    (dotted keys included) and skip multi-line string bodies."""
    want = tuple(str(p) for p in loc)
    best: tuple[int, int] | None = None  # (prefix length, line)
    table: tuple[str, ...] = ()
    arrays: dict[tuple[str, ...], int] = {}
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(1))
            if line.lstrip().startswith("[["):
                arrays[table] = arrays.get(table, -1) + 1
                table = table + (str(arrays[table]),)
            full = table
        else:
            m = _KEYLINE.match(line)
            if not m:
                continue
            full = table + _split_key(m.group(1))
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_multiline = quote
        n = 0
        while n < min(len(full), len(want)) and full[n] == want[n]:
            n += 1
        if n == len(full) and n > 0 and (best is None or n > best[0]):
            best = (n, number)
            if n == len(want):
                break
    return best[1] if best else None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation like `Model`, `list[Model]` or `Model | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _owner(root: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model whose field `loc[-1]` is: walk `loc` from `root`, skipping list indices."""
    owner: type[BaseModel] | None = root
    for part in loc[:-1]:
        if isinstance(part, int) or owner is None:
            continue
        field = owner.model_fields.get(part)
        owner = _model_of(field.annotation) if field else None
    return owner


def _valid_keys(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    owner = _owner(root, loc)
    return list(owner.model_fields) if owner else []


def _allowed_range(root: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    """'allowed 1..8' from the field's own constraints, so the message shows the whole range."""
    owner = _owner(root, loc)
    field = owner.model_fields.get(str(loc[-1])) if owner else None
    if field is None:
        return ""
    lo = hi = step = None
    lo_open = hi_open = False
    for m in field.metadata:
        for attr in ("ge", "gt", "le", "lt", "multiple_of"):
            v = getattr(m, attr, None)
            if v is None:
                continue
            if attr in ("ge", "gt"):
                lo, lo_open = v, attr == "gt"
            elif attr in ("le", "lt"):
                hi, hi_open = v, attr == "lt"
            else:
                step = v
    if lo is None and hi is None:
        return ""
    low = f"more than {lo}" if lo_open else f"{lo}"
    text = f"allowed {low} up to {hi}" if lo_open or hi_open else f"allowed {lo}..{hi}"
    return text + (f" in steps of {step}" if step else "")


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _toml_kind(value: object) -> str:
    """What TOML calls the value someone wrote: 'a list', 'a table', 'a number'…"""
    kinds = ((bool, "true/false"), (int, "a number"), (float, "a number"), (list, "a list"), (dict, "a table"))
    return next((name for t, name in kinds if isinstance(value, t)), f"a {type(value).__name__}")


def _unwrap_hint(key: str, value: object) -> str:
    """`model = ["sdxl-turbo"]` → '; write model = "sdxl-turbo"' (one string in brackets: drop them)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return f'; write {key.rpartition(".")[2]} = "{value[0]}"'
    return ""


def _describe(err: ErrorDetails, root: type[BaseModel]) -> str:
    loc = tuple(err["loc"])
    key = _dotted(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        valid = _valid_keys(root, loc)
        bad = str(loc[-1])
        close = difflib.get_close_matches(bad, valid, n=1, cutoff=0.5)
        table = f"[{_dotted(loc[:-1])}]" if len(loc) > 1 else "the top level"
        hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(valid)}"
        what = "section" if isinstance(err.get("input"), dict) else "key"
        if what == "section" and close:
            hint = f"did you mean [{close[0]}]?"
        return f"unknown {what} '{bad}' in {table}; {hint}"
    value = err.get("input")
    shown = f" = {value!r}" if not isinstance(value, dict) else ""
    if kind == "string_type" or (kind == "literal_error" and not isinstance(value, str)):
        return f"{key}{shown}: expected a string, got {_toml_kind(value)}{_unwrap_hint(key, value)}"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"{key}{shown}: must be one of {', '.join(repr(o) for o in options)}{hint}"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of"}:
        allowed = _allowed_range(root, loc) or err["msg"].lower().replace("input should be ", "must be ")
        return f"{key}{shown} is out of range: {allowed}"
    if kind == "value_error" or kind == "assertion_error":
        msg = re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
        return f"{key}: {msg}" if key else msg
    if kind == "missing":
        return f"{key}: required but missing"
    # Wrong types and the rest: pydantic's wording is already clear ("Input should be a valid integer").
    return f"{key}{shown}: wrong type or value: {err['msg'].replace('Input should be', 'should be')}"


def validation_error(e: ValidationError, text: str, source: str, root: type[BaseModel]) -> PresetError:
    """One-line `PresetError` for a pydantic error on TOML `text` read from `source` (validated as
    `root`); the first problem leads, with file and line; the rest follow in brackets."""
    parts: list[str] = []
    first_line: int | None = None
    first_key = ""
    # A typo'd key also makes the real key "missing": lead with the typo, it explains both.
    errors = sorted(e.errors(include_url=False), key=lambda err: err["type"] != "extra_forbidden")
    for i, err in enumerate(errors):
        loc = tuple(err["loc"])
        line = find_key_line(text, loc) if loc else None
        where = f"line {line}: " if line else ""
        parts.append(where + _describe(err, root))
        if i == 0:
            first_line, first_key = line, _dotted(loc)
    message = f"{source}, {parts[0]}" if parts else source
    if len(parts) > 1:
        message += f" (and {len(parts) - 1} more: " + "; ".join(parts[1:]) + ")"
    return PresetError(message, file=source, line=first_line, key=first_key)
