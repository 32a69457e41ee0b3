"""api/books.http against api/openapi.yaml: a request for every operation, only documented
operations, parameters and headers, the API key on each, and bodies the description accepts."""

import json
import pathlib
import re
import unittest
import urllib.parse

import jsonschema
import yaml

API = pathlib.Path(__file__).resolve().parents[2] / "api"
METHODS = ("get", "post", "put", "delete", "patch", "head", "options")


def requests(text):
    """Each request of an .http file: name, method, path (variables kept), headers, body."""
    found = []
    for block in re.split(r"^###", text, flags=re.M)[1:]:
        lines = block.split("\n")
        name = lines[0].strip().split(" ")[0]
        head, _, body = "\n".join(lines[1:]).strip().partition("\n\n")
        request_line, *header_lines = head.split("\n")
        method, target = request_line.split(" ", 1)
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines if h.strip())}
        found.append({"name": name, "method": method.lower(), "target": target.strip(), "headers": headers,
                      "body": json.loads(body) if body.strip() else None})
    return found


def template_of(path, templates):
    """The documented path template a concrete path (with `{{variables}}`) matches."""
    for template in templates:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template
    return None


class Collection(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.spec = yaml.safe_load((API / "openapi.yaml").read_text())
        cls.requests = requests((API / "books.http").read_text())
        cls.operations = {}
        for path, item in cls.spec["paths"].items():
            for method in METHODS:
                if method in item:
                    cls.operations[item[method]["operationId"]] = (method, path, item[method], item)

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            target = self.spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def test_every_operation_has_a_request_and_every_request_an_operation(self):
        named = {r["name"] for r in self.requests}
        self.assertEqual(sorted(set(self.operations) - named), [], "operations without a request")
        for request in self.requests:
            self.assertIn(request["name"], self.operations, f"### {request['name']} is not an operationId")
            method, path, _, _ = self.operations[request["name"]]
            self.assertEqual(request["method"], method, request["name"])
            target = urllib.parse.urlsplit(request["target"].replace("{{base}}", "http://h/v1"))
            self.assertEqual(template_of(target.path.removeprefix("/v1"), [path]), path, request["target"])

    def test_only_documented_parameters_and_headers_are_sent_with_the_key(self):
        scheme = self.spec["components"]["securitySchemes"]["apiKey"]["name"].lower()
        for request in self.requests:
            _, _, operation, item = self.operations[request["name"]]
            parameters = [self.deref(p) for p in item.get("parameters", []) + operation.get("parameters", [])]
            query = {p["name"] for p in parameters if p["in"] == "query"}
            headers = {p["name"].lower() for p in parameters if p["in"] == "header"}
            self.assertEqual(request["headers"].get(scheme), "{{key}}", f"{request['name']}: no {scheme}")
            sent = set(request["headers"]) - {scheme, "content-type"}
            self.assertEqual(sent - headers, set(), f"{request['name']}: undocumented headers")
            target = urllib.parse.urlsplit(request["target"].replace("{{base}}", "http://h/v1"))
            self.assertEqual(set(urllib.parse.parse_qs(target.query)) - query, set(), request["name"])
            for required in (p for p in parameters if p.get("required") and p["in"] == "header"):
                self.assertIn(required["name"].lower(), request["headers"], request["name"])

    def test_bodies_are_what_the_description_accepts(self):
        with_body = [r for r in self.requests if r["body"] is not None]
        self.assertTrue(with_body)
        for request in with_body:
            operation = self.operations[request["name"]][2]
            content = self.deref(operation["requestBody"])["content"]
            self.assertIn(request["headers"].get("content-type"), content, request["name"])
            schema = self.deref(content[request["headers"]["content-type"]]["schema"])
            jsonschema.validate(request["body"], schema)
        with self.assertRaises(jsonschema.ValidationError, msg="the check can fail"):
            jsonschema.validate({"title": "No authors"}, schema)


if __name__ == "__main__":
    unittest.main()
