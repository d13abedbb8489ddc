#!/usr/bin/env python3
"""Field lists of the types bagstream ships, from the `rosbags` package's type store.

Writes tests/reference/rosbags_fielddefs.json: for every `src/msg/defs/<pkg>/msg/<T>.msg`,
rosbags' own field list (ROS 2 Humble store) of `pkg/msg/T`:

  {"pkg/T": {"fields": [{"name", "type", "array", "len", "string_bound"}],
             "constants": [{"name", "type", "value"}]}}

`type` is the primitive as rosbags names it (`byte`, `char`, `float64`, ...) or the message
type as `pkg/T`; `array` is `scalar`, `fixed` (`len` elements) or `sequence` (`len` its
bound, 0 for none). rosidl's placeholder member of empty messages is left out.
tests/shipped_definitions.rs parses our texts and compares. Types a store lacks are listed
under "missing"; types whose Jazzy definition differs from Humble's under "jazzy_differs".

    python3 tests/reference/rosbags_fielddefs.py   # from the repository root
"""

import json
import os

from rosbags.typesys import Stores, get_typestore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFS = os.path.join(ROOT, "src", "msg", "defs")


def short(name):
    pkg, _, ty = name.split("/")
    return f"{pkg}/{ty}"


def field(name, desc):
    out = {"name": name, "array": "scalar", "len": 0, "string_bound": 0}
    if desc[0] in (3, 4):  # ARRAY, SEQUENCE
        out["array"] = "fixed" if desc[0] == 3 else "sequence"
        out["len"] = desc[1][1]
        desc = desc[1][0]
    if desc[0] == 1:  # BASE
        out["type"] = desc[1][0]
        out["string_bound"] = desc[1][1]
    else:
        out["type"] = short(desc[1])
    return out


def fielddefs(store, name):
    consts, fields = store.fielddefs[name]
    return {
        "fields": [
            field(n, d) for n, d in fields if n != "structure_needs_at_least_one_member"
        ],
        "constants": [{"name": n, "type": t, "value": v} for n, t, v in consts],
    }


def main():
    humble = get_typestore(Stores.ROS2_HUMBLE)
    jazzy = get_typestore(Stores.ROS2_JAZZY)
    names = []
    for pkg in sorted(os.listdir(DEFS)):
        for f in sorted(os.listdir(os.path.join(DEFS, pkg, "msg"))):
            names.append(f"{pkg}/{f[:-4]}")
    out = {"store": "ros2_humble", "types": {}, "missing": [], "jazzy_differs": []}
    for name in names:
        pkg, ty = name.split("/")
        full = f"{pkg}/msg/{ty}"
        store = humble if full in humble.fielddefs else jazzy
        if full not in store.fielddefs:
            out["missing"].append(name)
            continue
        out["types"][name] = fielddefs(store, full)
        if store is humble and full in jazzy.fielddefs:
            if fielddefs(jazzy, full) != out["types"][name]:
                out["jazzy_differs"].append(name)
        if store is jazzy:
            out["types"][name]["store"] = "ros2_jazzy"
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rosbags_fielddefs.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(
        f"{len(out['types'])} types -> {path}; missing {out['missing']}; "
        f"Jazzy differs: {out['jazzy_differs']}"
    )


if __name__ == "__main__":
    main()
