"""Security: nothing an agent sends can run code or reach SQL as code, and credentials never
show (issue 8, "Security").

* SQL: an AST analysis of every ``execute``/``executemany``/``executescript`` call in the package
  proves the SQL text is built only from string literals (constants, literal fragments joined or
  formatted together, helper functions that return such text); values travel as bound
  parameters. A value from anywhere else formatted into SQL fails the test, with its location.
* No eval: no ``eval``/``exec``/``compile``/``pickle``/``marshal``/``yaml.load``/``os.system``/
  ``shell=True`` anywhere in the package, and no dynamic import of a computed name.
* Browser side: ``tests/widgets/test_js_sources.py`` bans ``innerHTML`` and friends in ``js/``;
  here the bundles actually shipped (``codeur_widgets/static``, vendored libraries included) are
  scanned for markup sinks, ``eval`` and ``javascript:`` URLs; ``tests/e2e/test_xss_lab.py``
  shows hostile text in a real browser.
* Credentials: property tests over random passwords (in the URL's user info and in
  ``?password=``) check every repr, ``health()``, error message and log record of the Redis
  source and emitter.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "codeur_widgets"
SQL_METHODS = {"execute", "executemany", "executescript"}


# -- SQL: literal-only statements ------------------------------------------------------------------
@dataclass
class Module:
    """One parsed module with the lookups the analysis needs."""

    path: Path
    tree: ast.Module
    functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = field(default_factory=dict)
    parents: dict[int, ast.AST] = field(default_factory=dict)

    @classmethod
    def parse(cls, path: Path, source: str | None = None) -> Module:
        tree = ast.parse(source if source is not None else path.read_text(), str(path))
        module = cls(path, tree)
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                module.parents[id(child)] = node
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                module.functions.setdefault(node.name, []).append(node)
        return module

    def scope(self, node: ast.AST) -> ast.AST:
        """The function (or the module) a node belongs to."""
        current = self.parents.get(id(node))
        while current is not None:
            if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return current
            current = self.parents.get(id(current))
        return self.tree


class LiteralSQL:
    """Decides whether an expression can only evaluate to text built from string literals.

    Conservative: anything it cannot follow (an attribute, a call to an unknown function, a
    value from a parameter that some caller fills with a non-literal) is *not* literal.
    """

    SAFE_METHODS = frozenset({"join", "replace", "format", "strip", "upper", "lower", "split"})

    def __init__(self, module: Module) -> None:
        self.m = module
        self._busy: set[tuple[int, int]] = set()

    def __call__(self, expr: ast.AST | None, scope: ast.AST) -> bool:
        if expr is None:
            return False
        key = (id(expr), id(scope))
        if key in self._busy:
            return True  # co-inductive: a cycle adds no non-literal source
        self._busy.add(key)
        try:
            return self._literal(expr, scope)
        finally:
            self._busy.discard(key)

    def _literal(self, e: ast.AST, scope: ast.AST) -> bool:
        if isinstance(e, ast.Constant):
            return True
        if isinstance(e, ast.JoinedStr):
            return all(self(v.value, scope) for v in e.values if isinstance(v, ast.FormattedValue))
        if isinstance(e, ast.BinOp):
            if isinstance(e.op, ast.Mult):  # text * count: the count cannot inject text
                return self(e.left, scope) or self(e.right, scope)
            return self(e.left, scope) and self(e.right, scope)
        if isinstance(e, ast.BoolOp):
            return all(self(v, scope) for v in e.values)
        if isinstance(e, ast.IfExp):
            return self(e.body, scope) and self(e.orelse, scope)
        if isinstance(e, (ast.Tuple, ast.List)):
            return all(self(v, scope) for v in e.elts)
        if isinstance(e, ast.Subscript):
            return self(e.value, scope)
        if isinstance(e, ast.Call):
            return self._call(e, scope)
        if isinstance(e, ast.Name):
            return self._name(e.id, scope)
        return False

    def _call(self, call: ast.Call, scope: ast.AST) -> bool:
        func = call.func
        args = [*call.args, *(k.value for k in call.keywords)]
        if isinstance(func, ast.Attribute) and func.attr in self.SAFE_METHODS:
            return self(func.value, scope) and all(self(a, scope) for a in args)
        name = (
            func.id
            if isinstance(func, ast.Name)
            else func.attr
            if isinstance(func, ast.Attribute) and _is_self(func.value)
            else None
        )
        if name is None or name not in self.m.functions:
            return False
        return all(self._returns(fn) for fn in self.m.functions[name])

    def _returns(
        self, fn: ast.FunctionDef | ast.AsyncFunctionDef, index: int | None = None
    ) -> bool:
        found = False
        for node in ast.walk(fn):
            if isinstance(node, ast.Return) and self.m.scope(node) is fn:
                found = True
                value = node.value
                if index is not None and isinstance(value, ast.Tuple):
                    if index >= len(value.elts):
                        return False
                    value = value.elts[index]
                elif index is not None:
                    return False
                if not self(value, fn):
                    return False
        return found

    def _name(self, name: str, scope: ast.AST) -> bool:
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            params = [a.arg for a in (*scope.args.posonlyargs, *scope.args.args)]
            params += [a.arg for a in scope.args.kwonlyargs]
            if name in params:
                return self._parameter(scope, name, params)
        bindings = list(self._bindings(name, scope))
        if not bindings and scope is not self.m.tree:
            return self._name(name, self.m.tree)  # a module-level name
        return bool(bindings) and all(bindings)

    def _bindings(self, name: str, scope: ast.AST) -> Iterator[bool]:
        for node in ast.walk(scope):
            if self.m.scope(node) is not scope:
                continue  # a binding of the same name in a nested function
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id == name:
                        yield self(node.value, scope)
                    elif isinstance(target, ast.Tuple):
                        for i, elt in enumerate(target.elts):
                            if isinstance(elt, ast.Name) and elt.id == name:
                                yield self._unpacked(node.value, i, scope)
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                target = node.target
                if isinstance(target, ast.Name) and target.id == name:
                    yield self(node.iter, scope)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("append", "extend", "insert")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == name
            ):
                yield all(self(a, scope) for a in node.args[-1:])
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    var = item.optional_vars
                    if isinstance(var, ast.Name) and var.id == name:
                        yield False

    def _unpacked(self, value: ast.AST, index: int, scope: ast.AST) -> bool:
        if isinstance(value, ast.Tuple):
            return index < len(value.elts) and self(value.elts[index], scope)
        if isinstance(value, ast.Call):
            func = value.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute) and _is_self(func.value)
                else None
            )
            if name and name in self.m.functions:
                return all(self._returns(fn, index) for fn in self.m.functions[name])
        return False

    def _parameter(
        self, fn: ast.FunctionDef | ast.AsyncFunctionDef, name: str, params: list[str]
    ) -> bool:
        """A parameter is literal when every call of the function in the module passes one."""
        position = params.index(name)
        method = bool(params) and params[0] in ("self", "cls")
        calls = [
            node
            for node in ast.walk(self.m.tree)
            if isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == fn.name)
                or (isinstance(node.func, ast.Attribute) and node.func.attr == fn.name)
            )
        ]
        if not calls:
            return False  # public entry point: callers are unknown
        for call in calls:
            where = self.m.scope(call)
            arg: ast.AST | None = None
            for kw in call.keywords:
                if kw.arg == name:
                    arg = kw.value
            index = position - 1 if method else position
            if arg is None and 0 <= index < len(call.args):
                arg = call.args[index]
            if arg is None:
                default = _default(fn, name)
                if default is None or not self(default, fn):
                    return False
                continue
            if not self(arg, where):
                return False
        return True


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _default(fn: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> ast.AST | None:
    args = [*fn.args.posonlyargs, *fn.args.args]
    names = [a.arg for a in args][len(args) - len(fn.args.defaults) :]
    defaults = dict(zip(names, fn.args.defaults, strict=True))
    if fn.args.defaults and name in defaults:
        return defaults[name]
    for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults, strict=True):
        if a.arg == name:
            return d
    return None


def sql_calls(module: Module) -> Iterator[ast.Call]:
    for node in ast.walk(module.tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_METHODS
            and node.args  # a redis pipeline's execute() takes none
        ):
            yield node


def unsafe_sql(module: Module) -> list[str]:
    literal = LiteralSQL(module)
    return [
        f"{module.path.name}:{call.lineno}: {ast.unparse(call.args[0])[:80]}"
        for call in sql_calls(module)
        if not literal(call.args[0], module.scope(call))
    ]


def package_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "static" not in p.parts)


def test_every_sql_statement_in_the_package_is_built_from_literals_only() -> None:
    """Injected: nothing; the package's source. Must hold: the SQL text of every
    ``execute``/``executemany``/``executescript`` call is built only from string literals, so
    values (event data, agent names, search text) can only travel as bound parameters."""
    problems: list[str] = []
    calls = 0
    for path in package_modules():
        module = Module.parse(path)
        calls += len(list(sql_calls(module)))
        problems += unsafe_sql(module)
    assert not problems, "SQL built from non-literal values:\n" + "\n".join(problems)
    if (PACKAGE / "core" / "history.py").exists():
        assert calls >= 5, "the history module's SQL calls were found and checked"


FLAGGED = {
    "f-string with a value": """
def save(conn, event):
    conn.execute(f"INSERT INTO events VALUES ('{event.agent}')")
""",
    "% formatting": """
def save(conn, agent):
    conn.execute("SELECT * FROM events WHERE agent = '%s'" % agent)
save(None, input())
""",
    ".format": """
def save(conn, agent):
    conn.execute("DELETE FROM events WHERE agent = {}".format(agent))
""",
    "concatenation": """
def find(conn, text):
    sql = "SELECT * FROM events WHERE data LIKE '%" + text + "%'"
    conn.execute(sql)
""",
    "helper fed with data": """
def where(clause):
    return " WHERE " + clause
def find(conn, event):
    conn.execute("SELECT 1" + where(event.data["x"]), ())
""",
    "parameter passed data by a caller": """
class H:
    def _delete(self, where):
        self.conn.execute(f"DELETE FROM events WHERE {where}")
    def purge(self, event):
        self._delete("ts < ?")
        self._delete(event.agent)
""",
    "list of clauses with a value": """
def find(conn, agent):
    clauses = []
    clauses.append("agent = '" + agent + "'")
    conn.execute("SELECT 1 WHERE " + " AND ".join(clauses))
""",
}

ACCEPTED = """
_INSERT = "INSERT INTO events (a, b) VALUES (?, ?)"
COLUMNS = "a, b"
def _insert_sql(rows):
    return _INSERT + ", (?, ?)" * (rows - 1)
def _where(agent, since):
    clauses = []
    params = []
    if agent is not None:
        clauses.append("agent = ?")
        params.append(agent)
    if since is not None:
        clauses.append("ts >= ?")
        params.append(since)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
class H:
    def _delete(self, where, params):
        self.conn.execute(f"DELETE FROM t WHERE seq IN (SELECT seq FROM t WHERE {where})", params)
    def purge(self, cutoff):
        self._delete("ts < ?", (cutoff,))
        self._delete("1", ())
    def query(self, agent, since):
        where, params = _where(agent, since)
        self.conn.execute(f"SELECT {COLUMNS} FROM t{where}", params)
        self.conn.executemany(_insert_sql(3), [])
        for statement in _INSERT.split(";"):
            self.conn.execute(statement)
"""


@pytest.mark.parametrize("name", sorted(FLAGGED))
def test_the_sql_analysis_flags_values_formatted_into_sql(name: str) -> None:
    """Injected: small modules that format a value into SQL in each usual way. Must hold: the
    analysis flags every one (so the package check above can fail)."""
    module = Module.parse(Path(f"{name}.py"), FLAGGED[name])
    assert unsafe_sql(module), f"not flagged: {name}"


def test_the_sql_analysis_accepts_literal_fragments_and_bound_parameters() -> None:
    """Injected: the patterns a history module legitimately uses (constants, literal WHERE
    fragments joined, helpers returning literal text, ``text * n``). Must hold: none flagged."""
    assert unsafe_sql(Module.parse(Path("accepted.py"), ACCEPTED)) == []


# -- no eval of data -------------------------------------------------------------------------------
DANGEROUS_CALLS = {
    "eval",
    "exec",
    "compile",
    "__import__",
    "pickle.loads",
    "pickle.load",
    "marshal.loads",
    "yaml.load",
    "yaml.unsafe_load",
    "os.system",
    "os.popen",
    "ast.literal_eval",
}


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return "?"


def _constant_tables(tree: ast.Module) -> set[str]:
    """Module-level names bound to dict literals whose values are all string constants."""
    names: set[str] = set()
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target]
            if isinstance(node, ast.AnnAssign) else []
        )  # fmt: skip
        if isinstance(value, ast.Dict) and all(
            isinstance(v, ast.Constant) and isinstance(v.value, str) for v in value.values
        ):
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _module_name_is_fixed(expr: ast.AST, module: Module, tables: set[str]) -> bool:
    """A module name built from literals, ``__name__`` and lookups in a constant table only."""
    if isinstance(expr, ast.Constant):
        return True
    if isinstance(expr, ast.Name):
        if expr.id == "__name__":
            return True
        scope = module.scope(expr)
        values = [
            n.value
            for n in ast.walk(scope)
            if isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == expr.id for t in n.targets)
        ]
        return bool(values) and all(_module_name_is_fixed(v, module, tables) for v in values)
    if isinstance(expr, ast.JoinedStr):
        return all(
            _module_name_is_fixed(v.value, module, tables)
            for v in expr.values
            if isinstance(v, ast.FormattedValue)
        )
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        return expr.func.attr == "get" and dotted(expr.func.value) in tables
    if isinstance(expr, ast.Subscript):
        return dotted(expr.value) in tables
    return False


def test_no_eval_exec_pickle_or_shell_in_the_package() -> None:
    """Injected: nothing; the package's source. Must hold: no call that turns data into code
    (eval, exec, compile, pickle/marshal/yaml loading, os.system, ``shell=True``), and
    ``importlib.import_module`` only with a module name fixed in the source (a literal, or a
    lookup in a constant table such as the lazy-import ``_LAZY``)."""
    found: list[str] = []
    for path in package_modules():
        module = Module.parse(path)
        tables = _constant_tables(module.tree)
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            name = dotted(node.func)
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if name in DANGEROUS_CALLS:
                found.append(f"{where}: {name}()")
            if any(k.arg == "shell" and not _false(k.value) for k in node.keywords):
                found.append(f"{where}: shell=")
            if name.endswith("import_module") and not (
                node.args and _module_name_is_fixed(node.args[0], module, tables)
            ):
                found.append(f"{where}: import_module of a computed name")
    assert not found, found


def _false(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


# -- browser bundles -------------------------------------------------------------------------------
OUR_BUNDLES = sorted((PACKAGE / "static").glob("*.js"))
SINKS = re.compile(
    r"\.(innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML\s*\(|document\.write\s*\("
    r"|\beval\s*\(|new\s+Function\s*\(|javascript:"
)


def test_no_markup_sink_or_eval_in_the_shipped_bundles() -> None:
    """Injected: nothing; the built bundles the browser runs (minified, vendored cytoscape
    included). Must hold: no ``innerHTML``/``outerHTML`` assignment, ``insertAdjacentHTML``,
    ``document.write``, ``eval``, ``new Function`` or ``javascript:`` URL anywhere in them."""
    if not OUR_BUNDLES:
        pytest.skip("JS not built (make js)")  # test_bundle.py fails the run on that
    offenders: list[str] = []
    for bundle in OUR_BUNDLES:
        text = bundle.read_text(encoding="utf-8")
        for match in SINKS.finditer(text):
            context = text[max(0, match.start() - 40) : match.end() + 40]
            offenders.append(f"{bundle.name}@{match.start()}: {context!r}")
    assert not offenders, offenders


# -- credentials -----------------------------------------------------------------------------------
passwords = st.text(
    st.characters(min_codepoint=33, max_codepoint=0x2FF, blacklist_characters="\x7f"),
    min_size=6,
    max_size=24,
).map(lambda s: "s3cR" + s)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(password=passwords, in_query=st.booleans())
def test_random_passwords_never_appear_in_repr_health_errors_or_logs(
    password: str, in_query: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Injected: random passwords (any printable characters, URL-quoted) in a Redis URL's user
    info or in ``?password=``; errors whose text carries the password (as redis-py's may); a
    bad URL parameter and a bad port next to the password. Must hold: neither the password nor
    its quoted form appears in any ``repr``, ``url``, ``health()``, ``last_error``, raised error
    message or log record of the source, the emitter, a hub holding the source, or a bridge."""
    pytest.importorskip("redis")
    from codeur_widgets.core.hub import Hub
    from codeur_widgets.emit import Emitter
    from codeur_widgets.transports import mask_url, open_source
    from codeur_widgets.transports.redis_streams import RedisStreamSource

    quoted = quote(password, safe="")
    url = (
        f"redis://127.0.0.1:1/0?stream=s&password={quoted}"
        if in_query
        else f"redis://user:{quoted}@127.0.0.1:1/0?stream=s"
    )
    secrets = {password, quoted}
    texts: list[str] = []
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        source = RedisStreamSource(url)
        assert isinstance(open_source(url), RedisStreamSource)
        hub = Hub(collect_system=False, sources=[source])
        emitter = Emitter(url, exit_timeout=0.0)
        try:
            leak = RuntimeError(f"AUTH failed for user:{password} at {url}")
            source._record(leak, "auth failed")
            emitter._failed(leak)
            texts += [
                repr(source),
                source.url,
                repr(emitter),
                emitter.url,
                repr(hub),
                mask_url(url),
                json.dumps(source.health()),
                json.dumps(emitter.health()),
                json.dumps(hub.health()),
                str(source.last_error),
                str(emitter.last_error),
            ]
            for bad in (url + "&bogus=1", url.replace(":1/0", ":99999/0"), url + "&count=x"):
                with pytest.raises((ValueError, TypeError)) as info:
                    RedisStreamSource(bad)
                texts.append(str(info.value))
                with pytest.raises((ValueError, TypeError)) as info:
                    Emitter(bad)
                texts.append(str(info.value))
        finally:
            emitter.close(timeout=0.0)
            hub.stop()
        texts += [r.getMessage() for r in caplog.records]
        texts += [str(r.args) for r in caplog.records]
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked in {text[:200]!r}"
    assert any("***" in t for t in texts)
