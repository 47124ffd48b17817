"""Bounded work for process expressions and scripts.

The allowed subset (expressions.py) has no loops, but a few operations still build a
result whose size is not bounded by the text of the expression: repeating a sequence
(`"x" * n`, `[0] * n`), multiplying integers, padding to a format width (`"%2000000000d" % 1`,
`f"{x:>{n}}"`), joining, replacing, concatenating, and turning a value into text (`str(x)`,
f-strings) when lists are nested. Two guards:

* at deploy (and before every evaluation): `static_problem` refuses what the text already
  shows: a repetition whose constant count and operand build more than
  MAX_STATIC_REPEAT characters or items, a constant format width or precision over
  MAX_STATIC_WIDTH, a product of constants with more than MAX_INT_DIGITS digits;
* at run time: `bounded_tree` rewrites the checked syntax tree so that `*`, `+`, `%`,
  f-string formatting, method calls, `str`, `sum` and every value a script assigns (or an
  expression returns) go through the helpers below. They compute the size of the result
  *before* building it and raise ExpressionTooLarge (an incident, never a crash or a huge
  allocation) past MAX_SIZE characters or items, or an integer past MAX_INT_DIGITS digits.

"Size" counts the characters of a text (bytes of bytes) and the items of a list, tuple, set
or dict plus the sizes of those items, through nesting: `[s] * 1000` has the size
1000 + 1000 × len(s), which is what it costs to show or store it. Counting stops as soon as
the limit is passed, so checking never costs more than MAX_SIZE steps.

Everything here depends only on the values, never on time or memory, so a replay meets the
same incident at the same step.
"""

from __future__ import annotations

import ast
import copy
import math
import re

MAX_SIZE = 1_000_000          # characters or items one evaluation may build
MAX_INT_DIGITS = 4_300        # Python's own limit for turning an int into text (and JSON)
MAX_STATIC_REPEAT = 100_000   # characters or items a repetition with a constant count may build
MAX_STATIC_WIDTH = 1_000      # a constant format width or precision

_MAX_INT_BITS = math.ceil(MAX_INT_DIGITS * math.log2(10))
_TEXTS = (str, bytes, bytearray)
_SEQUENCES = (str, bytes, bytearray, list, tuple)

# printf-style conversion: %[(key)][flags][width][.precision][length]type
_PRINTF = re.compile(r"%(?:\((?P<key>[^)]*)\))?(?P<flags>[-#0 +]*)(?P<width>\*|\d+)?"
                     r"(?:\.(?P<prec>\*|\d*))?[hlL]?(?P<type>[\s\S])?")
_DIGITS = re.compile(r"(\.?)(\d+)")      # in a format spec: a width, or a precision after "."


class ExpressionTooLarge(ValueError):
    """Evaluating the expression would build a value past the limits; nothing was built."""


def _num(n: int) -> str:
    """A number for a message; very large ones as a power of ten (str() refuses > 4300 digits)."""
    n = abs(n)
    if n.bit_length() <= 60:
        return f"{n:,}"
    return f"about 10^{int((n.bit_length() - 1) * math.log10(2))}"


def _to_int(digits: str) -> int:
    # int() of more than 4300 digits raises; any such width is past every limit anyway
    return int(digits) if len(digits) <= 18 else 10 ** 18


# --- size ---------------------------------------------------------------------------------

def size_of(value, budget: int = MAX_SIZE) -> int:
    """Characters of texts plus items of containers, through nesting; stops once past `budget`
    (the number returned is then a lower bound, always > budget)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _TEXTS):
            total += len(item)
        elif isinstance(item, dict):
            total += len(item)
            if total > budget:
                return total
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += len(item)
            if total > budget:
                return total
            stack.extend(item)
        if total > budget:
            return total
    return total


def _unit(value, size: int | None = None) -> str:
    if isinstance(value, str):
        return "characters"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if size is not None and isinstance(value, (list, tuple)) and size == len(value):
        return "items"
    return "characters and items"


def _described(value, size: int) -> str:
    """'a text', 'a text of 3 characters', 'a list of 2 items', 'a list of 400,001 characters
    and items in all' (nested texts and lists counted)."""
    kind = {str: "a text", bytes: "bytes", bytearray: "bytes", list: "a list",
            tuple: "a tuple"}.get(type(value), "a value")
    if size <= 1:
        return kind
    unit = _unit(value, size)
    return f"{kind} of {_num(size)} {unit}" + (" in all" if unit == "characters and items" else "")


def _too_large(what: str, total: int, unit: str = "characters and items"):
    raise ExpressionTooLarge(f"{what} would build at least {_num(total)} {unit}; "
                             f"an expression may build at most {MAX_SIZE:,}")


# --- run-time helpers ----------------------------------------------------------------------

def bounded_mul(a, b):
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > _MAX_INT_BITS:
            digits = int((a.bit_length() + b.bit_length() - 1) * math.log10(2))
            raise ExpressionTooLarge(f"multiplying these numbers would give a number of about {digits:,} "
                                     f"digits; a number may have at most {MAX_INT_DIGITS:,}")
        return a * b
    seq, count = (a, b) if isinstance(b, int) else (b, a)
    if isinstance(seq, _SEQUENCES) and isinstance(count, int) and count > 0:
        size = size_of(seq, MAX_SIZE // count)
        if size * count > MAX_SIZE:
            _too_large(f"repeating {_described(seq, size)} {_num(count)} times", size * count,
                       _unit(seq, size))
    return a * b


def bounded_add(a, b):
    if isinstance(a, _SEQUENCES) and type(a) is type(b):
        total = size_of(a) + size_of(b)
        if total > MAX_SIZE:
            _too_large("adding with +", total, _unit(a))
    return a + b


def _printf_check(fmt, args, constant_arg=None):
    """Widths and precisions of a %-format: (the largest, its conversion text, "width" or
    "precision", their sum). `*` takes its number from `args` (through `constant_arg` when checking
    statically); an unknown one counts 0."""
    text = fmt.decode("latin-1") if isinstance(fmt, (bytes, bytearray)) else fmt
    values = list(args) if isinstance(args, tuple) else [args]
    index, widest, widest_spec, widest_part, padding = 0, 0, None, "width", 0
    for match in _PRINTF.finditer(text):
        if match.group("type") == "%":
            continue
        for part in ("width", "prec"):
            spec = match.group(part)
            if spec == "*":
                value = values[index] if index < len(values) else None
                index += 1
                if constant_arg is not None:
                    value = constant_arg(value)
                number = abs(value) if isinstance(value, int) else 0
            else:
                number = _to_int(spec) if spec else 0
            padding += number
            if number > widest:
                widest, widest_spec = number, match.group(0)
                widest_part = "width" if part == "width" else "precision"
        if match.group("key") is None:
            index += 1
    return widest, widest_spec, widest_part, padding


def bounded_mod(a, b):
    if isinstance(a, _TEXTS):
        widest, spec, _, padding = _printf_check(a, b)
        if widest > MAX_SIZE:
            _too_large(f"the format '{spec}'", widest, "characters")
        total = len(a) + padding + size_of(b)
        if total > MAX_SIZE:
            _too_large("this %-format", total, "characters")
    return a % b


def bounded_format(value, conversion, spec):
    """One f-string replacement field: `{value!conversion:spec}`."""
    spec = spec or ""
    padding = 0
    for _, digits in _DIGITS.findall(spec):
        number = _to_int(digits)
        if number > MAX_SIZE:
            _too_large(f"the format ':{spec[:40]}'", number, "characters")
        padding += number
    total = size_of(value) + padding
    if total > MAX_SIZE:
        _too_large("formatting this value", total, "characters")
    if conversion == ord("s"):
        value = str(value)
    elif conversion == ord("r"):
        value = repr(value)
    elif conversion == ord("a"):
        value = ascii(value)
    return format(value, spec)


def bounded_str(*args, **kwargs):
    if args:
        size = size_of(args[0])
        if size > MAX_SIZE:
            _too_large("str() of this value", size)
    return str(*args, **kwargs)


def bounded_sum(iterable, /, start=0):
    """sum(); adding up lists or tuples is checked as it goes (and done in linear time)."""
    if not isinstance(start, (list, tuple)):
        return sum(iterable, start)
    kind = list if isinstance(start, list) else tuple
    total = size_of(start)
    out = list(start)
    for item in iterable:
        if not isinstance(item, kind):
            raise TypeError(f'can only concatenate {kind.__name__} (not "{type(item).__name__}") '
                            f'to {kind.__name__}')
        total += size_of(item)
        if total > MAX_SIZE:
            _too_large(f"sum() of these {kind.__name__}s", total)
        out.extend(item)
    return out if kind is list else tuple(out)


def make_bounded_method(allowed: set[str]):
    def bounded_method(obj, name, /, *args, **kwargs):
        """`obj.name(*args)`: join and replace are sized before they run."""
        if name not in allowed or name.startswith("_"):
            raise AttributeError(f"'.{name}' may not be called")
        if obj is bounded_str:
            obj = str
        if isinstance(obj, type):  # str.join(",", parts), dict.get(d, "k"): the unbound form
            if args and isinstance(args[0], obj):
                return bounded_method(args[0], name, *args[1:], **kwargs)
            return getattr(obj, name)(*args, **kwargs)
        if name == "join" and isinstance(obj, _TEXTS) and len(args) == 1 and not kwargs:
            parts = list(args[0])
            total = len(obj) * max(len(parts) - 1, 0)
            for part in parts:
                total += len(part) if isinstance(part, _TEXTS) else 0
                if total > MAX_SIZE:
                    _too_large("join()", total, _unit(obj))
            return obj.join(parts)
        if (name == "replace" and isinstance(obj, _TEXTS) and len(args) >= 2 and not kwargs
                and isinstance(args[0], type(obj)) and isinstance(args[1], type(obj))):
            old, new = args[0], args[1]
            limit = args[2] if len(args) > 2 and isinstance(args[2], int) else -1
            hits = len(obj) + 1 if not old else obj.count(old)
            if limit >= 0:
                hits = min(hits, limit)
            total = len(obj) + hits * (len(new) - len(old))
            if total > MAX_SIZE:
                _too_large("replace()", total, _unit(obj))
        return getattr(obj, name)(*args, **kwargs)
    return bounded_method


def bounded_result(value):
    """What an expression gives or a script assigns: checked once more as a whole (nested
    displays can grow without any of the operators above)."""
    size = size_of(value)
    if size > MAX_SIZE:
        raise ExpressionTooLarge(f"the value would have at least {_num(size)} characters and items "
                                 f"(counted through nested lists and dicts); an expression may build "
                                 f"at most {MAX_SIZE:,}")
    return value


def runtime_names(safe_methods: set[str]) -> dict:
    """The helpers the rewritten tree calls, by the names `bounded_tree` uses. Names starting
    with '_' cannot be written in a process, so no expression can reach or replace them."""
    return {
        "__cf_mul": bounded_mul, "__cf_add": bounded_add, "__cf_mod": bounded_mod,
        "__cf_format": bounded_format, "__cf_method": make_bounded_method(set(safe_methods)),
        "__cf_result": bounded_result,
    }


# --- the rewrite ---------------------------------------------------------------------------

_OPERATOR_HELPERS = {ast.Mult: "__cf_mul", ast.Add: "__cf_add", ast.Mod: "__cf_mod"}


def _call(name: str, args: list, like: ast.AST, keywords=None) -> ast.Call:
    return ast.copy_location(ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args,
                                      keywords=keywords or []), like)


def _plain(node) -> bool:
    """A value read as it is (a name, a constant, a subscript of one): nothing is built."""
    while isinstance(node, ast.Subscript):
        node = node.value
    return isinstance(node, (ast.Name, ast.Constant))


class _Bounder(ast.NodeTransformer):
    def visit_BinOp(self, node):
        self.generic_visit(node)
        helper = _OPERATOR_HELPERS.get(type(node.op))
        return _call(helper, [node.left, node.right], node) if helper else node

    def visit_FormattedValue(self, node):
        self.generic_visit(node)
        spec = node.format_spec if node.format_spec is not None else ast.Constant(value="")
        call = _call("__cf_format", [node.value, ast.Constant(value=node.conversion), spec], node)
        return ast.copy_location(ast.FormattedValue(value=call, conversion=-1, format_spec=None), node)

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute):
            return _call("__cf_method", [node.func.value, ast.Constant(value=node.func.attr), *node.args],
                         node, node.keywords)
        return node

    def visit_Assign(self, node):
        self.generic_visit(node)
        if not _plain(node.value):
            node.value = _call("__cf_result", [node.value], node.value)
        return node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        helper = _OPERATOR_HELPERS.get(type(node.op))
        if helper is None:
            return node
        current = copy.deepcopy(node.target)
        current.ctx = ast.Load()
        value = _call("__cf_result", [_call(helper, [current, node.value], node)], node)
        return ast.copy_location(ast.Assign(targets=[node.target], value=value), node)


def bounded_tree(tree: ast.AST) -> ast.AST:
    """A rewritten copy of a checked expression (ast.Expression) or script (ast.Module)."""
    tree = _Bounder().visit(copy.deepcopy(tree))
    if isinstance(tree, ast.Expression) and not _plain(tree.body):
        tree.body = _call("__cf_result", [tree.body], tree.body)
    return ast.fix_missing_locations(tree)


# --- deploy-time checks --------------------------------------------------------------------

def _const_int(node):
    """The value of an integer written with constants only (`2000000000`, `1000 * 1000`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _const_int(node.operand)
        return None if value is None else (-value if isinstance(node.op, ast.USub) else value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)):
        left, right = _const_int(node.left), _const_int(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Mult):
            if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                return None   # refused on its own by the product check
            return left * right
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
            return None
        return {ast.Add: lambda: left + right, ast.Sub: lambda: left - right,
                ast.FloorDiv: lambda: left // right, ast.Mod: lambda: left % right}[type(node.op)]()
    return None


_TEXT_METHODS = {"lower", "upper", "strip", "replace", "join"}


def _sequence(node):
    """(kind, unit, least length, exact) of a sequence the text shows, or None if unknown."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return ("a text", "characters", len(node.value), True)
    if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
        return ("bytes", "bytes", len(node.value), True)
    if isinstance(node, (ast.List, ast.Tuple)):
        return ("a list" if isinstance(node, ast.List) else "a tuple", "items", len(node.elts), True)
    if isinstance(node, ast.JoinedStr):
        fixed = sum(len(v.value) for v in node.values if isinstance(v, ast.Constant))
        return ("a text", "characters", fixed, False)
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("str", "list", "tuple", "sorted"):
            return {"str": ("a text", "characters", 0, False), "tuple": ("a tuple", "items", 0, False)
                    }.get(func.id, ("a list", "items", 0, False))
        if isinstance(func, ast.Attribute) and func.attr in _TEXT_METHODS:
            return ("a text", "characters", 0, False)
        if isinstance(func, ast.Attribute) and func.attr == "split":
            return ("a list", "items", 0, False)
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _sequence(node.left), _sequence(node.right)
        if left is None and right is None:
            return None
        kind, unit = (left or right)[:2]
        return (kind, unit, (left[2] if left else 0) + (right[2] if right else 0), False)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for seq_node, count_node in ((node.left, node.right), (node.right, node.left)):
            count = _const_int(count_node)
            seq = _sequence(seq_node)
            if seq is not None and count is not None:
                return (seq[0], seq[1], seq[2] * max(count, 0), seq[3])
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        if isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            return ("a text", "characters", 0, False)
        return None
    if isinstance(node, ast.IfExp):
        body, orelse = _sequence(node.body), _sequence(node.orelse)
        if body is not None and orelse is not None:
            return (body[0], body[1], min(body[2], orelse[2]), False)
    return None


def _repetition_problem(node: ast.BinOp) -> str | None:
    for seq_node, count_node in ((node.left, node.right), (node.right, node.left)):
        count = _const_int(count_node)
        seq = _sequence(seq_node)
        if seq is None or count is None or count <= 0:
            continue
        kind, unit, length, exact = seq
        length = length if exact else max(length, 1)
        total = length * count
        if total > MAX_STATIC_REPEAT:
            what = kind + (f" of {_num(length)} {unit}" if length > 1 else "")
            return (f"repeats {what} {_num(count)} times ({_num(total)} {unit}); a repetition in a "
                    f"process may build at most {MAX_STATIC_REPEAT:,} {unit}")
    return None


def _product_problem(node: ast.BinOp) -> str | None:
    left, right = _const_int(node.left), _const_int(node.right)
    if left is None or right is None:
        return None
    if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
        digits = int((left.bit_length() + right.bit_length() - 1) * math.log10(2))
        return (f"multiplies constants into a number of about {digits:,} digits; "
                f"a number may have at most {MAX_INT_DIGITS:,}")
    return None


def _width_problem(number: int, spec: str, part: str) -> str:
    return (f"formats with a {part} of {_num(number)} ('{spec[:40]}'); "
            f"a format width or precision may be at most {MAX_STATIC_WIDTH:,}")


def _printf_problem(node: ast.BinOp) -> str | None:
    if not (isinstance(node.left, ast.Constant) and isinstance(node.left.value, (str, bytes))):
        return None
    args = tuple(node.right.elts) if isinstance(node.right, ast.Tuple) else node.right
    widest, spec, part, _ = _printf_check(node.left.value, args, constant_arg=_const_int)
    return _width_problem(widest, spec, part) if widest > MAX_STATIC_WIDTH else None


def _spec_problem(node: ast.FormattedValue) -> str | None:
    spec = node.format_spec
    if not isinstance(spec, ast.JoinedStr):
        return None
    parts = []
    for value in spec.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif (isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Constant)
              and value.conversion == -1 and value.format_spec is None):
            parts.append(str(value.value.value))
        else:
            parts.append("{…}")   # known only at run time; a separator between digit runs
    text = "".join(parts)
    for dot, digits in _DIGITS.findall(text):
        number = _to_int(digits)
        if number > MAX_STATIC_WIDTH:
            return _width_problem(number, ":" + text, "precision" if dot else "width")
    return None


def static_problem(tree: ast.AST) -> tuple[ast.AST, str] | None:
    """The first operation whose constants already show unbounded work: (node, reason)."""
    for node in ast.walk(tree):
        reason = None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            reason = _repetition_problem(node) or _product_problem(node)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            reason = _printf_problem(node)
        elif isinstance(node, ast.FormattedValue):
            reason = _spec_problem(node)
        if reason:
            return node, reason
    return None
