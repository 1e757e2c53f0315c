#!/usr/bin/env python3
"""Fails if the modules of a crate import each other in a cycle.

Usage: module-cycles.py SRC_DIR...  (for example core/src driver/src)

A module is a source file. Module A depends on B when A names B through a
`crate::...`, `super::...` or child-module path (a `use` or an inline
path); a parent's `mod b;` declaration alone is not a dependency. Test modules (`#[cfg(test)]` and
after) are ignored: tests may reach anywhere.
"""
import os
import re
import sys


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3]
    parts = rel.split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def resolve(modules, base, names):
    """The deepest existing module named by `base` + a prefix of `names`."""
    best = None
    for length in range(len(names) + 1):
        candidate = base + tuple(names[:length])
        if candidate in modules:
            best = candidate
    return best


def dependencies(src, modules, path, module):
    text = open(path, encoding="utf-8").read()
    text = text.split("#[cfg(test)]")[0]
    text = re.sub(r"//[^\n]*", "", text)
    found = set()
    # Grouped imports: `use crate::{a::X, b};` and `use super::{x, y};`
    for root, group in re.findall(r"\b(crate|super)::\{([^}]*)\}", text):
        base = () if root == "crate" else module[:-1]
        for item in group.split(","):
            names = [n for n in item.strip().split("::") if n and n[0].islower() and n != "self"]
            target = resolve(modules, base, names)
            if target is not None:
                found.add(target)
    for root, chain in re.findall(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)", text):
        base = () if root == "crate" else module[:-1]
        names = chain.strip(":").split("::")
        target = resolve(modules, base, names)
        if target is not None:
            found.add(target)
    # A child module named by a relative path (`tcp::LinkContext`).
    for name in re.findall(r"(?<![:\w])([a-z_][a-z0-9_]*)::", text):
        child = module + (name,)
        if child in modules:
            found.add(child)
    found.discard(module)
    found.discard(())
    return found


def cycles(graph):
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def main():
    failed = False
    for src in sys.argv[1:]:
        paths = []
        for directory, _, files in os.walk(src):
            paths += [os.path.join(directory, f) for f in files if f.endswith(".rs")]
        modules = {module_of(src, p): p for p in paths}
        graph = {m: dependencies(src, modules, p, m) for m, p in modules.items()}
        found = cycles(graph)
        for component in found:
            names = ", ".join("::".join(m) for m in component)
            print(f"{src}: modules import each other in a cycle: {names}")
            failed = True
        if not found:
            print(f"{src}: {len(modules)} modules, no import cycles")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
