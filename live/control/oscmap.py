"""The OSC address map, for `beatcanvas osc-map`: a plain JSON map and a TouchOSC-style layout.

Both are made from the knob table and the command table, so they always match what the server
accepts.
"""

from __future__ import annotations

from typing import Any

from live.control.knobs import COMMANDS, Knob, knob_table
from live.control.osc import DEFAULT_PORT, QUERIES
from live.outputs.osc_out import OUT, OUT_ADDRESSES

OSC_TYPES = {"float": "f", "int": "i", "bool": "i (0/1)", "choice": "s (or i: index)", "text": "s"}


def knob_range(k: Knob) -> str:
    if k.kind == "choice":
        return " | ".join(k.choices)
    if k.kind == "bool":
        return "0 | 1"
    if k.lo is None or k.hi is None:
        return "text"
    low = f">{k.lo}" if k.lo_open else f"{k.lo}"
    return f"{low}..{k.hi}" + (f" step {k.step}" if k.step else "")


def address_map() -> dict[str, Any]:
    """Everything beatcanvas answers to and sends, as plain JSON-ready data."""
    knobs = [
        {"address": k.address, "section": k.section, "key": k.key, "type": k.kind, "osc_type": OSC_TYPES[k.kind],
         "min": k.lo, "max": k.hi, "min_exclusive": k.lo_open, "step": k.step, "choices": list(k.choices),
         "default": k.default, "description": k.description}
        for k in knob_table().values()
    ]
    commands = [{"address": a, "argument": c.arg, "description": c.help} for a, c in COMMANDS.items()]
    queries = [{"address": a, "description": d} for a, d in QUERIES.items()]
    out = [{"address": f"{OUT}/{a}", "osc_type": t, "description": d} for a, (t, d) in OUT_ADDRESSES.items()]
    return {"format": "beatcanvas-osc-map", "version": 1, "default_port": DEFAULT_PORT,
            "knobs": knobs, "commands": commands, "queries": queries, "out": out}


def _control(k: Knob) -> dict[str, Any]:
    base = {"name": k.key, "osc": k.address, "label": k.key.replace("_", " ")}
    if k.kind == "bool":
        return {**base, "type": "toggle", "value": int(bool(k.default))}
    if k.kind == "choice":
        return {**base, "type": "radio", "values": list(k.choices), "value": k.choices.index(k.default)}
    if k.kind == "text":
        return {**base, "type": "text", "value": k.default or ""}
    return {**base, "type": "fader", "min": k.lo, "max": k.hi, "value": k.default,
            "integer": k.kind == "int"}


def touchosc_layout() -> dict[str, Any]:
    """One page per preset section plus a page of performance buttons: the controls to build in
    TouchOSC (or Open Stage Control), each with the OSC message it must send. Faders send the
    knob's own range; radios send the choice index; buttons send 1 on press, 0 on release."""
    pages: dict[str, list[dict[str, Any]]] = {}
    for k in knob_table().values():
        pages.setdefault(k.section, []).append(_control(k))
    buttons = [
        {"name": c.name, "osc": a, "type": "toggle" if c.arg == "toggle" else "button", "label": c.name.replace("_", " ")}
        for a, c in COMMANDS.items() if c.arg in ("none", "toggle")
    ]
    return {"format": "beatcanvas-touchosc-layout", "version": 1, "port": DEFAULT_PORT,
            "pages": [{"name": "perform", "controls": buttons}]
            + [{"name": name, "controls": controls} for name, controls in pages.items()]}
