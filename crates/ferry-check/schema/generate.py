#!/usr/bin/env python3
"""Regenerates the compact schemas embedded in ferry-check.

kubernetes.json: from the PyPI package kubernetes-validate (strict OpenAPI-derived JSON
schemas of one pinned Kubernetes version). compose.json: from check-jsonschema's vendored
compose-spec schema. Descriptions are dropped and keys shortened (see src/schema.rs for
the format). Usage: python3 generate.py [K8S_VERSION]   (default below)
"""
import json
import os
import sys

K8S_VERSION = sys.argv[1] if len(sys.argv) > 1 else "1.34.0"
HERE = os.path.dirname(os.path.abspath(__file__))


DEFS = {}


def flatten(s):
    """Merges `allOf` parts into `s` when `unevaluatedProperties: false` closes the union
    (draft 2020-12), so the validator can treat it as one closed object."""
    if not (isinstance(s, dict) and s.get("unevaluatedProperties") is False and "allOf" in s):
        return s
    merged = dict(s)
    props = dict(s.get("properties", {}))
    patterns = dict(s.get("patternProperties", {}))
    for part in s["allOf"]:
        if isinstance(part.get("$ref"), str):
            part = DEFS.get(part["$ref"].rsplit("/", 1)[-1], {})
        part = flatten(part)
        props.update(part.get("properties", {}))
        patterns.update(part.get("patternProperties", {}))
    merged.pop("allOf")
    merged["properties"] = props
    merged["patternProperties"] = patterns
    merged["additionalProperties"] = False
    merged.setdefault("type", "object")
    return merged


def compact(s):
    if not isinstance(s, dict):
        return {}
    s = flatten(s)
    out = {}
    if isinstance(s.get("$ref"), str):
        out["ref"] = s["$ref"].rsplit("/", 1)[-1]
    t = s.get("type")
    if t is not None:
        out["t"] = t if isinstance(t, list) else [t]
    if "properties" in s:
        out["p"] = {k: compact(v) for k, v in s["properties"].items()}
    if s.get("required"):
        out["r"] = s["required"]
    ap = s.get("additionalProperties")
    if ap is False:
        out["ap"] = False
    elif isinstance(ap, dict) and ap:
        out["ap"] = compact(ap)
    if "patternProperties" in s:
        out["pp"] = {k: compact(v) for k, v in s["patternProperties"].items()}
    if isinstance(s.get("items"), dict):
        out["i"] = compact(s["items"])
    if "enum" in s:
        out["e"] = s["enum"]
    for k in ("oneOf", "anyOf"):
        if k in s:
            out.setdefault("any", []).extend(compact(x) for x in s[k])
    if "allOf" in s:
        out["all"] = [compact(x) for x in s["allOf"]]
    if s.get("format") in ("duration", "int-or-string"):
        out["f"] = s["format"]
    return out


def kubernetes():
    import kubernetes_validate

    base = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema",
                        f"v{K8S_VERSION}-local-strict")
    defs = json.load(open(os.path.join(base, "_definitions.json")))["$defs"]
    kinds = {}
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            if gvk["kind"].endswith("List"):
                continue
            api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            kinds[f"{api}/{gvk['kind']}"] = name
    keep, todo = set(), list(set(kinds.values()))
    while todo:
        n = todo.pop()
        if n in keep:
            continue
        keep.add(n)
        stack = [defs[n]]
        while stack:
            x = stack.pop()
            if isinstance(x, dict):
                if isinstance(x.get("$ref"), str):
                    todo.append(x["$ref"].rsplit("/", 1)[-1])
                stack.extend(x.values())
            elif isinstance(x, list):
                stack.extend(x)
    out = {"version": K8S_VERSION, "kinds": kinds,
           "defs": {n: compact(defs[n]) for n in sorted(keep)}}
    with open(os.path.join(HERE, "kubernetes.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"), sort_keys=True)


def compose():
    import check_jsonschema

    path = os.path.join(os.path.dirname(check_jsonschema.__file__), "builtin_schemas", "vendor",
                        "compose-spec.json")
    s = json.load(open(path))
    DEFS.update(s.get("$defs", {}))
    root = compact(s)
    out = {"root": root, "defs": {k: compact(v) for k, v in s.get("$defs", s.get("definitions", {})).items()}}
    with open(os.path.join(HERE, "compose.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"), sort_keys=True)


kubernetes()
compose()
