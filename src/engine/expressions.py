"""What process designers may write in expressions and scripts, and the engine that runs them.

SpiffWorkflow evaluates gateway conditions, timer expressions and service-task parameters
with `eval`, and scripts with `exec`. That is not a sandbox, so we accept only a small,
explicit subset of Python, checked by walking the syntax tree when a process is deployed and
again (cached) before every evaluation:

* literals, names of task data, arithmetic (+ - * / // %), comparisons, `and`/`or`/`not`,
  conditional expressions, subscripts (`deadlines["accept"]`), list/tuple/dict/set displays,
  f-strings;
* calls of the functions in SAFE_FUNCTIONS, and of the methods in SAFE_METHODS on a value;
* in scripts also: assignment to a name or subscript, augmented assignment, `if`, `pass`.

Refused: any name or attribute beginning with an underscore (no dunder access), imports,
attribute access other than a safe method call, lambdas, comprehensions, loops, function or
class definitions, `**` (unbounded work), walrus, `global`, `del`, `with`, `try`, `yield`.

Work is bounded too (expression_bounds.py): constants that already show a huge result
(`"x" * 2000000000`, `"%2000000000d" % 1`) are refused with the rest, and what is evaluated
runs as a rewritten tree whose `*`, `+`, `%`, formatting and method calls check the size of
their result before building it; past the limits the evaluation fails with
ExpressionTooLarge, which the engine records as an incident naming the expression.
"""

from __future__ import annotations

import ast
import copy
from functools import lru_cache

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from .expression_bounds import (ExpressionTooLarge, bounded_str, bounded_sum, bounded_tree,
                                runtime_names, static_problem)

SAFE_FUNCTIONS = {
    "abs": abs, "all": all, "any": any, "bool": bool, "dict": dict, "float": float,
    "int": int, "len": len, "list": list, "max": max, "min": min, "round": round,
    "set": set, "sorted": sorted, "str": str, "sum": sum, "tuple": tuple,
}

SAFE_METHODS = {
    "get", "keys", "values", "items", "lower", "upper", "strip", "startswith",
    "endswith", "split", "join", "replace", "count", "index", "isdigit",
}

_EXPRESSION_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.Add, ast.Sub, ast.Mult,
    ast.Div, ast.FloorDiv, ast.Mod, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.Compare,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is,
    ast.IsNot, ast.IfExp, ast.Name, ast.Load, ast.Constant, ast.Subscript, ast.Slice,
    ast.List, ast.Tuple, ast.Dict, ast.Set, ast.Call, ast.keyword, ast.Attribute,
    ast.JoinedStr, ast.FormattedValue,
)
_SCRIPT_NODES = _EXPRESSION_NODES + (
    ast.Module, ast.Assign, ast.AugAssign, ast.If, ast.Pass, ast.Expr, ast.Store,
)

_REFUSED_NAMES = {
    ast.Import: "imports", ast.ImportFrom: "imports", ast.Lambda: "lambda functions",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions", ast.For: "loops", ast.While: "loops",
    ast.FunctionDef: "function definitions", ast.ClassDef: "class definitions",
    ast.Pow: "the power operator **", ast.NamedExpr: "the := operator",
    ast.Global: "global", ast.Nonlocal: "nonlocal", ast.Delete: "del", ast.With: "with",
    ast.Try: "try", ast.Raise: "raise", ast.Yield: "yield", ast.Await: "await",
    ast.Starred: "* unpacking", ast.Return: "return",
}


class ExpressionRefused(ValueError):
    """The expression or script uses something outside the allowed subset."""


def _describe(node: ast.AST) -> str:
    for kind, words in _REFUSED_NAMES.items():
        if isinstance(node, kind):
            return words
    return type(node).__name__


def _check_tree(tree: ast.AST, allowed: tuple, text: str) -> None:
    for node in ast.walk(tree):  # underscore names first: the clearest reason to refuse
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
        if name.startswith("_"):
            raise ExpressionRefused(f"'{text.strip()}' uses '{name}'; names starting with '_' are not allowed")
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ExpressionRefused(f"'{text.strip()}' uses {_describe(node)}, which process expressions may not use")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ExpressionRefused(f"'{text.strip()}' uses the name '{node.id}'; names starting with '_' are not allowed")
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise ExpressionRefused(f"'{text.strip()}' accesses '{node.attr}'; names starting with '_' are not allowed")
            if node.attr not in SAFE_METHODS:
                raise ExpressionRefused(
                    f"'{text.strip()}' accesses '.{node.attr}'; only these methods may be called: "
                    + ", ".join(sorted(SAFE_METHODS)))
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                if func.id not in SAFE_FUNCTIONS:
                    raise ExpressionRefused(
                        f"'{text.strip()}' calls '{func.id}', which is not one of the allowed functions: "
                        + ", ".join(sorted(SAFE_FUNCTIONS)))
            elif not isinstance(func, ast.Attribute):
                raise ExpressionRefused(f"'{text.strip()}' calls something that is not a plain function or method")
    # An attribute is only allowed as the function of a call.
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in called:
            raise ExpressionRefused(f"'{text.strip()}' reads the attribute '.{node.attr}'; use data['key'] instead")
    bounded = static_problem(tree)
    if bounded is not None:
        node, reason = bounded
        lines = text.splitlines()
        if isinstance(tree, ast.Module) and 0 < getattr(node, "lineno", 0) <= len(lines):
            # a script: quote the line, not the whole script
            raise ExpressionRefused(f"line {node.lineno}: '{lines[node.lineno - 1].strip()}' {reason}")
        raise ExpressionRefused(f"'{text.strip()}' {reason}")


@lru_cache(maxsize=4096)
def check_expression(text: str) -> ast.Expression:
    """Parse and check an expression; raise ExpressionRefused or SyntaxError with a clear message."""
    if text is None or not str(text).strip():
        raise ExpressionRefused("the expression is empty")
    try:
        tree = ast.parse(str(text).strip(), mode="eval")
    except SyntaxError as err:
        raise ExpressionRefused(f"'{str(text).strip()}' is not a valid expression ({err.msg})") from None
    _check_tree(tree, _EXPRESSION_NODES, str(text))
    return tree


@lru_cache(maxsize=1024)
def check_script(text: str) -> ast.Module:
    try:
        tree = ast.parse(text or "", mode="exec")
    except SyntaxError as err:
        raise ExpressionRefused(f"the script is not valid Python (line {err.lineno}: {err.msg})") from None
    _check_tree(tree, _SCRIPT_NODES, text or "")
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if not isinstance(target, (ast.Name, ast.Subscript)):
                    raise ExpressionRefused("scripts may only assign to a name or to data['key']")
    return tree


def names_used(text: str) -> set[str]:
    tree = check_expression(text)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(SAFE_FUNCTIONS)


# What evaluated code sees as builtins: SAFE_FUNCTIONS, with `str` and `sum` sized first.
RUNTIME_FUNCTIONS = dict(SAFE_FUNCTIONS, str=bounded_str, sum=bounded_sum)


@lru_cache(maxsize=4096)
def compiled_expression(text: str):
    """The checked expression, rewritten so its work is bounded, compiled once."""
    return compile(bounded_tree(check_expression(text)), "<string>", "eval")


@lru_cache(maxsize=1024)
def compiled_script(text: str):
    return compile(bounded_tree(check_script(text)), "<string>", "exec")


class CheckedEnvironment(TaskDataEnvironment):
    """Evaluates only checked code, rewritten so that its work is bounded, with builtins
    limited to SAFE_FUNCTIONS."""

    def __init__(self):
        self.fixed = {"__builtins__": dict(RUNTIME_FUNCTIONS), **runtime_names(SAFE_METHODS)}
        super().__init__(dict(self.fixed))

    def evaluate(self, expression, context, external_context=None):
        code = compiled_expression(expression)
        my_globals = copy.copy(self.globals)
        self._prepare_context(context)
        my_globals.update(external_context or {})
        my_globals.update(context)
        my_globals.update(self.fixed)     # case data cannot replace builtins or the helpers
        return eval(code, my_globals)

    def execute(self, script, context, external_context=None):
        # the base class puts the globals over the case data, runs, and takes them out again
        return super().execute(compiled_script(script), context, external_context)


class ComplaintScriptEngine(PythonScriptEngine):
    """Script engine for one action; carries the handler dispatcher service tasks call."""

    def __init__(self, dispatcher=None):
        super().__init__(environment=CheckedEnvironment())
        self.dispatcher = dispatcher

    def evaluate(self, task, expression, external_context=None):
        try:
            return super().evaluate(task, expression, external_context)
        except WorkflowTaskException as err:
            # SpiffWorkflow says only "Error evaluating expression '...'"; for a refusal or a
            # bound the reason is the useful part of the incident
            cause = err.__context__
            if isinstance(cause, (ExpressionTooLarge, ExpressionRefused)):
                err.add_note(str(cause))
            raise
