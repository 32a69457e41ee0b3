"""Tests of scripts/check_docs.py: the repository's documentation names nothing that does not exist,
and each kind of dangling name is found in a small repository made for the purpose."""

import hashlib
import pathlib
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import check_docs  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


class Documentation(unittest.TestCase):
    def test_the_documentation_names_only_what_exists(self):
        self.assertEqual(check_docs.check(ROOT), [])

    def test_make_help_groups_only_targets_that_exist(self):
        line = next(l for l in (ROOT / "Makefile").read_text().splitlines() if l.startswith("HELP_GROUPS :="))
        named = {name for group in line.split(":=", 1)[1].strip().split(";") for name in group.split("=")[1].split(",")}
        self.assertEqual(named - check_docs.make_targets(ROOT), set())
        self.assertGreaterEqual(len(named), 12, "the dozen targets a user needs")

    def test_the_architecture_picture_was_drawn_from_its_source(self):
        source = (ROOT / "docs" / "architecture.dot").read_bytes()
        drawn = (ROOT / "docs" / "architecture.svg").read_text()
        self.assertIn(f"drawn from docs/architecture.dot sha256:{hashlib.sha256(source).hexdigest()}", drawn,
                      "docs/architecture.dot changed since the picture was drawn: make architecture")

    def test_the_front_page_stays_a_front_page(self):
        lines = (ROOT / "README.md").read_text().count("\n")
        self.assertLess(lines, 200, "README.md is the front page: the rest goes into docs/")


class Checker(unittest.TestCase):
    def setUp(self):
        self.root = pathlib.Path(tempfile.mkdtemp())
        write(self.root / "Makefile", """\
            .PHONY: run test
            run: build ## serve
            \t@echo run
            test: ; @true
            """)
        write(self.root / "mk" / "extra.mk", "bench-smoke:\n\t@true\n")
        write(self.root / "functions" / "books" / "src" / "lib.rs", "pub mod store;\nmod hidden;\npub use hidden::Shown;\n")
        write(self.root / "functions" / "books" / "src" / "store.rs", "pub struct Store;\nimpl Store {\n    pub fn get() {}\n    fn secret() {}\n}\nfn private() {}\n")
        write(self.root / "functions" / "books" / "src" / "hidden.rs", "pub struct Shown;\npub struct Unshown;\n")
        write(self.root / "scripts" / "here.py", "")

    def problems(self, text):
        write(self.root / "README.md", text)
        return check_docs.check(self.root)

    def test_what_exists_passes(self):
        self.assertEqual(self.problems("""\
            Run `make run` (or `make -s test`, `make bench-smoke`); see [the script](scripts/here.py),
            `scripts/here.py`, `books::store::Store`, `books::store::Store::get`, `books::Shown`,
            `.build/generated/file`, `functions/<name>/src`, `/var/task/bootstrap`.

            ```sh
            make run
            ```
            """), [])

    def test_a_missing_path_is_named(self):
        problems = self.problems("See `scripts/gone.py` and [that](scripts/missing.md#part).\n")
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("README.md:1", problems[0])
        self.assertTrue(any("scripts/missing.md" in p for p in problems))

    def test_a_missing_make_target_is_named(self):
        problems = self.problems("Run `make deploy`.\n\n```sh\nmake teardown ENV=dev\n```\n")
        self.assertEqual([p.split(": ", 1)[1] for p in problems],
                         ["names `make deploy`, which is no target of the Makefile or mk/",
                          "names `make teardown`, which is no target of the Makefile or mk/"])

    def test_a_private_rust_item_is_named(self):
        problems = self.problems("`books::hidden::Shown`, `books::store::private`, `books::Unshown`, "
                                 "`books::store::Store::secret`\n")
        self.assertEqual(len(problems), 4, problems)
        self.assertIn("module `hidden` is not public", problems[0])
        self.assertIn("`private` is not a public item", problems[1])
        self.assertIn("`Unshown` is not a public item", problems[2])
        self.assertIn("`secret` is not public", problems[3])


if __name__ == "__main__":
    unittest.main()
