"""Logs Insights queries, in the subset the dashboards use, answered as CloudWatch answers them.

moto runs `fields`, `sort` and `limit` of a query and ignores the rest: a `filter` returns every
event, `stats` returns events rather than groups, and the fields of a JSON event are not
discovered, so the service dashboard's two Logs Insights widgets ("Errors by type", "Slowest
requests") show nothing a user could act on. Here a query is parsed and run:

- `SOURCE 'group'` clauses ahead of the query name the groups when StartQuery names none (as the
  console and the dashboards' widgets write them);
- the fields of a JSON event are discovered (nested keys joined with `.`), beside `@timestamp`,
  `@message`, `@logStream`, `@log` and `@ptr`;
- `fields a, b` (`x as y` too); `filter` with `= != < <= > >=` against numbers and quoted
  strings, `like /regex/` or `like 'text'`, `in [...]`, `ispresent(f)`, `and`, `or`, `not` and
  parentheses; `stats` of `count(*)`, `count(f)`, `sum`, `avg`, `min`, `max` (`as` names) `by`
  fields and `bin(5m)`; `sort f [asc|desc], ...`; `limit n`; `display` as `fields`.

Anything else is refused with MalformedQueryException, naming it, rather than answered wrongly.

AWS documentation followed:
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-examples.html
"""

from __future__ import annotations

import datetime
import json
import re

from moto.logs import models
from moto.logs.exceptions import LogsClientError

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)

MAX_RESULTS = 10_000
_SOURCE = re.compile(r"^\s*SOURCE\s+(['\"])(.+?)\1\s*\|", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class MalformedQuery(LogsClientError):
    def __init__(self, why: str):
        self.code = 400
        super().__init__("MalformedQueryException", f"Query is malformed: {why}")


def sources(query: str) -> tuple[list[str], str]:
    """The groups of the query's leading SOURCE clauses, and the query without them."""
    groups = []
    while True:
        found = _SOURCE.match(query)
        if not found:
            return groups, query
        groups.append(found.group(2))
        query = query[found.end():]


# --- events as rows -------------------------------------------------------------------------------

def _flatten(value, prefix, into):
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else key, into)
    else:
        into[prefix] = value


def row_of(event, stream, group) -> dict:
    row = {"@timestamp": event.timestamp, "@message": event.message, "@logStream": stream.log_stream_name,
           "@log": f"{group.account_id}:{group.name}", "@ptr": str(event.event_id)}
    try:
        document = json.loads(event.message)
    except ValueError:
        document = None
    if isinstance(document, dict):
        discovered = {}
        _flatten(document, "", discovered)
        row = {**discovered, **row}
    return row


def shown(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def timestamp_text(ms) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


# --- parsing --------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<regex>/(?:[^/\\]|\\.)+/)
    |(?P<number>-?\d+(?:\.\d+)?(?![\w.]))|(?P<op><=|>=|!=|=|<|>|\(|\)|\[|\]|,|\*)|(?P<name>[@\w.]+))""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    while at < len(text):
        if not text[at:].strip():
            break
        found = _TOKEN.match(text, at)
        if not found:
            raise MalformedQuery(f"cannot read {text[at:]!r}")
        tokens.append((found.lastgroup, found.group(found.lastgroup)))
        at = found.end()
    return tokens


class _Reader:
    def __init__(self, text):
        self.tokens, self.at = _tokens(text), 0

    def peek(self, offset=0):
        return self.tokens[self.at + offset] if self.at + offset < len(self.tokens) else (None, None)

    def take(self, value=None):
        token = self.peek()
        if token[0] is None or (value is not None and token[1].lower() != value):
            raise MalformedQuery(f"expected {value or 'more'}, found {token[1] or 'the end'}")
        self.at += 1
        return token

    def done(self):
        return self.at >= len(self.tokens)

    def literal(self):
        kind, text = self.take()
        if kind == "number":
            return float(text)
        if kind == "string":
            return text[1:-1].replace("\\'", "'").replace('\\"', '"')
        raise MalformedQuery(f"expected a number or a quoted string, found {text}")

    # filter expressions: or > and > not > comparison
    def expression(self):
        left = self.conjunction()
        while self.peek()[1] and self.peek()[1].lower() == "or":
            self.take()
            right = self.conjunction()
            left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    def conjunction(self):
        left = self.negation()
        while self.peek()[1] and self.peek()[1].lower() == "and":
            self.take()
            right = self.negation()
            left = (lambda a, b: lambda row: a(row) and b(row))(left, right)
        return left

    def negation(self):
        if self.peek()[1] and self.peek()[1].lower() == "not":
            self.take()
            inner = self.negation()
            return lambda row: not inner(row)
        return self.comparison()

    def comparison(self):
        if self.peek()[1] == "(":
            self.take()
            inner = self.expression()
            self.take(")")
            return inner
        kind, name = self.take()
        if kind != "name":
            raise MalformedQuery(f"expected a field, found {name}")
        if name.lower() == "ispresent":
            self.take("(")
            field = self.take()[1]
            self.take(")")
            return lambda row: row.get(field) is not None
        kind, operator = self.take()
        if operator.lower() == "like":
            kind, pattern = self.take()
            regex = re.compile(pattern[1:-1]) if kind == "regex" else re.compile(re.escape(pattern[1:-1]))
            return lambda row: row.get(name) is not None and regex.search(shown(row[name])) is not None
        if operator.lower() == "in":
            self.take("[")
            values = [self.literal()]
            while self.peek()[1] == ",":
                self.take()
                values.append(self.literal())
            self.take("]")
            return lambda row: any(_equal(row.get(name), value) for value in values)
        if kind != "op" or operator not in ("=", "!=", "<", "<=", ">", ">="):
            raise MalformedQuery(f"expected a comparison after {name}, found {operator}")
        value = self.literal()
        return lambda row: _compare(row.get(name), operator, value)

    def names(self):
        """`a, b as c, ...`: [(name, shown as)]."""
        found = []
        while True:
            name = self.take()[1]
            alias = name
            if self.peek()[1] and self.peek()[1].lower() == "as":
                self.take()
                alias = self.take()[1]
            found.append((name, alias))
            if self.peek()[1] != ",":
                return found
            self.take()


def _number(value):
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _equal(found, value) -> bool:
    if found is None:
        return False
    if isinstance(value, float):
        return _number(found) == value
    return shown(found) == value


def _compare(found, operator, value) -> bool:
    if found is None:
        return False
    if operator == "=":
        return _equal(found, value)
    if operator == "!=":
        return not _equal(found, value)
    left, right = (_number(found), value) if isinstance(value, float) else (shown(found), value)
    if left is None:
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[operator]


# --- the commands ---------------------------------------------------------------------------------

_AGGREGATES = ("count", "sum", "avg", "min", "max")


def _stats(reader: _Reader):
    aggregates = []
    while True:
        function = reader.take()[1].lower()
        if function not in _AGGREGATES:
            raise MalformedQuery(f"stats {function}() is not evaluated by the local endpoint")
        reader.take("(")
        field = "*" if reader.peek()[1] == "*" else reader.peek()[1]
        reader.take()
        reader.take(")")
        alias = f"{function}({field})"
        if reader.peek()[1] and reader.peek()[1].lower() == "as":
            reader.take()
            alias = reader.take()[1]
        aggregates.append((function, field, alias))
        if reader.peek()[1] != ",":
            break
        reader.take()
    groups = []
    if reader.peek()[1] and reader.peek()[1].lower() == "by":
        reader.take()
        while True:
            if reader.peek()[1] and reader.peek()[1].lower() == "bin":
                reader.take()
                reader.take("(")
                span = reader.take()[1]
                reader.take(")")
                found = re.fullmatch(r"(\d+)([smhd])", span)
                if not found:
                    raise MalformedQuery(f"bin({span})")
                seconds = int(found.group(1)) * _UNITS[found.group(2)]
                groups.append((f"bin({span})", lambda row, s=seconds: row["@timestamp"] // (s * 1000) * s * 1000))
            else:
                name = reader.take()[1]
                groups.append((name, lambda row, n=name: row.get(n)))
            if reader.peek()[1] != ",":
                break
            reader.take()

    def run(rows):
        buckets = {}
        for row in rows:
            key = tuple(value(row) for _, value in groups)
            buckets.setdefault(key, []).append(row)
        out = []
        for key, members in buckets.items():
            result = {}
            for (name, _), value in zip(groups, key):
                if value is not None:
                    result[name] = timestamp_text(value) if name.startswith("bin(") else value
            for function, field, alias in aggregates:
                values = [_number(r.get(field)) for r in members if field == "*" or r.get(field) is not None]
                if function == "count":
                    result[alias] = len(values)
                    continue
                numbers = [v for v in values if v is not None]
                if numbers:
                    result[alias] = {"sum": sum, "min": min, "max": max,
                                     "avg": lambda n: sum(n) / len(n)}[function](numbers)
            out.append(result)
        return out
    return run


def _sort_key(value):
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, shown(value)) if value is not None else (2, 0.0, "")


def run_query(rows: list[dict], query: str) -> list[dict]:
    """The query's result rows, from the events' rows (all fields discovered)."""
    shown_fields = None
    limit = MAX_RESULTS
    for command in filter(None, (part.strip() for part in _split(query))):
        reader = _Reader(command)
        verb = reader.take()[1].lower()
        if verb in ("fields", "display"):
            names = reader.names()
            rows = [{**row, **{alias: row.get(name) for name, alias in names}} for row in rows]
            shown_fields = [alias for _, alias in names]
        elif verb == "filter":
            predicate = reader.expression()
            rows = [row for row in rows if predicate(row)]
        elif verb == "stats":
            rows = _stats(reader)(rows)
            shown_fields = None
        elif verb == "sort":
            keys = []
            while True:
                field = reader.take()[1]
                descending = False
                if reader.peek()[1] and reader.peek()[1].lower() in ("asc", "desc"):
                    descending = reader.take()[1].lower() == "desc"
                keys.append((field, descending))
                if reader.peek()[1] != ",":
                    break
                reader.take()
            for field, descending in reversed(keys):
                present = [row for row in rows if row.get(field) is not None]
                absent = [row for row in rows if row.get(field) is None]
                rows = sorted(present, key=lambda row: _sort_key(row[field]), reverse=descending) + absent
        elif verb == "limit":
            limit = min(int(reader.literal()), MAX_RESULTS)
        else:
            raise MalformedQuery(f"the command {verb!r} is not evaluated by the local endpoint")
        if not reader.done():
            raise MalformedQuery(f"unexpected {reader.peek()[1]!r} in {command!r}")
    results = []
    for row in rows[:limit]:
        if shown_fields is not None:
            keep = shown_fields + ["@ptr"]
        elif "@ptr" in row:  # no fields command: what the console shows, @timestamp and @message
            keep = ["@timestamp", "@message", "@ptr"]
        else:  # a stats result
            keep = list(row)
        out = {}
        for name in keep:
            value = row.get(name)
            if value is not None:
                out[name] = timestamp_text(value) if name == "@timestamp" else shown(value)
        results.append(out)
    return results


def _split(query: str) -> list[str]:
    """The commands between pipes (a pipe inside quotes or a regex is not one)."""
    parts, current, quote = [], "", None
    for char in query:
        if quote:
            current += char
            if char == quote:
                quote = None
        elif char in "'\"/":
            quote = char
            current += char
        elif char == "|":
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def execute_query(log_groups, query, start_time, end_time):
    _, query = sources(query)
    rows = []
    for group in log_groups:
        for stream in group.streams.values():
            for event in stream.events:
                if start_time and event.timestamp < start_time * 1000:
                    continue
                if end_time and event.timestamp > end_time * 1000:
                    continue
                rows.append(row_of(event, stream, group))
    rows.sort(key=lambda row: row["@timestamp"], reverse=True)
    return run_query(rows, query)


_start_query = models.LogsBackend.start_query


def start_query(self, log_group_names, start_time, end_time, query_string):
    named, _ = sources(query_string or "")
    if not log_group_names:
        if not named:
            raise MalformedQuery("name the log groups (logGroupNames, or SOURCE 'group' | ahead of the query)")
        log_group_names = named
    return _start_query(self, log_group_names, start_time, end_time, query_string)


def apply():
    models.execute_query = execute_query
    models.LogsBackend.start_query = start_query
