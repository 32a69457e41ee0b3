"""scripts/cost.py: DynamoDB's and Lambda's arithmetic against AWS's own documented examples, the
environments' settings as their tfvars hold them, and the report's sums and capacity limits on
figures of a known shape. (The measurement itself runs in `make test-bench`, on the local cloud.)"""

import json
import pathlib
import sys
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import cost  # noqa: E402

PRICES = json.loads((ROOT / "bench" / "prices.json").read_text())


def figures(billed_ms=20.0, post_runtime_ms=1.0):
    """Figures shaped as `cost.py measure` writes them: a POST is one command invocation, a
    projector invocation per two POSTs, 5 WRU; a read one query invocation, 0.5 RRU."""
    per_kind = {
        "post": {"invocations": {"command": 1, "query": 0, "projector": 0.5},
                 "dynamodb": {"write_units": 5, "read_units": 0, "stored_bytes": 2000,
                              "tables": {"books": {"write_units": 4, "read_units": 0},
                                         "books_view": {"write_units": 1, "read_units": 0}}},
                 "secrets_calls": 0},
        "get": {"invocations": {"command": 0, "query": 1, "projector": 0},
                "dynamodb": {"write_units": 0, "read_units": 0.5, "stored_bytes": 0,
                             "tables": {"books_view": {"write_units": 0, "read_units": 0.5}}},
                "secrets_calls": 0.01},
        "list": {"invocations": {"command": 0, "query": 1, "projector": 0},
                 "dynamodb": {"write_units": 0, "read_units": 1.5, "stored_bytes": 0,
                              "tables": {"books_view": {"write_units": 0, "read_units": 1.5}}},
                 "secrets_calls": 0}}
    function = {"invocations": 100, "memory_mb": 256, "billed_ms_mean": billed_ms, "billed_ms_p50": billed_ms,
                "billed_ms_p99": billed_ms, "post_runtime_ms_mean": post_runtime_ms, "max_memory_used_mb": 30}
    return {"measured": {"date": "2026-12-07 10:00 UTC", "binaries": "release", "requests_per_kind": 100,
                         "book_json_bytes": 587, "architecture": "x86_64"},
            "requests": per_kind, "functions": {role: dict(function) for role in cost.ROLES},
            "logs": {"telemetry_bytes_per_invocation": {role: 1000 for role in cost.ROLES},
                     "default_bytes_per_invocation": {role: 1500 for role in cost.ROLES},
                     "other_bytes_per_request": 300, "access_log_bytes_per_request": 0, "compression_ratio": 0.2,
                     "put_log_events_per_request_at_most": 0.1, "flush_interval_s": 10},
            "resources": {"custom_metrics": 40, "alarms": 12, "dashboards": 2, "secrets": 1, "kms_keys": 0}}


class DynamoDbArithmetic(unittest.TestCase):
    """The examples of DynamoDB's capacity unit documentation
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/provisioned-capacity-mode.html)."""

    def test_reads_of_an_8_kb_item(self):
        self.assertEqual(cost.read_units(8 * 1024, consistent=True), 2)
        self.assertEqual(cost.read_units(8 * 1024, consistent=False), 1)
        self.assertEqual(cost.read_units(8 * 1024, transactional=True), 4)

    def test_writes_of_a_1_kb_and_a_3_kb_item(self):
        self.assertEqual(cost.write_units(1024), 1)
        self.assertEqual(cost.write_units(3 * 1024), 3)
        self.assertEqual(cost.write_units(3 * 1024, transactional=True), 6)
        self.assertEqual(cost.write_units(1025), 2)

    def test_item_sizes_follow_the_documented_rules(self):
        # Names count as their UTF-8 bytes, strings too; a number 1 byte per two significant
        # digits plus 1 (zeros at either end trimmed); a list or map 3 bytes plus 1 per element.
        self.assertEqual(cost.item_size({"pk": {"S": "BOOK#é"}}), 2 + 7)
        self.assertEqual(cost.number_size("1969"), 3)
        self.assertEqual(cost.number_size("-0.00120"), 2)
        self.assertEqual(cost.item_size({"tags": {"L": [{"S": "ab"}, {"S": "c"}]}}), 4 + 3 + (1 + 2) + (1 + 1))
        self.assertEqual(cost.item_size({"m": {"M": {"k": {"BOOL": True}}}}), 1 + 3 + 1 + 1 + 1)
        self.assertEqual(cost.item_size({"b": {"B": "AAEC"}, "n": {"NULL": True}}), 1 + 3 + 1 + 1)


class AccessLog(unittest.TestCase):
    def test_a_format_renders_every_context_variable_and_dashes_the_unknown(self):
        line = cost.access_log_line('{"id":"$context.requestId","ip":"$context.identity.sourceIp",'
                                    '"odd":"$context.authorizer.claims"}')
        self.assertEqual(json.loads(line), {"id": cost.ACCESS_LOG_VALUES["requestId"], "ip": "203.0.113.10", "odd": "-"})


class LambdaArithmetic(unittest.TestCase):
    def test_the_pricing_pages_first_example(self):
        # https://aws.amazon.com/lambda/pricing/, example 1: 512 MB, 3 million invocations of 1 s
        # a month, after the free tier, at the page's $0.00001667 per GB-s: $18.34 + $0.40 = $18.74.
        prices = {"lambda": {"gb_second_x86_64": 0.00001667, "requests_per_million": 0.20}}
        requests, compute, gb_seconds = cost.lambda_charges(3_000_000, 1000, 512, prices, "x86_64",
                                                            free_requests=1_000_000, free_gb_seconds=400_000)
        self.assertEqual(gb_seconds, 1_500_000)
        self.assertEqual((round(compute, 2), round(requests, 2), round(compute + requests, 2)), (18.34, 0.40, 18.74))


class Settings(unittest.TestCase):
    def test_each_environment_as_its_tfvars_sets_it(self):
        prod = cost.environment_settings("prod")
        self.assertEqual({r: f["memory_mb"] for r, f in prod["functions"].items()},
                         {"command": 1024, "query": 1024, "projector": 512})
        self.assertEqual(prod["functions"]["query"]["reserved_concurrency"], 100)
        self.assertEqual((prod["log_retention_days"], prod["throttle"]["rate"], prod["keep_platform_logs"]), (365, 50, False))
        self.assertEqual(cost.environment_settings("dev")["functions"]["command"]["reserved_concurrency"], -1)

    def test_an_unknown_environment_names_the_known_ones(self):
        with self.assertRaises(SystemExit) as refused:
            cost.environment_settings("qa")
        self.assertIn("dev, prod, staging", str(refused.exception))


class Report(unittest.TestCase):
    def test_the_bill_is_its_lines_and_each_line_its_quantity_at_its_price(self):
        settings = cost.environment_settings("dev")
        rows, month = cost.lines_of_cost(figures(), PRICES, settings, rate=10, reads=0.9)
        self.assertEqual(month, 10 * 730 * 3600)
        lines = {r[0].split(" (")[0].split(",")[0]: r[3] for r in rows}
        self.assertAlmostEqual(lines["API Gateway REST requests"], month / 1e6 * 3.50)
        # 10% POSTs: 1 command + 0.5 projector each; 90% reads: 1 query each.
        invocations = month * (0.1 * 1.5 + 0.9)
        self.assertAlmostEqual(lines["Lambda requests"], invocations / 1e6 * 0.20)
        command = [r for r in rows if r[0].startswith("Lambda duration, command")][0]
        # dev runs on arm64 (variables.tf's default): Graviton's price per GB-s.
        self.assertEqual(settings["architecture"], "arm64")
        self.assertAlmostEqual(command[3], month * 0.1 * 0.020 * 0.25 * PRICES["lambda"]["gb_second_arm64"])
        self.assertAlmostEqual(lines["DynamoDB write request units"], month * 0.1 * 5 / 1e6 * 0.625)
        self.assertAlmostEqual(lines["DynamoDB read request units"], month * 0.9 * (0.5 + 1.5) / 2 / 1e6 * 0.125)
        self.assertAlmostEqual(lines["CloudWatch alarms"], 12 * 0.10)
        ingested = (invocations * 1000 + month * 300) / 1e9
        self.assertAlmostEqual(lines["CloudWatch Logs ingested"], ingested * 0.50)
        text = cost.report(figures(), PRICES, "dev", 10, 0.9)
        total = float(text.split("| **total** |")[1].split("**$")[1].split("**")[0].replace(",", ""))
        self.assertAlmostEqual(total, sum(r[3] for r in rows), places=2)

    def test_default_logging_changes_the_logs_and_the_duration_and_nothing_else(self):
        settings = cost.environment_settings("dev")
        ours, _ = cost.lines_of_cost(figures(), PRICES, settings, 10, 0.9)
        theirs, _ = cost.lines_of_cost(figures(), PRICES, settings, 10, 0.9, default_logging=True)
        changed = {a[0].split(",")[0].split(" (")[0] for a, b in zip(ours, theirs) if abs(a[3] - b[3]) > 1e-12}
        self.assertEqual(changed, {"Lambda duration", "CloudWatch Logs ingested", "CloudWatch Logs stored"})
        text = cost.report(figures(), PRICES, "dev", 10, 0.9)
        self.assertIn("books-telemetry saves", text)  # 1,000 bytes against 1,500, and 1 ms less billed is less
        self.assertIn("costs", cost.report(figures(billed_ms=200, post_runtime_ms=150), PRICES, "dev", 10, 0.9))

    def test_capacity_names_what_would_stop_10000_requests_a_second(self):
        settings = cost.environment_settings("prod")
        rows, limits = cost.capacity(figures(billed_ms=20), PRICES, settings, 10_000, 0.9)
        needed = {r[0]: r[1] for r in rows}
        self.assertEqual(needed["Lambda concurrency, query"], "180")  # 9,000/s × 20 ms
        self.assertEqual(needed["Lambda concurrency, command"], "20")
        text = "\n".join(limits)
        self.assertIn("query's reserved concurrency is 100", text)
        self.assertIn("usage plan's throttle (50 requests/s", text)
        self.assertIn("API Gateway's account throttle", text)
        self.assertNotIn("command's reserved", text)
        _, limits = cost.capacity(figures(billed_ms=200), PRICES, settings, 10_000, 0.9)
        self.assertTrue(any("concurrent executions" in limit for limit in limits))


if __name__ == "__main__":
    unittest.main()
