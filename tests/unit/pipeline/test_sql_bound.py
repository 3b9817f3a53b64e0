"""SQL only through bound parameters: no statement text is built from values.

The store is written with SQLAlchemy Core constructs, whose values are always bound.
This test reads the source (``ast``) of every package for the ways around that: a
``text()``, ``exec_driver_sql()``, ``literal_column()`` or DB-API ``execute()`` whose
SQL is an f-string, ``%``, ``+`` or ``.format()`` (directly, or through a local
variable assigned one).  The few statements that cannot take parameters (DDL, PRAGMA)
are listed in :data:`ALLOWED` with the reason they are safe.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("consumers", "pipeline", "models", "dashboards")
#: Calls whose first argument is SQL text.
SQL_CALLS = frozenset(
    {"text", "exec_driver_sql", "execute", "executemany", "executescript", "literal_column"}
)
#: (module path, function) -> why its built SQL is safe.
ALLOWED = {
    ("pipeline/store/writes.py", "_migrate"): (
        "ALTER TABLE ... ADD COLUMN: DDL takes no bound parameters; the table name is quoted "
        "by the dialect's identifier preparer and the column is rendered by CreateColumn "
        "from attnwatch's own table definition, never from input"
    ),
}


def _int_only(value: ast.FormattedValue) -> bool:
    """``{x:d}``: an integer, which cannot carry SQL."""
    spec = value.format_spec
    return (
        isinstance(spec, ast.JoinedStr)
        and len(spec.values) == 1
        and isinstance(spec.values[0], ast.Constant)
        and spec.values[0].value == "d"
    )


def built_from_strings(node: ast.expr) -> bool:
    """Whether ``node`` builds a string from parts at run time."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) and not _int_only(v) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"format", "format_map", "join", "replace"}
    )


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _assigned(scope: ast.AST) -> dict[str, list[ast.expr]]:
    """The values assigned to each local name in ``scope`` (``sql += x`` as ``sql + x``)."""
    values: dict[str, list[ast.expr]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.value is not None:
                values.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            built = ast.BinOp(node.target, ast.Add(), node.value)
            values.setdefault(node.target.id, []).append(built)
    return values


def _calls_by_function(tree: ast.Module) -> Iterator[tuple[str, ast.AST, ast.Call]]:
    """Every call with the innermost function around it (and that function's node)."""

    def visit(node: ast.AST, name: str, scope: ast.AST) -> Iterator[tuple[str, ast.AST, ast.Call]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(child, child.name, child)
                continue
            if isinstance(child, ast.Call):
                yield name, scope, child
            yield from visit(child, name, scope)

    yield from visit(tree, "<module>", tree)


def string_built_sql(path: Path, source: str) -> list[str]:
    """``path:line in function()`` of every SQL call whose SQL is built from strings."""
    relative = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    found = []
    assigned: dict[int, dict[str, list[ast.expr]]] = {}
    for function, scope, call in _calls_by_function(ast.parse(source)):
        if _called_name(call) not in SQL_CALLS or not call.args:
            continue
        sql = call.args[0]
        if isinstance(sql, ast.Call) and _called_name(sql) == "text" and sql.args:
            sql = sql.args[0]  # execute(text(...)): judge the text's argument
        local = assigned.setdefault(id(scope), _assigned(scope))
        built = built_from_strings(sql) or (
            isinstance(sql, ast.Name) and any(built_from_strings(v) for v in local.get(sql.id, []))
        )
        if built and (relative, function) not in ALLOWED:
            found.append(f"{relative}:{call.lineno} in {function}()")
    return sorted(set(found))


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_no_sql_is_built_from_strings():
    problems = [
        problem
        for path in source_files()
        for problem in string_built_sql(path, path.read_text(encoding="utf-8"))
    ]
    assert not problems, "SQL built from strings (use bound parameters):\n" + "\n".join(problems)


def test_the_scan_sees_the_source():
    # An empty scan would pass vacuously.
    assert len(source_files()) > 50
    assert any("store" in p.parts for p in source_files())


def test_the_check_catches_each_way_of_building_sql(tmp_path):
    bad = """
import sqlalchemy as sa
from sqlalchemy import text

def by_fstring(conn, user):
    conn.execute(sa.text(f"SELECT * FROM events WHERE author = '{user}'"))

def by_percent(conn, user):
    conn.execute(text("SELECT * FROM events WHERE author = '%s'" % user))

def by_format(conn, user):
    conn.exec_driver_sql("DELETE FROM events WHERE id = {}".format(user))

def by_concat(cursor, user):
    cursor.execute("SELECT " + user)

def by_variable(conn, user):
    sql = f"SELECT * FROM events WHERE id = {user}"
    conn.execute(sa.text(sql))

def by_augmented(conn, user):
    sql = "SELECT * FROM events WHERE id = "
    sql += user
    conn.execute(sa.text(sql))

def by_column(user):
    return sa.literal_column(f"'{user}'")
"""
    found = string_built_sql(tmp_path / "bad.py", bad)
    functions = {line.split(" in ")[1] for line in found}
    assert functions == {
        "by_fstring()",
        "by_percent()",
        "by_format()",
        "by_concat()",
        "by_variable()",
        "by_augmented()",
        "by_column()",
    }


def test_bound_parameters_and_integer_formats_pass(tmp_path):
    good = """
import sqlalchemy as sa

def bound(conn, user, ms):
    conn.execute(sa.text("SELECT * FROM events WHERE author = :user"), {"user": user})
    conn.execute(sa.select(sa.column("x")).where(sa.column("author") == user))
    conn.exec_driver_sql("BEGIN IMMEDIATE")
    conn.exec_driver_sql(f"PRAGMA busy_timeout={ms:d}")
"""
    assert string_built_sql(tmp_path / "good.py", good) == []
