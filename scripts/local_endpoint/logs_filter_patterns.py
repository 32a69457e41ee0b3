"""FilterLogEvents with CloudWatch Logs' filter pattern syntax, its results interleaved.

moto understands bare and quoted terms only; any other pattern — a JSON pattern such as
`{ $.level = "ERROR" }`, `?ERROR ?WARN`, `-DEBUG` — matches every event, so a filter that would
narrow the result on AWS returns everything here, and a mistyped pattern that AWS refuses is
accepted. This module evaluates the syntax CloudWatch documents for log events:

- terms: words or `"quoted phrases"` that must all appear (case-sensitive); `-term` excludes
  events with the term; `?term ?term` matches events with any of them; `%regex%` a regular
  expression (CloudWatch's subset is a subset of Python's);
- JSON patterns: `{ SELECTOR OP VALUE }` joined by `&&` and `||` with parentheses, where the
  selector is `$.a.b` or `$.a[0]`, OP is `=` or `!=` for strings (`*` a wildcard, or
  `%regex%`) and `=`, `!=`, `<`, `<=`, `>`, `>=` for numbers, or `IS TRUE`, `IS FALSE`,
  `IS NULL`, `NOT EXISTS`; a message that is not JSON never matches.

A pattern outside that — a syntax error, or the space-delimited `[a, b, ...]` form the local
cloud never uses — is refused with InvalidParameterException, as AWS refuses what it cannot
parse, rather than matching everything. And FilterLogEvents always interleaves streams by time:
AWS ignores the `interleaved` flag since 2019; moto orders stream by stream without it.

AWS documentation followed:
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/matching-terms-json-log-events.html
- https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Callable

from moto.logs import models
from moto.logs.exceptions import InvalidParameterException

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)

Matcher = Callable[[str], bool]
_MISSING = object()


class PatternError(ValueError):
    """A pattern CloudWatch would not parse (or that the local endpoint does not evaluate)."""


def compile_pattern(pattern: str | None) -> Matcher:
    """A predicate on an event's message, or PatternError."""
    text = (pattern or "").strip()
    if not text:
        return lambda message: True
    if text.startswith("{"):
        return _json_pattern(text)
    if text.startswith("["):
        raise PatternError("space-delimited filter patterns ([a, b, ...]) are not evaluated by the local endpoint")
    return _term_pattern(text)


# --- terms ----------------------------------------------------------------------------------------

_TERM = re.compile(r'\s*([-?]?)("(?:[^"\\]|\\.)*"|%[^%]+%|[^\s"]+)')


def _term(text: str) -> Matcher:
    if text.startswith("%"):
        regex = _regex(text)
        return lambda message: regex.search(message) is not None
    word = text[1:-1].replace('\\"', '"') if text.startswith('"') else text
    return lambda message: word in message


def _term_pattern(text: str) -> Matcher:
    required, excluded, optional = [], [], []
    position = 0
    while position < len(text):
        found = _TERM.match(text, position)
        if not found or found.end() == position:
            raise PatternError(f"cannot read the filter pattern at {text[position:]!r}")
        sign, term = found.groups()
        {"": required, "-": excluded, "?": optional}[sign].append(_term(term))
        position = found.end()
        if position < len(text) and not text[position].isspace() and not text[position - 1].isspace():
            raise PatternError(f"terms must be separated by spaces: {text!r}")
    if optional and (required or excluded):
        raise PatternError(f"?terms cannot be mixed with other terms: {text!r}")
    if optional:
        return lambda message: any(term(message) for term in optional)
    return lambda message: (all(term(message) for term in required)
                            and not any(term(message) for term in excluded))


def _regex(text: str) -> re.Pattern:
    try:
        return re.compile(text[1:-1])
    except re.error as err:
        raise PatternError(f"invalid regular expression {text!r}: {err}") from err


# --- JSON patterns ------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<punct>&&|\|\||\(|\)|\{|\}|!=|<=|>=|=|<|>)
    | (?P<selector>\$(?:\.[A-Za-z0-9_@-]+|\[\d+\])*)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<regex>%[^%]+%)
    | (?P<word>[^\s(){}&|=!<>"]+)
    )""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        found = _TOKEN.match(text, position)
        if not found:
            raise PatternError(f"cannot read the filter pattern at {text[position:]!r}")
        kind = found.lastgroup
        tokens.append((kind, found.group(kind)))
        position = found.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise PatternError(f"expected {value or 'more'} in the filter pattern, found {token[1] if token else 'its end'}")
        self.index += 1
        return token

    def expression(self) -> Callable[[Any], bool]:
        left = self.conjunction()
        while self.peek() == ("punct", "||"):
            self.take()
            left = _either(left, self.conjunction())
        return left

    def conjunction(self) -> Callable[[Any], bool]:
        left = self.primary()
        while self.peek() == ("punct", "&&"):
            self.take()
            left = _both(left, self.primary())
        return left

    def primary(self) -> Callable[[Any], bool]:
        if self.peek() == ("punct", "("):
            self.take()
            inner = self.expression()
            self.take(")")
            return inner
        kind, selector = self.take()
        if kind != "selector":
            raise PatternError(f"expected a selector such as $.field, found {selector!r}")
        path = _path(selector)
        token = self.take()
        if token == ("word", "IS"):
            _, value = self.take()
            expected = {"TRUE": True, "FALSE": False, "NULL": None}.get(value, _MISSING)
            if expected is _MISSING:
                raise PatternError(f"IS takes TRUE, FALSE or NULL, not {value!r}")
            return lambda document: _select(document, path) is expected
        if token == ("word", "NOT"):
            self.take("EXISTS")
            return lambda document: _select(document, path) is _MISSING
        if token[0] != "punct" or token[1] not in ("=", "!=", "<", "<=", ">", ">="):
            raise PatternError(f"expected a comparison after {selector}, found {token[1]!r}")
        return _comparison(path, token[1], self.take())


def _both(left, right):
    return lambda document: left(document) and right(document)


def _either(left, right):
    return lambda document: left(document) or right(document)


def _path(selector: str) -> list[str | int]:
    return [int(part[1:-1]) if part.startswith("[") else part[1:]
            for part in re.findall(r"\.[^.\[]+|\[\d+\]", selector[1:])]


def _select(document: Any, path: list[str | int]) -> Any:
    for step in path:
        if isinstance(step, int) and isinstance(document, list) and step < len(document):
            document = document[step]
        elif isinstance(step, str) and isinstance(document, dict) and step in document:
            document = document[step]
        else:
            return _MISSING
    return document


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _comparison(path, operator: str, operand: tuple[str, str]) -> Callable[[Any], bool]:
    kind, text = operand
    number = _number(text) if kind == "word" else None
    if number is not None:
        compare = {"=": lambda a: a == number, "!=": lambda a: a != number, "<": lambda a: a < number,
                   "<=": lambda a: a <= number, ">": lambda a: a > number, ">=": lambda a: a >= number}[operator]
        return lambda document: (lambda found: isinstance(found, (int, float)) and not isinstance(found, bool)
                                 and compare(found))(_select(document, path))
    if operator not in ("=", "!="):
        raise PatternError(f"{operator} compares numbers; {text!r} is not one")
    if kind == "regex":
        regex = _regex(text)
        matches = lambda value: regex.search(value) is not None  # noqa: E731
    else:
        value = text[1:-1].replace('\\"', '"') if kind == "string" else text
        glob = re.compile("".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", value)),
                          re.DOTALL)
        matches = lambda found: glob.fullmatch(found) is not None  # noqa: E731

    def check(document: Any) -> bool:
        found = _select(document, path)
        if found is _MISSING or isinstance(found, (dict, list)) or found is None:
            return False
        found_text = json.dumps(found) if isinstance(found, bool) else str(found)
        return matches(found_text) == (operator == "=")
    return check


def _json_pattern(text: str) -> Matcher:
    parser = _Parser(text)
    parser.take("{")
    predicate = parser.expression()
    parser.take("}")
    if parser.peek() is not None:
        raise PatternError(f"unexpected {parser.peek()[1]!r} after the JSON pattern's closing brace")

    def matches(message: str) -> bool:
        try:
            document = json.loads(message)
        except ValueError:
            return False
        return isinstance(document, (dict, list)) and predicate(document)
    return matches


# --- the patch ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str | None) -> Matcher:
    return compile_pattern(pattern)


class EventMessageFilter:
    """moto's filter, evaluating CloudWatch's syntax (compiled once per pattern)."""

    def __init__(self, pattern: str | None):
        self.matcher = _compiled(pattern)

    def matches(self, message: str) -> bool:
        return self.matcher(message)


_filter_log_events = models.LogsBackend.filter_log_events


def _filter_log_events_as_cloudwatch(self, log_group_name, log_stream_names, start_time, end_time, limit,
                                     next_token, filter_pattern, interleaved):
    try:
        _compiled(filter_pattern)
    except PatternError as err:
        raise InvalidParameterException(msg=f"Invalid filter pattern: {err}") from err
    return _filter_log_events(self, log_group_name, log_stream_names, start_time, end_time, limit,
                              next_token, filter_pattern, True)


def apply():
    models.EventMessageFilter = EventMessageFilter
    models.LogsBackend.filter_log_events = _filter_log_events_as_cloudwatch
