"""Check Python sensor entry points without running them (``sensorctl
reload`` and ``sensorctl sensor check``).

stdin: a JSON list of ``{"file": PATH, "class": NAME}``; stdout: a JSON
list of problems ``{"file", "class", "line", "message", "did_you_mean"}``.
Each file is read, parsed and byte-compiled (``compile``: never executed,
nothing imported), and ``NAME`` must be bound at module level: a class
statement, an assignment or an import, also inside module-level ``if`` /
``try`` / ``with`` blocks. A module with ``from x import *`` may bind
anything, so a missing name is not reported for it.
"""

import ast
import difflib
import json
import sys


def _bound(body, names, classes):
    """Names bound by module-level statements; False after a star import."""
    certain = True
    for node in body:
        if isinstance(node, ast.ClassDef):
            classes.append(node.name)
            names.add(node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    certain = False
                else:
                    names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
        blocks = []
        if isinstance(node, (ast.If, ast.For, ast.While, ast.With)):
            blocks = [node.body, getattr(node, "orelse", [])]
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            blocks = [node.body, node.orelse, node.finalbody] + [h.body for h in node.handlers]
        for b in blocks:
            certain = _bound(b, names, classes) and certain
    return certain


def check(path, cls):
    problem = {"file": path, "class": cls, "line": None, "did_you_mean": []}
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as exc:
        problem["message"] = "cannot read the entry point: %s" % (exc.strerror or exc,)
        return problem
    try:
        tree = compile(source, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        # Byte-compile too: some errors ('return' outside a function...)
        # only show there.
        compile(tree, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        problem["line"] = exc.lineno
        text = (exc.text or "").strip()
        problem["message"] = "syntax error: %s%s" % (exc.msg, (": %s" % text) if text else "")
        return problem
    except ValueError as exc:  # e.g. null bytes in the source
        problem["message"] = "cannot compile the entry point: %s" % (exc,)
        return problem
    names, classes = set(), []
    certain = _bound(tree.body, names, classes)
    if cls in names or not certain:
        return None
    pool = classes or sorted(names)
    close = difflib.get_close_matches(cls, pool, n=3, cutoff=0.6)
    close += [c for c in pool if c.lower() == cls.lower() and c not in close]
    problem["did_you_mean"] = close
    if classes:
        problem["message"] = "class '%s' is not defined at module level (classes there: %s)" % (
            cls, ", ".join(classes))
    else:
        problem["message"] = "class '%s' is not defined at module level (it defines no class)" % (cls,)
    return problem


def main():
    items = json.load(sys.stdin)
    out = []
    for item in items:
        p = check(item["file"], item["class"])
        if p is not None:
            out.append(p)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
