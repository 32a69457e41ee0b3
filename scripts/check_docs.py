#!/usr/bin/env python3
"""Every path, make target and Rust item the documentation names exists.

    scripts/check_docs.py [ROOT]

Reads README.md, docs/*.md and the READMEs beside the code (terraform/, fuzz/), and checks:

- every link to a file of the repository (`[text](path)`, relative to the document) and every
  path in backticks that starts at a top-level folder or file (`functions/books/src/…`) exists;
  paths with a placeholder (`<env>`, `…`, `*`, `{id}`, `$VAR`) and generated ones (`.build/`,
  `target/`) are not checked;
- every `make <target>` (in backticks or code blocks) is a target of the Makefile or `mk/*.mk`;
- every Rust path of a crate of the workspace (`books::repair::rebuild_view`) names a public
  item: each module on the way declared `pub mod`, the item declared `pub` (or re-exported with
  `pub use`) in the last one.

Prints each problem with its document and line; exits 1 if there is any. `make test` runs it
(scripts/tests/test_docs.py).
"""

import pathlib
import re
import sys

TOP_LEVEL_FILES = {"Cargo.toml", "Cargo.lock", "Makefile", "README.md", "deny.toml", "requirements.txt", "requirements-checkov.txt",
                   "rust-toolchain.toml", "clippy.toml", "rustfmt.toml"}
GENERATED = (".build/", "target/", ".venv/", ".terraform/")
PLACEHOLDER = re.compile(r"[<>…*{}$|]|\.\.\.")
CRATES = {
    "books": "functions/books/src",
    "books_telemetry": "extension/src",
    "books_local": "local/src",
    "telemetry_schema": "telemetry-schema/src",
    "books_testkit": "functions/testkit/src",
    "books_repair": "functions/repair/src",
}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"(?:^|[\s(;&|])make\s+((?:-[A-Za-z]+\s+)*)([a-z][\w-]*)")
RUST_PATH = re.compile(r"^(" + "|".join(CRATES) + r")((?:::\w+)+)$")


def documents(root):
    found = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    found += [p for p in (root / "terraform" / "README.md", root / "fuzz" / "README.md") if p.exists()]
    return [p for p in found if p.exists()]


def make_targets(root):
    targets = set()
    for path in [root / "Makefile", *sorted((root / "mk").glob("*.mk"))]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.%/-]+(?:\s+[A-Za-z0-9_.%/-]+)*)\s*:(?![=:])", line)
            if match and not line.startswith((".PHONY", "\t")):
                targets.update(match.group(1).split())
    return targets


def is_repo_path(token, root):
    if token.startswith("/"):
        return False  # a path in an image, an environment or a URL, not of the repository
    first = token.split("/", 1)[0]
    if "/" not in token:
        return token in TOP_LEVEL_FILES
    return (root / first).exists() or first in {"docs", ".github", ".ci"}


def path_problem(token, doc, root):
    token = token.split("#", 1)[0].rstrip("/")
    if not token or PLACEHOLDER.search(token) or token.startswith(GENERATED) or " " in token:
        return None
    if (root / token).exists() or (doc.parent / token).exists():
        return None
    return f"names `{token}`, which does not exist"


def module_file(source, parts):
    """The file of module `parts` under a crate's `source`, or None."""
    base = source.joinpath(*parts)
    for candidate in (base.with_suffix(".rs"), base / "mod.rs"):
        if candidate.is_file():
            return candidate
    return None


def rust_problem(token, root):
    match = RUST_PATH.match(token)
    if not match:
        return None
    crate, segments = match.group(1), match.group(2).strip(":").split("::")
    source = root / CRATES[crate]
    current = source / "lib.rs"
    if not current.exists():
        return f"names `{token}`, but crate {crate} has no lib.rs"
    modules = []
    while segments:
        candidate = module_file(source, modules + [segments[0]])
        if candidate is None:
            break
        if not re.search(rf"\bpub\s+mod\s+{segments[0]}\b", current.read_text()):
            return f"names `{token}`, but module `{segments[0]}` is not public"
        modules.append(segments.pop(0))
        current = candidate
    if not segments:
        return None
    name = segments[0]
    text = current.read_text()
    declared = re.search(rf"\bpub\s+(?:async\s+)?(?:const\s+)?(?:fn|struct|enum|const|static|type|trait|mod|macro_rules!)\s+"
                         rf"{name}\b", text)
    reexported = re.search(rf"\bpub\s+use\s+[^;]*\b{name}\b[^;]*;", text)
    exported_macro = re.search(rf"#\[macro_export\]\s*macro_rules!\s+{name}\b", text)
    if not (declared or reexported or exported_macro):
        where = current.relative_to(root)
        return f"names `{token}`, but `{name}` is not a public item of {where}"
    for member in segments[1:]:
        if not re.search(rf"\bpub\s+(?:async\s+)?(?:const\s+)?fn\s+{member}\b|\bpub\s+{member}\s*:", text):
            return f"names `{token}`, but `{member}` is not public in {current.relative_to(root)}"
    return None


def check(root):
    root = pathlib.Path(root).resolve()
    targets = make_targets(root)
    problems = []
    for doc in documents(root):
        fenced = False
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            where = f"{doc.relative_to(root)}:{number}"
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            for target in LINK.findall(line):
                if not target.startswith(("http://", "https://", "mailto:", "#")):
                    problem = path_problem(target, doc, root)
                    if problem:
                        problems.append(f"{where}: a link {problem}")
            spans = [line] if fenced else CODE.findall(line)
            for span in spans:
                for _, target in MAKE.findall(span):
                    if target not in targets:
                        problems.append(f"{where}: names `make {target}`, which is no target of the Makefile or mk/")
                token = span.strip()
                if fenced:
                    continue
                if RUST_PATH.match(token):
                    problem = rust_problem(token, root)
                elif is_repo_path(token, root):
                    problem = path_problem(token, doc, root)
                else:
                    problem = None
                if problem:
                    problems.append(f"{where}: {problem}")
    return problems


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    problems = check(root)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problems in {len(documents(root.resolve()))} documents")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
