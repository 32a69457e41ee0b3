"""What the code calls on AWS, read from its sources: the actions each role needs, no more.

The assertions on the roles (local_cycle.py) compare every role's policy with these sets, so a
grant nothing calls, or a call nothing grants, fails the test instead of waiting for AWS.

- A function's `main.rs` builds one store (`BookStore`: the write model in store/write.rs,
  `ViewStore`: the read model in store/view.rs) and hands its events to modules of `books`
  (`use books::http::command…`). The store methods those modules call (`store.<method>(` or
  `view.<method>(`), with the helpers each calls within the store's file, carry the DynamoDB
  operations. A TransactWriteItems needs the action of each kind of item it writes: IAM
  authorises a transaction's Put, Update, Delete and ConditionCheck items as PutItem,
  UpdateItem, DeleteItem and ConditionCheckItem.
- The extension (extension/src) ships with the CloudWatch Logs operations it calls.
- A function reads a secret when a function of `books` its main.rs calls (`config::f(`, with
  the helpers `f` calls in its file) calls Secrets Manager (`.get_secret_value()`): the query
  function's cursor keys (config.rs).
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
BOOKS = ROOT / "functions" / "books" / "src"
# Each store type: the table it works on (a key of the tables module) and its source.
STORES = {"BookStore": ("books", BOOKS / "store" / "write.rs"), "ViewStore": ("books_view", BOOKS / "store" / "view.rs")}
CALLS = re.compile(r"\.(get_item|put_item|update_item|delete_item|query|scan|batch_get_item|batch_write_item)\(\)")
ITEMS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
TRANSACTION_ITEMS = re.compile(r"\b(Put|Update|Delete|ConditionCheck)::builder\(\)")
SECRETS_CALLS = re.compile(r"\.(get_secret_value|describe_secret|list_secret_version_ids)\(\)")
LOGS_CALLS = re.compile(r"\.(create_log_group|create_log_stream|put_log_events|describe_log_streams|describe_log_groups)\(\)")


def pascal(snake):
    return "".join(part.capitalize() for part in snake.split("_"))


def functions_of(source):
    """{name: body} of every `fn` in a Rust source (bodies by brace matching)."""
    bodies = {}
    for match in re.finditer(r"\bfn\s+(\w+)", source):
        start = source.find("{", match.end())
        semicolon = source.find(";", match.end())
        if start < 0 or (0 <= semicolon < start):
            continue  # a declaration without a body
        depth, end = 0, start
        for end in range(start, len(source)):
            depth += {"{": 1, "}": -1}.get(source[end], 0)
            if depth == 0:
                break
        bodies[match.group(1)] = source[start:end + 1]
    return bodies


def operations(bodies, method, seen=None):
    """The DynamoDB actions `method` needs: its own calls and its helpers' (`self.<helper>(`)."""
    seen = set() if seen is None else seen
    if method in seen or method not in bodies:
        return set()
    seen.add(method)
    body = bodies[method]
    actions = {f"dynamodb:{pascal(call)}" for call in CALLS.findall(body)}
    actions |= {f"dynamodb:{ITEMS[kind]}" for kind in TRANSACTION_ITEMS.findall(body)}
    for helper in re.findall(r"\bself\.(\w+)\(", body):
        actions |= operations(bodies, helper, seen)
    return actions


def modules_used(main_source):
    """The files of the `books` modules a main.rs uses (`use books::a::b…` → a/b.rs or a.rs)."""
    files = set()
    for path in re.findall(r"use books::((?:\w+::)*\w+)", main_source):
        parts = path.split("::")
        for length in range(len(parts), 0, -1):
            candidate = BOOKS.joinpath(*parts[:length]).with_suffix(".rs")
            if candidate.is_file():
                files.add(candidate)
                break
    return files


def dynamodb_needs(function, root=ROOT):
    """(table key, actions) of a function (`command`, `query`, `projector`)."""
    main = (root / "functions" / function / "src" / "main.rs").read_text()
    stores = [name for name in STORES if re.search(rf"\b{name}::new\(", main)]
    if len(stores) != 1:
        raise ValueError(f"{function}: expected one store built in main.rs, found {stores}")
    table, store_file = STORES[stores[0]]
    bodies = functions_of(store_file.read_text())
    called = set()
    for module in modules_used(main):
        if module.parent.name == "store":
            continue
        called |= set(re.findall(r"\b(?:store|view)\.(\w+)\(", module.read_text()))
    actions = set()
    for method in sorted(called):
        actions |= operations(bodies, method)
    return table, actions


def extension_logs_needs(root=ROOT):
    """The CloudWatch Logs actions the extension calls."""
    actions = set()
    for path in (root / "extension" / "src").rglob("*.rs"):
        actions |= {f"logs:{pascal(call)}" for call in LOGS_CALLS.findall(path.read_text())}
    return actions


def secrets_needs(function, root=ROOT):
    """The Secrets Manager actions a function (`command`, `query`, `projector`) calls."""
    main = (root / "functions" / function / "src" / "main.rs").read_text()
    actions = set()
    for module in modules_used(main):
        bodies = functions_of(module.read_text())
        pending, seen = set(re.findall(rf"\b{module.stem}::(\w+)\(", main)), set()
        while pending:
            name = pending.pop()
            if name in seen or name not in bodies:
                continue
            seen.add(name)
            actions |= {f"secretsmanager:{pascal(call)}" for call in SECRETS_CALLS.findall(bodies[name])}
            pending |= set(re.findall(r"\b(\w+)\(", bodies[name])) & set(bodies)
    return actions
