"""Where a single-token bug could hide in Python code, and what could stand there instead.

A *site* is one place in a file's syntax tree with a small set of tokens
that could be written there: the operator of ``a < b`` (``<=``, ``>``, ...),
the offset of an index or a bound (``i``, ``i + 1``, ``i - 1``), a small
integer, a variable of the function, an attribute of the file, the order of
a call's arguments or of an operator's operands. The written token is one of
them. Each token carries context *features* (strings, hashed later by
:mod:`.model`): what surrounds the site crossed with the token, and facts
about how the token is used elsewhere in the function or file (a variable
written but never read, a name that matches the loop it is in, ...).

The same sites serve training (the written token is the right answer among
the candidates: code as its developer wrote it, mutated in every way the
candidates allow) and scanning (a candidate the model prefers over the written
token is a finding). Nothing here depends on the model.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

ARITHMETIC = ("+", "-", "*", "/", "//", "%", "**")
BITWISE = ("&", "|", "^", "<<", ">>")
COMPARISON = ("<", "<=", ">", ">=", "==", "!=")
IDENTITY = ("is", "is not", "in", "not in")
BOOLEAN = ("and", "or")
OFFSETS = ("-1", "+0", "+1")
CONFUSABLE_BUILTINS = {"any": "all", "all": "any", "min": "max", "max": "min"}
MAX_NAME_CANDIDATES = 8
MAX_ATTRIBUTE_CANDIDATES = 5
MAX_SWAP_ARGS = 4
KINDS = (
    "operator",
    "comparison",
    "boolean",
    "off-by-one",
    "literal",
    "variable",
    "attribute",
    "swapped-arguments",
    "swapped-operands",
)

_OP_SYMBOL: dict[type, str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
    ast.Mod: "%", ast.Pow: "**", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
    ast.LShift: "<<", ast.RShift: ">>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
    ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not",
    ast.In: "in", ast.NotIn: "not in", ast.And: "and", ast.Or: "or",
}  # fmt: skip
_NON_COMMUTATIVE = ("-", "/", "//", "%", "**", "+", "<<", ">>")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@dataclass(frozen=True, slots=True)
class Site:
    """One place where another token could have been written.

    Attributes
    ----------
    line, column
        Where the site starts (1-based line, 0-based column, as ``ast`` counts).
    kind
        One of :data:`KINDS`.
    tokens
        What could stand there, the written one first.
    features
        For each token, its context features (strings).
    shown
        For each token, how a finding shows the code with that token (``lo < hi``).
    """

    line: int
    column: int
    kind: str
    tokens: tuple[str, ...]
    features: tuple[tuple[str, ...], ...]
    shown: tuple[str, ...]


def subtokens(name: str) -> tuple[str, ...]:
    """The lower-case words of an identifier (``outgoing_nodes`` -> ``outgoing``, ``nodes``)."""
    return tuple(w.lower() for w in _WORD.findall(name))


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def describe(node: ast.AST | None) -> str:
    """A short, code-independent description of an expression (what features cross with)."""
    if node is None:
        return "none"
    if isinstance(node, ast.Name):
        return "name:" + node.id
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or value is None:
            return f"const:{value}"
        if isinstance(value, int):
            return f"int:{value}" if -2 <= value <= 10 else "int:big"
        return "const:" + type(value).__name__
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "?")
        return "call:" + name
    if isinstance(node, ast.Attribute):
        return "attr:" + node.attr
    if isinstance(node, ast.BinOp):
        return "binop:" + _OP_SYMBOL.get(type(node.op), "?")
    if isinstance(node, ast.Subscript):
        return "sub:" + describe(node.value)
    if isinstance(node, ast.UnaryOp):
        return "unary:" + type(node.op).__name__
    return "node:" + type(node).__name__


def _kind_of(node: ast.AST | None) -> str:
    return type(node).__name__ if node is not None else "none"


def _segment(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except (ValueError, TypeError, AttributeError, RecursionError):
        return "?"


def _offset_of(node: ast.expr) -> tuple[ast.expr, int]:
    """``e + 1`` -> ``(e, 1)``; ``e - 1`` -> ``(e, -1)``; ``e`` -> ``(e, 0)``."""
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Add | ast.Sub)
        and isinstance(node.right, ast.Constant)
        and node.right.value == 1
        and not isinstance(node.right.value, bool)
    ):
        return node.left, 1 if isinstance(node.op, ast.Add) else -1
    return node, 0


def _with_offset(base: ast.expr, offset: int) -> str:
    text = _segment(base)
    return text if offset == 0 else f"{text} {'+' if offset > 0 else '-'} 1"


@dataclass(slots=True)
class _NameUse:
    line: int
    column: int
    store: bool


class _Scope:
    """What a function does with each of its names (positions of reads and writes)."""

    def __init__(self, function: ast.AST) -> None:
        self.uses: dict[str, list[_NameUse]] = defaultdict(list)
        self.params: list[str] = []
        self.loop_targets: set[str] = set()
        args = getattr(function, "args", None)
        if args is not None:
            self.params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
            for param in self.params:
                self.uses[param].append(_NameUse(getattr(function, "lineno", 0), -1, True))
        for node in ast.walk(function):
            if isinstance(node, ast.Name):
                store = isinstance(node.ctx, ast.Store | ast.Del)
                self.uses[node.id].append(_NameUse(node.lineno, node.col_offset, store))
            elif isinstance(node, ast.For | ast.comprehension):
                for target in ast.walk(node.target):
                    if isinstance(target, ast.Name):
                        self.loop_targets.add(target.id)
        self.variables = sorted(n for n, u in self.uses.items() if any(x.store for x in u))

    def facts(self, name: str, line: int, column: int) -> list[str]:
        """How ``name`` is used in the function, seen from a read at ``line``:``column``."""
        uses = [u for u in self.uses.get(name, []) if (u.line, u.column) != (line, column)]
        writes = [u for u in uses if u.store]
        reads = [u for u in uses if not u.store]
        facts = [
            "param" if name in self.params else "local",
            "written-before" if any(u.line <= line for u in writes) else "not-written-before",
            f"reads:{min(len(reads), 3)}",
            f"writes:{min(len(writes), 3)}",
        ]
        if writes and not reads:
            facts.append("written-never-read")
        if name in self.loop_targets:
            facts.append("loop-target")
        before = [line - u.line for u in uses if u.line <= line]
        facts.append("last-use:" + _bucket(min(before)) if before else "last-use:none")
        return facts


def _bucket(distance: int) -> str:
    for limit in (0, 1, 3, 8, 20):
        if distance <= limit:
            return str(limit)
    return "far"


class _FileFacts:
    """What the whole file does with attributes and argument pairs."""

    def __init__(self, tree: ast.AST) -> None:
        self.attributes: dict[str, int] = defaultdict(int)
        self.pairs: set[tuple[str, str]] = set()
        self.defs: dict[str, list[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                self.attributes[node.attr] += 1
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                params = [a.arg for a in node.args.args]
                self.defs[node.name] = params
                self._pairs(params)
            elif isinstance(node, ast.Tuple | ast.List):
                self._pairs([e.id for e in node.elts if isinstance(e, ast.Name)])
            elif isinstance(node, ast.Call):
                self._pairs([a.id for a in node.args if isinstance(a, ast.Name)])

    def _pairs(self, names: list[str]) -> None:
        self.pairs.update(itertools.pairwise(names))


class _Collector(ast.NodeVisitor):
    """Walks a module and collects its sites."""

    def __init__(self, tree: ast.Module) -> None:
        self.sites: list[Site] = []
        self.file = _FileFacts(tree)
        self.scope: _Scope | None = None
        self.parents: dict[ast.AST, ast.AST] = {}
        self.loop_vars: list[str] = []
        self.function: str = ""
        self.offset_nodes: set[int] = set()
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent

    # Context shared by every kind of site.
    def _context(self, node: ast.AST) -> list[str]:
        parent = self.parents.get(node)
        grand = self.parents.get(parent) if parent is not None else None
        field = next(
            (
                name
                for name, value in ast.iter_fields(parent)
                if value is node or (isinstance(value, list) and node in value)
            ),
            "?",
        ) if parent is not None else "?"  # fmt: skip
        statement = node
        while statement in self.parents and not isinstance(statement, ast.stmt):
            statement = self.parents[statement]
        return [
            "p:" + _kind_of(parent) + "." + field,
            "g:" + _kind_of(grand),
            "s:" + _kind_of(statement),
        ]

    def _add(
        self,
        node: ast.AST,
        kind: str,
        tokens: list[str],
        shown: list[str],
        context: list[str],
        per_token: list[list[str]] | None = None,
    ) -> None:
        if len(tokens) < 2:
            return
        features = []
        for index, token in enumerate(tokens):
            own = [f"{kind}|{token}", *(f"{kind}|{token}|{c}" for c in context)]
            if per_token is not None:
                own.extend(f"{kind}|{fact}" for fact in per_token[index])
                own.extend(f"{kind}|{token}|{fact}" for fact in per_token[index])
            features.append(tuple(own))
        line = getattr(node, "lineno", 0)
        column = getattr(node, "col_offset", 0)
        self.sites.append(Site(line, column, kind, tuple(tokens), tuple(features), tuple(shown)))

    # Functions and loops set the scope the name facts are read from.
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        saved = (self.scope, self.loop_vars, self.function)
        self.scope, self.loop_vars, self.function = _Scope(node), [], node.name
        self.generic_visit(node)
        self.scope, self.loop_vars, self.function = saved

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_For(self, node: ast.For) -> None:
        names = [t.id for t in ast.walk(node.target) if isinstance(t, ast.Name)]
        self.visit(node.iter)
        self.loop_vars.extend(names)
        for child in (*node.body, *node.orelse):
            self.visit(child)
        del self.loop_vars[len(self.loop_vars) - len(names) :]

    # Operators.
    def visit_BinOp(self, node: ast.BinOp) -> None:
        symbol = _OP_SYMBOL.get(type(node.op))
        left, right = describe(node.left), describe(node.right)
        context = [*self._context(node), "l:" + left, "r:" + right, "lr:" + left + " " + right]
        if symbol is not None and _offset_of(node)[1] == 0:
            group = ARITHMETIC if symbol in ARITHMETIC else BITWISE
            tokens = [symbol, *(s for s in group if s != symbol)]
            shown = [f"{_segment(node.left)} {s} {_segment(node.right)}" for s in tokens]
            self._add(node, "operator", tokens, shown, context)
        elif _offset_of(node)[1] and id(node) not in self.offset_nodes:
            # ``e ± 1`` outside an index or a bound (``lo = mid + 1``): the offset is a site.
            self._offset_site(node, self._context(node))
        if symbol in _NON_COMMUTATIVE and left != right:
            swapped = [
                [f"first:{left}", f"second:{right}"],
                [f"first:{right}", f"second:{left}"],
            ]
            shown = [
                _segment(node),
                f"{_segment(node.right)} {symbol} {_segment(node.left)}",
            ]
            self._add(
                node, "swapped-operands", ["kept", "swapped"], shown, [f"op:{symbol}"], swapped
            )
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        symbol = _OP_SYMBOL.get(type(node.op))
        if symbol is not None:
            group = ARITHMETIC if symbol in ARITHMETIC else BITWISE
            tokens = [symbol, *(s for s in group if s != symbol)]
            target, value = describe(node.target), describe(node.value)
            mentions = any(
                isinstance(n, ast.Name) and isinstance(node.target, ast.Name)
                and n.id == node.target.id
                for n in ast.walk(node.value)
            )  # fmt: skip
            context = [
                *self._context(node), "aug", "t:" + target, "r:" + value,
                "target-in-value" if mentions else "target-not-in-value",
            ]  # fmt: skip
            shown = [f"{_segment(node.target)} {s}= {_segment(node.value)}" for s in tokens]
            self._add(node, "operator", tokens, shown, context)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        operands = [node.left, *node.comparators]
        base = self._context(node)
        for index, op in enumerate(node.ops):
            symbol = _OP_SYMBOL.get(type(op))
            if symbol is None:
                continue
            group = COMPARISON if symbol in COMPARISON else IDENTITY
            tokens = [symbol, *(s for s in group if s != symbol)]
            left, right = describe(operands[index]), describe(operands[index + 1])
            context = [*base, "l:" + left, "r:" + right, "lr:" + left + " " + right]
            context.extend("loop:" + d for d in (left, right) if d[5:] in self.loop_vars)
            lhs, rhs = _segment(operands[index]), _segment(operands[index + 1])
            self._add(node, "comparison", tokens, [f"{lhs} {s} {rhs}" for s in tokens], context)
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        symbol = _OP_SYMBOL[type(node.op)]
        tokens = [symbol, "or" if symbol == "and" else "and"]
        context = [*self._context(node), *("v:" + describe(v) for v in node.values[:3])]
        joined = [f" {s} ".join(_segment(v) for v in node.values) for s in tokens]
        self._add(node, "boolean", tokens, joined, context)
        self.generic_visit(node)

    # Indices, bounds and literals.
    def visit_Subscript(self, node: ast.Subscript) -> None:
        target = describe(node.value)
        index = node.slice
        if isinstance(index, ast.Slice):
            for name, bound in (("lower", index.lower), ("upper", index.upper)):
                if bound is not None:
                    self._offset_site(bound, [f"slice-{name}", "of:" + target])
        elif isinstance(index, ast.Tuple):
            offsets = [_offset_of(e)[1] for e in index.elts]
            for position, element in enumerate(index.elts):
                others = {o for i, o in enumerate(offsets) if i != position}
                self._offset_site(
                    element,
                    [f"tuple-index:{position}", "of:" + target,
                     *(f"sibling-offset:{o}" for o in sorted(others))],
                )  # fmt: skip
            self._arrangement(node, index.elts, "index", target)
        else:
            self._offset_site(index, ["index", "of:" + target])
        self.generic_visit(node)

    def _offset_site(self, node: ast.expr, context: list[str]) -> None:
        base, offset = _offset_of(node)
        if isinstance(base, ast.Constant | ast.Slice | ast.Starred):
            return
        self.offset_nodes.add(id(node))
        described = describe(base)
        context = [*context, "e:" + described, "k:" + _kind_of(base)]
        if described[5:] in self.loop_vars:
            context.append("loop-var")
        written = f"{offset:+d}"
        tokens = [written, *(o for o in OFFSETS if o != written)]
        shown = [_with_offset(base, int(t)) for t in tokens]
        self._add(node, "off-by-one", tokens, shown, context)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        parent = self.parents.get(node)
        if isinstance(value, bool):
            tokens = [str(value), str(not value)]
            self._add(node, "literal", tokens, tokens, self._context(node))
        elif isinstance(value, int) and 0 <= value <= 8:
            if parent is not None and isinstance(parent, ast.BinOp) and _offset_of(parent)[1]:
                return  # the offset site of ``e ± 1`` covers this one
            if isinstance(parent, ast.UnaryOp):
                return
            tokens = [str(value), *(str(v) for v in (value - 1, value + 1) if v >= 0)]
            sibling = ""
            if isinstance(parent, ast.BinOp | ast.Compare):
                sibling = describe(parent.left if parent.left is not node else None)
            self._add(node, "literal", tokens, tokens, [*self._context(node), "sib:" + sibling])

    # Calls: argument order, ranges.
    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        callee = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "?")
        if callee == "range":
            for position, arg in enumerate(node.args):
                self._offset_site(arg, [f"range:{position}/{len(node.args)}"])
        elif node.args and len(node.args) <= MAX_SWAP_ARGS:
            self._arrangement(node, node.args, "call", callee)
        if callee in self.file.defs and callee != "range":
            # A bound handed to a function of this file (``binsearch(mid, end)``).
            recursive = "recursive" if callee == self.function else "local"
            for position, arg in enumerate(node.args):
                if isinstance(arg, ast.Name | ast.BinOp):
                    self._offset_site(arg, [f"call-arg:{position}", recursive])
        self.generic_visit(node)

    def _arrangement(self, node: ast.AST, items: list[ast.expr], where: str, owner: str) -> None:
        if len(items) < 2 or any(isinstance(i, ast.Starred) for i in items):
            return
        described = [describe(i) for i in items]
        params = self.file.defs.get(owner, []) if where == "call" else []
        if params and params[0] == "self":
            params = params[1:]
        orders = [("kept", list(range(len(items))))]
        for i in range(len(items) - 1):
            if described[i] != described[i + 1]:
                order = list(range(len(items)))
                order[i], order[i + 1] = order[i + 1], order[i]
                orders.append((f"swap{i}", order))
        tokens, shown, facts = [], [], []
        for token, order in orders:
            tokens.append(token)
            own = [f"{where}:{owner}|{p}|{described[o]}" for p, o in enumerate(order)]
            own.extend(f"{where}|{p}|{described[o]}" for p, o in enumerate(order))
            matches = 0
            for p, o in enumerate(order):
                if p < len(params):
                    words = {n.id for n in ast.walk(items[o]) if isinstance(n, ast.Name)}
                    matches += params[p] in words
            own.append(f"param-match:{matches}")
            if owner == self.function:
                own.append(f"recursive-param-match:{matches}")
            facts.append(own)
            shown.append(", ".join(_segment(items[o]) for o in order))
        kind = "swapped-arguments"
        self._add(node, kind, tokens, shown, [f"{where}:{owner}"], facts)

    # Variables and attributes.
    def visit_Name(self, node: ast.Name) -> None:
        scope = self.scope
        if scope is None or not isinstance(node.ctx, ast.Load):
            return
        name = node.id
        if name in CONFUSABLE_BUILTINS and name not in scope.variables:
            other = CONFUSABLE_BUILTINS[name]
            self._add(node, "variable", [name, other], [name, other], self._context(node))
            return
        if name not in scope.variables or name == "self":
            return
        others = [v for v in scope.variables if v != name and v != "self"]
        if not others:
            return

        # Nearest first: the names used closest to the site are the likeliest slips.
        def distance(v: str) -> int:
            return min(abs(u.line - node.lineno) for u in scope.uses[v])

        candidates = [name, *sorted(others, key=distance)[:MAX_NAME_CANDIDATES]]
        context = self._context(node)
        statement = self._statement_names(node)
        per_token = []
        for candidate in candidates:
            facts = scope.facts(candidate, node.lineno, node.col_offset)
            words = {_stem(w) for w in subtokens(candidate)}
            if words & statement:
                facts.append("shares-word-with-statement")
            if candidate in self.loop_vars:
                facts.append("enclosing-loop-var")
            facts.extend(self._pair_facts(node, candidate))
            facts.append("cand:" + candidate)
            per_token.append(facts)
        self._add(node, "variable", candidates, candidates, context, per_token)

    def _statement_names(self, node: ast.Name) -> set[str]:
        statement: ast.AST = node
        while statement in self.parents and not isinstance(statement, ast.stmt):
            statement = self.parents[statement]
        targets = getattr(statement, "target", None) or getattr(statement, "targets", None)
        found: list[str] = []
        for target in targets if isinstance(targets, list) else [targets]:
            if target is not None:
                found.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        return {_stem(w) for n in found if n != node.id for w in subtokens(n)}

    def _pair_facts(self, node: ast.Name, candidate: str) -> list[str]:
        parent = self.parents.get(node)
        items = getattr(parent, "elts", None) or getattr(parent, "args", None)
        facts = []
        if isinstance(items, list) and node in items:
            index = items.index(node)
            left = items[index - 1] if index > 0 else None
            if isinstance(left, ast.Name):
                seen = (left.id, candidate) in self.file.pairs
                facts.append("pair-seen" if seen else "pair-unseen")
        if isinstance(parent, ast.BinOp | ast.Compare):
            others = [
                parent.left,
                getattr(parent, "right", None),
                *getattr(parent, "comparators", []),
            ]
            if any(isinstance(o, ast.Name) and o is not node and o.id == candidate for o in others):
                facts.append("same-as-other-operand")
        return facts

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load) and not isinstance(self.parents.get(node), ast.Call):
            words = set(subtokens(node.attr))
            others = [
                a for a in self.file.attributes
                if a != node.attr and words & set(subtokens(a))
            ][:MAX_ATTRIBUTE_CANDIDATES]  # fmt: skip
            if others:
                tokens = [node.attr, *others]
                base = _segment(node.value)
                per_token = [
                    [f"uses:{min(self.file.attributes[t] - (t == node.attr), 3)}"] for t in tokens
                ]
                self._add(
                    node, "attribute", tokens, [f"{base}.{t}" for t in tokens],
                    [*self._context(node), "on:" + describe(node.value)], per_token,
                )  # fmt: skip
        self.generic_visit(node)


def find_sites(source: str) -> list[Site]:
    """Every site of ``source``, in the order of the file.

    Raises
    ------
    SyntaxError
        If ``source`` is not valid Python (``ValueError`` for null bytes).
    """
    tree = ast.parse(source)
    collector = _Collector(tree)
    collector.visit(tree)
    return sorted(collector.sites, key=lambda s: (s.line, s.column))


def iter_sites(sources: list[str]) -> Iterator[Site]:
    """The sites of every source that parses, skipping the others."""
    for source in sources:
        try:
            yield from find_sites(source)
        except (SyntaxError, ValueError, RecursionError):
            continue
