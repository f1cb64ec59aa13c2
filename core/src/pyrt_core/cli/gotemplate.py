"""Go's text/template, the part of it docker's ``--format`` users write, with the functions
docker adds (``json``, ``join``, ``split``, ``upper``, ``lower``, ``title``, ``pad``,
``truncate``) and docker's ``table`` directive (:func:`render_rows`).

Why our own: scripts written for docker pass Go templates (``inspect -f '{{.State.Pid}}'``,
``ps --format 'table {{.ID}}\\t{{.Names}}'``), and the one pure-Python implementation on
PyPI (gotpl 0.1.0) was a pre-1.0 first release with four run-time dependencies; the others
wrap Go's own package and need a Go toolchain.  This is the subset those scripts use:

- actions ``{{pipeline}}``, trim markers ``{{- ... -}}``, comments ``{{/* ... */}}``;
- fields ``.A.B``, ``.``, variables ``$``, ``$x := ...``, ``$x = ...``, ``$i, $e := range``,
  literals (strings, raw strings, numbers, chars, ``true``/``false``/``nil``),
  parenthesised pipelines and fields of them ``(index .M "k").Field``, pipelines ``|``;
- ``if``/``else if``/``else``, ``range`` (with ``else``, ``break``, ``continue``),
  ``with`` (with ``else``), ``define``/``template``/``block``;
- Go's functions ``and or not len index slice eq ne lt le gt ge print printf println
  html js urlquery``, plus docker's.

Data are JSON-like Python values: a dict is looked up as Go looks up a map (a missing key
prints ``<no value>``, the way ``docker inspect`` prints a field it does not know, through
its raw-JSON fallback); a callable value is a method (docker's ``{{.Label "k"}}`` in ps).
An object with ``template_field(name)`` is a document whose fields are computed when the
template reads them; used whole (``{{.}}``, ``{{json .}}``) it gives ``template_value()``.
Values print as Go's ``fmt`` prints them (``[a b]``, ``map[k:v]``, ``true``, ``<nil>``).

Errors are docker's lines: ``template parsing error: template: :1: unclosed action``
(exit 125) and ``template: :1:2: executing "" at <.X>: ...``.
"""
from __future__ import annotations

from ..errors import UsageError


class TemplateError(UsageError):
    """A template that cannot be parsed or run (exit 125, as docker's own errors)."""


class _NoValue:
    __slots__ = ()

    def __repr__(self):
        return "<no value>"

    def __bool__(self):
        return False


NOVALUE = _NoValue()


# -- printing values as Go's fmt does (%v) ----------------------------------------------


def _go_float(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0"
    for p in range(1, 18):  # the shortest digits that give v back
        s = "%.*e" % (p - 1, v)
        if float(s) == v:
            break
    mant, _, exp = s.partition("e")
    e = int(exp)
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    if e < -4 or e >= 6:  # strconv.FormatFloat(v, 'g', -1): precision 6 decides
        return f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    return "%.*f" % (max(0, p - 1 - e), v)


def printable(v) -> str:
    """``v`` as ``{{v}}`` prints it."""
    if isinstance(v, str):
        return v
    if v is NOVALUE:
        return "<no value>"
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(printable(e) for e in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{printable(k)}:{printable(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def _whole(v):
    """``v`` where a template uses it whole (``{{.}}``, ``{{json .}}``, ``$``, a ``range``
    or ``with`` over it): a document built on demand gives its complete value
    (``template_value()``: ``inspect -f``'s cli/containers/inspect_view.LazyInspect),
    where a field of it (``{{.State.Pid}}``) is read through ``template_field`` alone."""
    whole = getattr(v, "template_value", None)
    return whole() if whole is not None else v


def truth(v) -> bool:
    if v is NOVALUE or v is None:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True


# -- lexing ----------------------------------------------------------------------------

_SPACE = " \t\r\n"
_IDENT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"


class _Tok:
    __slots__ = ("kind", "val", "pos")

    def __init__(self, kind, val, pos):
        self.kind, self.val, self.pos = kind, val, pos

    def __repr__(self):
        return f"{self.kind}:{self.val!r}"


def _unquote(s: str, pos: int, err) -> str:
    """A Go interpreted string literal's body."""
    out, i = [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
              "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
    while i < len(s):
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = s[i + 1] if i + 1 < len(s) else ""
        if n in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[n]
            digits = s[i + 2:i + 2 + width]
            try:
                out.append(chr(int(digits, 16)) if len(digits) == width else err(pos, "bad escape"))
            except ValueError:
                err(pos, f"invalid syntax: {s!r}")
            i += 2 + width
        elif n in simple:
            out.append(simple[n])
            i += 2
        else:
            err(pos, "invalid syntax")
    return "".join(out)


class _Lexer:
    """Splits a template into text and the tokens of its actions."""

    def __init__(self, text: str, name: str = ""):
        self.text, self.name = text, name

    def line(self, pos: int) -> int:
        return 1 + self.text.count("\n", 0, pos)

    def fail(self, pos, msg):
        raise TemplateError(f"template: {self.name}:{self.line(pos)}: {msg}")

    def items(self):
        """Yields ("text", str, pos) and ("action", [tokens], pos)."""
        text, i, trim_next = self.text, 0, False
        while True:
            j = text.find("{{", i)
            chunk = text[i:] if j < 0 else text[i:j]
            if trim_next:
                chunk = chunk.lstrip(_SPACE)
            if j < 0:
                if chunk:
                    yield ("text", chunk, i)
                return
            start = j + 2
            if text.startswith("-", start) and start + 1 < len(text) and text[start + 1] in _SPACE:
                chunk = chunk.rstrip(_SPACE)
                start += 2
            if chunk:
                yield ("text", chunk, i)
            k = start
            while k < len(text) and text[k] in _SPACE:
                k += 1
            if text.startswith("/*", k):  # a comment: {{/* ... */}}
                end = text.find("*/", k + 2)
                if end < 0:
                    self.fail(j, "unclosed comment")
                close = end + 2
                while close < len(text) and text[close] in _SPACE:
                    close += 1
                trim_next = False
                if text.startswith("-}}", close) and text[close - 1] in _SPACE:
                    trim_next, close = True, close + 1
                if not text.startswith("}}", close):
                    self.fail(j, "comment ends before closing delimiter")
                i = close + 2
                continue
            toks, i, trim_next = self._action(start, j)
            yield ("action", toks, j)

    def _action(self, i: int, open_pos: int):
        text, toks = self.text, []
        self._end, seen = -1, 0
        while True:
            if len(toks) != seen:  # a token was just read: where it ended
                self._end, seen = i, len(toks)
            if i >= len(text):
                self.fail(open_pos, "unclosed action")
            c = text[i]
            if c in _SPACE:
                if text.startswith("-}}", i + 1):
                    return toks, i + 4, True
                i += 1
                continue
            if text.startswith("}}", i):
                return toks, i + 2, False
            if c == "|":
                toks.append(_Tok("pipe", c, i))
                i += 1
            elif c == "(":
                toks.append(_Tok("(", c, i))
                i += 1
            elif c == ")":
                toks.append(_Tok(")", c, i))
                i += 1
            elif c == ",":
                toks.append(_Tok(",", c, i))
                i += 1
            elif text.startswith(":=", i):
                toks.append(_Tok("declare", ":=", i))
                i += 2
            elif c == "=":
                toks.append(_Tok("assign", "=", i))
                i += 1
            elif c == '"':
                k = i + 1
                while k < len(text) and text[k] != '"':
                    if text[k] == "\n":
                        self.fail(i, "unterminated quoted string")
                    k += 2 if text[k] == "\\" else 1
                if k >= len(text):
                    self.fail(i, "unterminated quoted string")
                toks.append(_Tok("string", _unquote(text[i + 1:k], i, self.fail), i))
                i = k + 1
            elif c == "`":
                k = text.find("`", i + 1)
                if k < 0:
                    self.fail(i, "unterminated raw quoted string")
                toks.append(_Tok("string", text[i + 1:k], i))
                i = k + 1
            elif c == "'":
                k = i + 1
                while k < len(text) and text[k] != "'":
                    k += 2 if text[k] == "\\" else 1
                if k >= len(text):
                    self.fail(i, "unterminated character constant")
                s = _unquote(text[i + 1:k], i, self.fail)
                if len(s) != 1:
                    self.fail(i, f"malformed character constant: {text[i:k + 1]}")
                toks.append(_Tok("number", ord(s), i))
                i = k + 1
            elif c == "." and (i + 1 >= len(text) or text[i + 1] not in "0123456789"):
                k = i + 1
                while k < len(text) and text[k] in _IDENT_CHARS:
                    k += 1
                # a field of what precedes it when glued to it: (x).F, $x.F, .A.B
                glued = bool(toks) and self._end == i and k > i + 1 and \
                    toks[-1].kind in (")", "field", "chainfield", "var")
                if k == i + 1:
                    toks.append(_Tok("dot", ".", i))
                else:
                    toks.append(_Tok("chainfield" if glued else "field", text[i + 1:k], i))
                i = k
            elif c == "$":
                k = i + 1
                while k < len(text) and text[k] in _IDENT_CHARS:
                    k += 1
                toks.append(_Tok("var", text[i:k], i))
                i = k
            elif c in "0123456789+-." :
                k = i + 1
                while k < len(text) and (text[k] in _IDENT_CHARS or text[k] in ".+-" and
                                         text[k - 1] in "eEpP" or text[k] == "."):
                    k += 1
                lit = text[i:k]
                toks.append(_Tok("number", self._number(lit, i), i))
                i = k
            elif c in _IDENT_CHARS:
                k = i
                while k < len(text) and text[k] in _IDENT_CHARS:
                    k += 1
                word = text[i:k]
                kind = "bool" if word in ("true", "false") else "nil" if word == "nil" else "ident"
                toks.append(_Tok(kind, word, i))
                i = k
            else:
                self.fail(i, f"unexpected {c!r} in command")

    def _number(self, lit: str, pos: int):
        s = lit.replace("_", "")
        try:
            if s.lstrip("+-")[:2].lower() in ("0x", "0o", "0b"):
                return int(s, 0)
            if any(ch in s for ch in ".eE"):
                return float(s)
            return int(s, 10)
        except ValueError:
            self.fail(pos, f"bad number syntax: {lit!r}")


# -- the parse tree --------------------------------------------------------------------


class _Node:
    __slots__ = ("pos",)


class _Field(_Node):  # .A.B on dot, or on a receiver (var / parenthesised pipe)
    __slots__ = ("recv", "names")

    def __init__(self, recv, names, pos):
        self.recv, self.names, self.pos = recv, names, pos

    def __str__(self):
        head = "" if self.recv is None else str(self.recv)
        return head + "".join("." + n for n in self.names)


class _Var(_Node):
    __slots__ = ("name",)

    def __init__(self, name, pos):
        self.name, self.pos = name, pos

    def __str__(self):
        return self.name


class _Lit(_Node):
    __slots__ = ("val", "src")

    def __init__(self, val, src, pos):
        self.val, self.src, self.pos = val, src, pos

    def __str__(self):
        return self.src


class _Dot(_Node):
    def __init__(self, pos):
        self.pos = pos

    def __str__(self):
        return "."


class _Ident(_Node):
    __slots__ = ("name",)

    def __init__(self, name, pos):
        self.name, self.pos = name, pos

    def __str__(self):
        return self.name


class _Pipe(_Node):
    __slots__ = ("decl", "assign", "cmds")

    def __init__(self, decl, assign, cmds, pos):
        self.decl, self.assign, self.cmds, self.pos = decl, assign, cmds, pos

    def __str__(self):
        s = " | ".join(" ".join(str(a) for a in c) for c in self.cmds)
        if self.decl:
            s = ", ".join(self.decl) + (" = " if self.assign else " := ") + s
        return s


class _Paren(_Node):
    __slots__ = ("pipe",)

    def __init__(self, pipe, pos):
        self.pipe, self.pos = pipe, pos

    def __str__(self):
        return f"({self.pipe})"


class _Control:
    __slots__ = ("kind", "pipe", "body", "other", "pos", "name")

    def __init__(self, kind, pipe, pos, name=None):
        self.kind, self.pipe, self.pos, self.name = kind, pipe, pos, name
        self.body: list = []
        self.other: list | None = None


class _Text:
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# -- parsing ---------------------------------------------------------------------------


class _Parser:
    def __init__(self, lexer: _Lexer, funcs: dict):
        self.lex, self.funcs = lexer, funcs
        self.items = list(lexer.items())
        self.i = 0
        self.defines: dict[str, list] = {}
        self.vars: list[str] = ["$"]
        self.loops = 0

    def fail(self, pos, msg):
        self.lex.fail(pos, msg)

    def parse(self) -> list:
        body, end = self._list(top=True)
        return body

    def _list(self, top=False):
        """Nodes up to {{end}} / {{else ...}} (returned as the second value)."""
        out: list = []
        while self.i < len(self.items):
            kind, val, pos = self.items[self.i]
            self.i += 1
            if kind == "text":
                out.append(_Text(val))
                continue
            toks = val
            if not toks:
                self.fail(pos, "missing value for command")
            head = toks[0]
            word = head.val if head.kind == "ident" else None
            if word in ("end", "else"):
                if top:
                    self.fail(pos, f"unexpected {{{{{word}}}}}")
                if word == "end" and len(toks) > 1:
                    self.fail(pos, "unexpected " + repr(toks[1].val) + " in end")
                return out, (word, toks[1:], pos)
            if word in ("if", "range", "with"):
                out.append(self._control(word, toks[1:], pos))
            elif word in ("define", "block"):
                node = self._define(word, toks[1:], pos)
                if node is not None:
                    out.append(node)
            elif word == "template":
                out.append(self._template(toks[1:], pos))
            elif word in ("break", "continue"):
                if not self.loops:
                    self.fail(pos, f"{{{{{word}}}}} outside {{{{range}}}}")
                out.append(_Control(word, None, pos))
            else:
                out.append(self._pipeline(toks, pos, allow_decl=True))
        if not top:
            self.fail(len(self.lex.text), "unexpected EOF")
        return out, None

    def _control(self, word, toks, pos):
        mark = len(self.vars)
        node = _Control(word, self._pipeline(toks, pos, allow_decl=True, in_range=word == "range"),
                        pos)
        if word == "range":
            self.loops += 1
        node.body, end = self._list()
        if word == "range":
            self.loops -= 1
        del self.vars[mark:]
        kind, rest, epos = end
        if kind == "else":
            if rest and rest[0].kind == "ident" and rest[0].val in ("if", "with"):
                # {{else if ...}}: a nested control that ends with this one's {{end}}
                node.other = [self._control(rest[0].val, rest[1:], epos)]
                return node
            if rest:
                self.fail(epos, "unexpected " + repr(rest[0].val) + " in else")
            mark = len(self.vars)
            node.other, end = self._list()
            del self.vars[mark:]
            if end[0] != "end":
                self.fail(end[2], "expected end; found {{else}}")
        return node

    def _define(self, word, toks, pos):
        if not toks or toks[0].kind != "string":
            self.fail(pos, f"unexpected {toks[0].val if toks else 'EOF'!r} in {word} clause")
        name = toks[0].val
        pipe = self._pipeline(toks[1:], pos) if word == "block" and len(toks) > 1 else None
        saved, self.vars = self.vars, ["$"]
        body, end = self._list()
        self.vars = saved
        if end[0] != "end":
            self.fail(end[2], f"unexpected {{{{else}}}} in {word}")
        self.defines[name] = body
        if word == "block":
            return _Control("template", pipe, pos, name=name)
        return None

    def _template(self, toks, pos):
        if not toks or toks[0].kind != "string":
            self.fail(pos, "unexpected token in template clause")
        pipe = self._pipeline(toks[1:], pos) if len(toks) > 1 else None
        return _Control("template", pipe, pos, name=toks[0].val)

    def _pipeline(self, toks, pos, allow_decl=False, in_range=False):
        decl, assign = [], False
        # $x := ..., $x = ..., $i, $e := ... (range only)
        if allow_decl and toks and toks[0].kind == "var":
            if len(toks) > 1 and toks[1].kind in ("declare", "assign"):
                decl, assign, toks = [toks[0].val], toks[1].kind == "assign", toks[2:]
            elif in_range and len(toks) > 3 and toks[1].kind == "," and toks[2].kind == "var" \
                    and toks[3].kind in ("declare", "assign"):
                decl, assign, toks = [toks[0].val, toks[2].val], toks[3].kind == "assign", toks[4:]
        for name in decl:
            if assign and name not in self.vars:
                self.fail(pos, f"undefined variable \"{name}\"")
        cmds, cur, k = [], [], 0
        while k < len(toks):
            t = toks[k]
            if t.kind == "pipe":
                if not cur:
                    self.fail(t.pos, "missing command")
                cmds.append(cur)
                cur = []
                k += 1
                continue
            node, k = self._operand(toks, k)
            cur.append(node)
        if not cur:
            self.fail(pos, "missing value for command" if not cmds else "missing command")
        cmds.append(cur)
        for c in cmds[1:]:
            if isinstance(c[0], (_Lit, _Dot)) or (isinstance(c[0], _Var) and len(c) == 1):
                self.fail(pos, f"non executable command in pipeline stage {cmds.index(c) + 1}")
        if not assign:
            self.vars.extend(decl)
        return _Pipe(decl, assign, cmds, pos)

    def _operand(self, toks, k):
        t = toks[k]
        if t.kind == "field":
            names = [t.val]
            k += 1
            while k < len(toks) and toks[k].kind == "chainfield":
                names.append(toks[k].val)
                k += 1
            return _Field(None, names, t.pos), k
        if t.kind == "var":
            if t.val not in self.vars:
                self.fail(t.pos, f"undefined variable \"{t.val}\"")
            node, k = _Var(t.val, t.pos), k + 1
        elif t.kind == "(":
            depth, j = 1, k + 1
            while j < len(toks) and depth:
                depth += {"(": 1, ")": -1}.get(toks[j].kind, 0)
                j += 1
            if depth:
                self.fail(t.pos, "unclosed left paren")
            node, k = _Paren(self._pipeline(toks[k + 1:j - 1], t.pos, allow_decl=True), t.pos), j
        elif t.kind == "dot":
            return _Dot(t.pos), k + 1
        elif t.kind == "ident":
            if t.val not in self.funcs:
                if t.val in ("if", "range", "with", "end", "else", "define", "template", "block",
                             "break", "continue"):
                    self.fail(t.pos, f"unexpected <{t.val}> in command")
                self.fail(t.pos, f"function \"{t.val}\" not defined")
            return _Ident(t.val, t.pos), k + 1
        elif t.kind == "string":
            return _Lit(t.val, '"' + t.val.replace('"', '\\"') + '"', t.pos), k + 1
        elif t.kind == "number":
            return _Lit(t.val, printable(t.val), t.pos), k + 1
        elif t.kind == "bool":
            return _Lit(t.val == "true", t.val, t.pos), k + 1
        elif t.kind == "nil":
            return _Lit(None, "nil", t.pos), k + 1
        elif t.kind == ")":
            self.fail(t.pos, "unexpected right paren")
        else:
            self.fail(t.pos, f"unexpected \"{t.val}\" in operand")
        names = []
        while k < len(toks) and toks[k].kind == "chainfield":
            names.append(toks[k].val)
            k += 1
        return (_Field(node, names, node.pos) if names else node), k


# -- the functions ---------------------------------------------------------------------


def _json(v) -> str:
    from ..jsonlean import dumps_text  # json's encoder without ``import json`` (re, enum)

    as_json = getattr(v, "template_json", None)
    if callable(as_json):  # a value whose JSON is not its fields' (Go's json tags)
        v = as_json()
    elif isinstance(v, dict):  # a row's methods ({{.Label "k"}}) are no JSON fields
        v = {k: x for k, x in v.items() if not callable(x)}
    return dumps_text(None if v is NOVALUE else v, default=str)


def _title(s) -> str:
    out, prev_sep = [], True
    for ch in _str(s):
        out.append(ch.upper() if prev_sep else ch)
        prev_sep = not (ch.isalnum() or ch == "_")
    return "".join(out)


def _str(v) -> str:
    if isinstance(v, str):
        return v
    raise _ExecError(f"wrong type for value; expected string; got {_type_name(v)}")


def _int(v) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _ExecError(f"wrong type for value; expected int; got {_type_name(v)}")
    return v


def _type_name(v) -> str:
    if v is None or v is NOVALUE:
        return "<nil>"
    return {str: "string", bool: "bool", int: "int", float: "float64", list: "[]interface {}",
            tuple: "[]interface {}", dict: "map[string]interface {}"}.get(type(v), type(v).__name__)


def _join(items, sep) -> str:
    if items is None or items is NOVALUE:
        items = []
    if not isinstance(items, (list, tuple)):
        raise _ExecError(f"wrong type for value; expected []string; got {_type_name(items)}")
    return _str(sep).join(printable(e) for e in items)


def _pad(s, prefix, suffix) -> str:
    s = _str(s)
    return s if s == "" else " " * _int(prefix) + s + " " * _int(suffix)


def _truncate(s, n) -> str:
    s, n = _str(s), _int(n)
    return s if len(s) < n else s[:n]


def _len(v) -> int:
    if isinstance(v, (str, list, tuple, dict)):
        return len(v)
    raise _ExecError(f"error calling len: len of {'nil pointer' if v is None or v is NOVALUE else 'type ' + _type_name(v)}")


def _index(item, *keys):
    for k in keys:
        if isinstance(item, dict):
            if k in item:
                item = item[k]
            else:
                # the zero value of the map's element type: "" for string maps (Labels)
                vals = list(item.values())
                item = "" if all(isinstance(x, str) for x in vals) else NOVALUE
        elif isinstance(item, (list, tuple, str)):
            if isinstance(k, bool) or not isinstance(k, int):
                raise _ExecError(f"error calling index: cannot index slice/array with type {_type_name(k)}")
            if not 0 <= k < len(item):
                raise _ExecError(f"error calling index: index out of range: {k}")
            item = item[k] if not isinstance(item, str) else ord(item[k])
        elif item is None or item is NOVALUE:
            raise _ExecError("error calling index: index of untyped nil")
        else:
            raise _ExecError(f"error calling index: can't index item of type {_type_name(item)}")
    return item


def _slice(item, *idx):
    if not isinstance(item, (list, tuple, str)):
        raise _ExecError(f"error calling slice: can't slice item of type {_type_name(item)}")
    if len(idx) > 2:
        idx = idx[:2]
    lo = _int(idx[0]) if idx else 0
    hi = _int(idx[1]) if len(idx) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise _ExecError(f"error calling slice: index out of range: {hi if hi > len(item) else lo}")
    return item[lo:hi]


def _cmp_ok(a, b):
    num = (int, float)
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, num) and isinstance(b, num):
        return True
    return type(a) is type(b)


def _eq(a, *bs):
    if not bs:
        raise _ExecError("error calling eq: missing argument for comparison")
    for b in bs:
        if a is NOVALUE or b is NOVALUE or a is None or b is None:
            if (a is None or a is NOVALUE) and (b is None or b is NOVALUE):
                return True
            if not isinstance(a, (list, dict)) and not isinstance(b, (list, dict)):
                raise _ExecError("error calling eq: incompatible types for comparison")
            continue
        if not _cmp_ok(a, b):
            raise _ExecError("error calling eq: incompatible types for comparison")
        if a == b:
            return True
    return False


def _ordered(name, op):
    def f(a, b):
        if not _cmp_ok(a, b) or not isinstance(a, (int, float, str)) or isinstance(a, bool):
            raise _ExecError(f"error calling {name}: incompatible types for comparison")
        return op(a, b)
    return f


def _sprint(*args) -> str:
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(printable(a))
    return "".join(out)


def _quote(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20 or o == 0x7f:
            out.append(f"\\x{o:02x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def _printf(fmt, *args) -> str:
    """Go's fmt.Sprintf for the verbs templates use: %v %s %d %q %t %x %X %o %f %e %g %c %%,
    with flags (-+ 0#), width and precision."""
    fmt = _str(fmt)
    out, i, n = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        j = i + 1
        flags = ""
        while j < len(fmt) and fmt[j] in "-+ 0#":
            flags += fmt[j]
            j += 1
        width = ""
        while j < len(fmt) and fmt[j].isdigit():
            width += fmt[j]
            j += 1
        prec = None
        if j < len(fmt) and fmt[j] == ".":
            j += 1
            prec = ""
            while j < len(fmt) and fmt[j].isdigit():
                prec += fmt[j]
                j += 1
        if j >= len(fmt):
            out.append("%!(NOVERB)")
            break
        verb = fmt[j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        if n >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[n]
        n += 1
        spec = flags + width + ("." + prec if prec is not None else "")
        if verb in "vs":
            s = printable(a)
            if prec:
                s = s[:int(prec)]
            out.append(_padded(s, flags, width))
        elif verb == "q":
            out.append(_padded(_quote(a) if isinstance(a, str) else printable(a), flags, width))
        elif verb == "t" and isinstance(a, bool):
            out.append(_padded(printable(a), flags, width))
        elif verb in "dxXobc" and isinstance(a, int) and not isinstance(a, bool):
            if verb == "c":
                out.append(_padded(chr(a), flags, width))
            else:
                pv = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb]
                out.append(format(a, spec.replace(" ", " ") + pv) if verb != "b" else
                           _padded(format(a, "b"), flags, width))
        elif verb in "xX" and isinstance(a, str):
            h = a.encode().hex()
            out.append(_padded(h.upper() if verb == "X" else h, flags, width))
        elif verb in "feEgG" and isinstance(a, (int, float)) and not isinstance(a, bool):
            if prec is None and verb in "fe":
                spec += ".6"
            out.append(format(float(a), spec + verb))
        else:
            out.append(f"%!{verb}({_type_name(a)}={printable(a)})")
    if n < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{_type_name(a)}={printable(a)}" for a in args[n:]) + ")")
    return "".join(out)


def _padded(s: str, flags: str, width: str) -> str:
    if not width:
        return s
    w = int(width)
    if "-" in flags:
        return s.ljust(w)
    return s.rjust(w, "0" if "0" in flags else " ")


def _html(*args) -> str:
    s = _sprint(*args)
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;").replace("\0", "\ufffd"))


def _js(*args) -> str:
    s = _sprint(*args)
    rep = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
           "=": "\\u003D", "\n": "\\u000A", "\r": "\\u000D", "\t": "\\u0009"}
    return "".join(rep.get(ch, ch) for ch in s)


def _urlquery(*args) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_sprint(*args))


def _split(s, sep):
    s, sep = _str(s), _str(sep)
    if sep == "":
        return list(s)
    return s.split(sep)


#: name -> (function, fixed number of arguments or None for variadic, minimum)
FUNCS = {
    # Go's
    "not": (lambda v: not truth(v), 1, 1),
    "len": (_len, 1, 1),
    "index": (_index, None, 1),
    "slice": (_slice, None, 1),
    "eq": (_eq, None, 1),
    "ne": (lambda a, b: not _eq(a, b), 2, 2),
    "lt": (_ordered("lt", lambda a, b: a < b), 2, 2),
    "le": (_ordered("le", lambda a, b: a <= b), 2, 2),
    "gt": (_ordered("gt", lambda a, b: a > b), 2, 2),
    "ge": (_ordered("ge", lambda a, b: a >= b), 2, 2),
    "print": (_sprint, None, 0),
    "printf": (_printf, None, 1),
    "println": (lambda *a: " ".join(printable(x) for x in a) + "\n", None, 0),
    "html": (_html, None, 0),
    "js": (_js, None, 0),
    "urlquery": (_urlquery, None, 0),
    "and": (None, None, 1),  # short-circuit: evaluated by the executor
    "or": (None, None, 1),
    # docker's (cli/templates)
    "json": (_json, 1, 1),
    "split": (_split, 2, 2),
    "join": (_join, 2, 2),
    "title": (_title, 1, 1),
    "lower": (lambda s: _str(s).lower(), 1, 1),
    "upper": (lambda s: _str(s).upper(), 1, 1),
    "pad": (_pad, 3, 3),
    "truncate": (_truncate, 2, 2),
}


# -- execution -------------------------------------------------------------------------


class _ExecError(Exception):
    pass


class Template:
    """A parsed template; :meth:`execute` renders it for one value."""

    def __init__(self, text: str, name: str = "", funcs: dict | None = None):
        self.text, self.name = text, name
        self.funcs = dict(FUNCS)
        if funcs:
            self.funcs.update(funcs)
        lexer = _Lexer(text, name)
        parser = _Parser(lexer, self.funcs)
        self.tree = parser.parse()
        self.defines = parser.defines
        self._lexer = lexer

    def execute(self, data) -> str:
        out: list[str] = []
        self._vars = [("$", data)]
        try:
            self._walk(self.tree, data, out)
        except (_Break, _Continue):  # pragma: no cover - the parser refuses them outside range
            pass
        return "".join(out)

    # errors as Go's: template: NAME:LINE:COL: executing "NAME" at <NODE>: MSG
    def _fail(self, node, msg):
        text = self.text[:node.pos]
        nl = text.rfind("\n")
        col = node.pos if nl < 0 else node.pos - nl - 1
        line = 1 + text.count("\n")
        raise TemplateError(f"template: {self.name}:{line}:{col}: executing \"{self.name}\" at "
                            f"<{node}>: {msg}")

    def _walk(self, nodes, dot, out):
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Pipe):
                v = self._pipe(node, dot)
                if not node.decl:
                    out.append(printable(v))
            else:
                self._control(node, dot, out)

    def _control(self, node, dot, out):
        kind = node.kind
        if kind == "break":
            raise _Break()
        if kind == "continue":
            raise _Continue()
        mark = len(self._vars)
        try:
            if kind == "template":
                body = self.defines.get(node.name)
                if body is None:
                    self._fail(node.pipe.cmds[0][0] if node.pipe else _Dot(node.pos),
                               f"template \"{node.name}\" not defined")
                arg = self._pipe(node.pipe, dot) if node.pipe else None
                saved, self._vars = self._vars, [("$", arg)]
                try:
                    self._walk(body, arg, out)
                finally:
                    self._vars = saved
                return
            val = self._pipe(node.pipe, dot)
            if kind == "if":
                self._walk(node.body if truth(val) else (node.other or []), dot, out)
            elif kind == "with":
                if truth(val):
                    self._walk(node.body, val, out)
                elif node.other:
                    self._walk(node.other, dot, out)
            else:
                self._range(node, val, dot, out)
        finally:
            del self._vars[mark:]

    def _range(self, node, val, dot, out):
        if isinstance(val, dict):
            pairs = [(k, val[k]) for k in sorted(val)]
        elif isinstance(val, (list, tuple)):
            pairs = list(enumerate(val))
        elif isinstance(val, int) and not isinstance(val, bool):
            pairs = [(i, i) for i in range(val)]
        elif val is None or val is NOVALUE:
            pairs = []
        else:
            self._fail(node.pipe, f"range can't iterate over {printable(val)}")
        decl = node.pipe.decl
        if not pairs:
            if node.other:
                self._walk(node.other, dot, out)
            return
        mark = len(self._vars)
        for k, v in pairs:
            if len(decl) == 1:
                self._set(decl[0], v, node.pipe.assign, mark)
            elif len(decl) == 2:
                self._set(decl[0], k, node.pipe.assign, mark)
                self._set(decl[1], v, node.pipe.assign, mark)
            try:
                self._walk(node.body, v, out)
            except _Break:
                break
            except _Continue:
                continue
            finally:
                if not node.pipe.assign:
                    del self._vars[mark:]

    def _set(self, name, value, assign, mark=None):
        if assign:
            for i in range(len(self._vars) - 1, -1, -1):
                if self._vars[i][0] == name:
                    self._vars[i] = (name, value)
                    return
        self._vars.append((name, value))

    def _lookup(self, node):
        for name, value in reversed(self._vars):
            if name == node.name:
                return value
        self._fail(node, f"undefined variable: {node.name}")

    def _pipe(self, pipe, dot):
        val, first = None, True
        for cmd in pipe.cmds:
            val = self._command(cmd, dot, None if first else (val,))
            first = False
        for name in pipe.decl[:1] if len(pipe.decl) == 1 else ():
            self._set(name, val, pipe.assign)
        return val

    def _command(self, cmd, dot, final):
        head = cmd[0]
        if isinstance(head, _Ident):
            return self._call(head, cmd[1:], dot, final)
        if isinstance(head, _Field):
            return self._field(head, dot, cmd[1:], final)
        if len(cmd) > 1 or final is not None:
            self._fail(head, f"can't give argument to non-function {head}")
        return self._arg(head, dot)

    def _arg(self, node, dot):
        if isinstance(node, _Lit):
            return node.val
        if isinstance(node, _Dot):
            return _whole(dot)
        if isinstance(node, _Var):
            return _whole(self._lookup(node))
        if isinstance(node, _Field):
            return self._field(node, dot, (), None)
        if isinstance(node, _Paren):
            mark = len(self._vars)
            v = self._pipe(node.pipe, dot)
            if not node.pipe.decl:
                del self._vars[mark:]
            return v
        if isinstance(node, _Ident):
            return self._call(node, (), dot, None)
        self._fail(node, "can't evaluate")  # pragma: no cover

    def _field(self, node, dot, args, final):
        recv = dot if node.recv is None else self._arg(node.recv, dot)
        names = node.names
        for i, name in enumerate(names):
            last = i == len(names) - 1
            if isinstance(recv, dict):
                recv = recv.get(name, NOVALUE)
            elif recv is None or recv is NOVALUE:
                recv = NOVALUE
            elif callable(getattr(recv, "template_field", None)):
                recv = recv.template_field(name)
            else:
                self._fail(node, f"can't evaluate field {name} in type {_type_name(recv)}")
            if callable(recv) and not isinstance(recv, type):
                a = [self._arg(x, dot) for x in args] if last else []
                if last and final is not None:
                    a += list(final)
                try:
                    recv = recv(*a)
                except _ExecError as e:
                    self._fail(node, str(e))
                except TypeError:
                    self._fail(node, f"wrong number of args for {name}: got {len(a)}")
                continue
            if last and (args or final is not None):
                self._fail(node, f"{name} has arguments but cannot be invoked as function")
        return recv

    def _call(self, node, args, dot, final):
        fn, nargs, least = self.funcs[node.name]
        given = len(args) + (1 if final is not None else 0)
        if node.name in ("and", "or"):  # Go 1.18: evaluated left to right, stopping early
            if given < 1:
                self._fail(node, f"wrong number of args for {node.name}: want at least 1 got 0")
            want, v = node.name == "or", None
            for a in args:
                v = self._arg(a, dot)
                if truth(v) == want:
                    return v
            return final[0] if final is not None else v
        if (nargs is not None and given != nargs) or given < least:
            want = f"want {nargs}" if nargs is not None else f"want at least {least}"
            self._fail(node, f"wrong number of args for {node.name}: {want} got {given}")
        vals = [self._arg(a, dot) for a in args]
        if final is not None:
            vals.append(final[0])
        try:
            return fn(*vals)
        except _ExecError as e:
            msg = str(e)
            if not msg.startswith("error calling"):
                msg = f"error calling {node.name}: {msg}"
            self._fail(node, msg)


def parse(text: str, funcs: dict | None = None) -> Template:
    """Parse ``text``; a TemplateError says why it cannot be, docker's way."""
    try:
        return Template(text, funcs=funcs)
    except TemplateError as e:
        raise TemplateError(f"template parsing error: {e}") from None


def render(text: str, data) -> str:
    return parse(text).execute(data)


# -- docker's formatting conventions ---------------------------------------------------


def is_table(fmt: str) -> bool:
    return fmt.startswith("table")


def expand_escapes(fmt: str) -> str:
    """docker turns the two characters ``\\t`` and ``\\n`` a shell passes into a tab and a
    newline before parsing (cli/command/formatter: ``strings.NewReplacer``)."""
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


def tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> list[str]:
    """Go's text/tabwriter as docker sets it up (minwidth 10, tab width 1, padding 3, pad
    with spaces): every tab-terminated cell of a column padded to the column's width."""
    rows = [ln.split("\t") for ln in lines]
    ncols = max((len(r) for r in rows), default=0)
    widths = []
    for c in range(ncols - 1):
        cells = [len(r[c]) for r in rows if c < len(r) - 1]
        widths.append(max([max(minwidth, w + padding) for w in cells] or [0]))
    out = []
    for r in rows:
        out.append("".join(cell.ljust(widths[c]) if c < len(r) - 1 else cell
                           for c, cell in enumerate(r)))
    return out


def row_template(fmt: str) -> tuple[str, bool]:
    """(the template text, whether it is a table) of a listing's ``--format``, as docker's
    formatter prepares it: ``table`` taken off, spaces trimmed, ``\\t``/``\\n`` expanded."""
    table = is_table(fmt)
    if table:
        fmt = fmt[len("table"):]
    return expand_escapes(fmt.strip(" ")), table


def render_rows(fmt: str, rows: list, headers: dict | None = None) -> list[str]:
    """Lines for ``--format FMT`` over ``rows`` (dicts), docker's way: a ``table`` format
    prints a header (the ``headers`` names of the fields, the template run over them) and
    aligns the tab-separated columns; any other format is run once per row, as is."""
    text, table = row_template(fmt)
    tmpl = parse(text)
    out = []
    if table:
        out.append(tmpl.execute(_HeaderNames(headers or {})))
    for r in rows:
        out.append(tmpl.execute(r))
    if table:
        return tabwrite("\n".join(out).split("\n"))
    return out


class _HeaderNames(dict):
    """The data a table's header row is rendered from: every field is its column's name
    (``{{.ID}}`` -> ``CONTAINER ID``); methods such as ``{{.Label "k"}}`` too."""

    def __init__(self, names: dict):
        super().__init__()
        self._names = names

    def get(self, key, default=None):
        name = self._names.get(key, key.upper())
        return (lambda *a: name) if key in self._callables else name

    _callables = ("Label",)
