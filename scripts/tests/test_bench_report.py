"""Tests of scripts/bench_report.py: percentiles, and a whole report from synthetic results."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCRIPTS))
import bench_report  # noqa: E402
import check_bench  # noqa: E402
sys.path.insert(0, str(SCRIPTS / "tests"))
import test_cost  # noqa: E402


class Percentiles(unittest.TestCase):
    def test_nearest_rank(self):
        values = list(range(1, 101))
        self.assertEqual(bench_report.percentile(values, 50), 50)
        self.assertEqual(bench_report.percentile(values, 99), 99)
        self.assertEqual(bench_report.percentile(values, 100), 100)
        self.assertEqual(bench_report.percentile([7.0], 99), 7.0)

    def test_ignores_missing_values_and_reports_none_for_nothing(self):
        self.assertEqual(bench_report.percentile([None, 3.0, None], 50), 3.0)
        self.assertIsNone(bench_report.percentile([], 50))
        self.assertIsNone(bench_report.percentile([None], 50))


def cold_sample(variant, first, ready=None):
    extension = None
    if ready is not None:
        extension = {"name": variant, "spawned_ms": 1.0, "registered_ms": 1.5, "subscribed_ms": 2.0,
                     "ready_ms": 1.0 + ready, "ready_after_spawn_ms": ready, "on_cpu_ms": 1.0, "runqueue_ms": ready / 4}
    return {"variant": variant, "first_response_ms": first, "init_ms": first / 2, "runtime_ms": 1.0,
            "post_runtime_ms": 0.1, "extension": extension}


def warm(client, post, rss_kb=None, shipped=None):
    extension = None
    if rss_kb:
        extension = {"rss_idle_kb": rss_kb - 100, "rss_load_kb": rss_kb, "rss_peak_kb": rss_kb,
                     "cpu_ms_per_invocation": 0.05}
    return {"client_ms": client, "runtime_ms": client, "post_runtime_ms": post, "extension": extension,
            "shipped": shipped}


def shipped(reports, lost=0, duplicated=0):
    return {"invocations": 250, "reports": reports, "lost": lost, "duplicated": duplicated}


def floor_run(function_ms, extension_ms=None, rss_mib=None, post=0.2, shipped=None):
    """One variant of books-bench floor: the function's and the extension's process figures."""
    def process(cpu, rss):
        return {"rss_idle_kb": rss * 1024, "rss_load_kb": rss * 1024, "rss_peak_kb": rss * 1024,
                "rss_file_kb": 3.5 * 1024, "rss_anon_kb": (rss - 3.5) * 1024, "cpu_ms_per_invocation": cpu}
    return {"freeze": True, "client_ms": [1.0] * 200, "runtime_ms": [1.0] * 200, "post_runtime_ms": [post] * 200,
            "function": process(function_ms, 3), "shipped": shipped,
            "extension": None if extension_ms is None else process(extension_ms, rss_mib)}


def floor_results(ours_ms=0.10, ours_rss=5.0, ours_post=0.3, shipped=None):
    return {"memory_mb": 256, "invocations": {
        "bare function": floor_run(0.14),
        "ping": floor_run(0.175),
        "ping, bare extension": floor_run(0.18, 0.08, 1.5, post=0.2),
        "ping, books-telemetry adaptive": floor_run(0.18, ours_ms, ours_rss, post=ours_post,
                                                    shipped=shipped or {"invocations": 250, "reports": 250,
                                                                        "lost": 0, "duplicated": 0,
                                                                        "delay_ms": [4000, 4500, 9000]}),
        "ping, books-telemetry background": floor_run(0.18, 0.12, 6.0, shipped={"invocations": 250, "reports": 250,
                                                                                 "lost": 0, "duplicated": 0}),
        "peer": floor_run(0.18, 0.25, 6.0, post=0.4),
    }, "profile": {"invocations": 2000,
                   "by_object": [{"share": 30.0, "role": "function", "what": "books-bench-ping"},
                                 {"share": 20.0, "role": "extension", "what": "[kernel.kallsyms]"}],
                   "symbols": [{"share": 8.0, "role": "extension", "what": "[kernel.kallsyms] [k] finish_task_switch"},
                               {"share": 2.0, "role": "function", "what": "books-bench-ping [.] parse"},
                               {"share": 1.0, "role": "other", "what": "perf [.] main"}]}}


class Report(unittest.TestCase):
    floor = None

    def write_results(self, directory, background_post, own_stack_rps):
        cold = []
        for _ in range(30):
            cold += [cold_sample("none", 100.0), cold_sample("books-telemetry", 105.0, ready=3.0),
                     cold_sample("peer", 130.0, ready=9.0)]
        invocations = {
            "none": warm([2.0] * 200, [0.01] * 200),
            "books-telemetry end": warm([30.0] * 200, [28.0] * 200, 6000),
            "books-telemetry background": warm([2.1] * 200, [background_post] * 200, 6000),
            "books-telemetry adaptive": warm([2.2] * 200, [0.2] * 200, 6000),
            "books-telemetry end, no freeze": warm([30.0] * 200, [27.0] * 200, 6000, shipped(250)),
            "books-telemetry background, no freeze": warm([2.1] * 200, [0.1] * 200, 6000, shipped(249, 1)),
            "peer": warm([3.0] * 200, [0.05] * 200, 9000),
        }
        results = os.path.join(directory, "results")
        os.makedirs(results)
        ping = {"cold_starts": [cold_sample("ping", 20.0) for _ in range(30)] +
                               [cold_sample("ping books-telemetry", 22.0, ready=3.0) for _ in range(30)],
                "invocations": {"ping": warm([0.5] * 200, [0.01] * 200),
                                "ping books-telemetry": warm([0.6] * 200, [0.2] * 200, 6000)}}
        with open(os.path.join(results, "lambda.json"), "w") as f:
            json.dump({"function": "books-local-query", "memory_mb": 256, "cold_starts": cold,
                       "invocations": invocations, "ping": ping}, f)
        with open(os.path.join(results, "peers.json"), "w") as f:
            json.dump({"lambda-simulator": {"version": "0.2.0", "samples": {"cold_ms": [8.0] * 30, "warm_ms": [0.4] * 200}},
                       "cargo-lambda": {"version": "cargo-lambda 1.9.2 (67129fc 2026-08-21Z)",
                                        "samples": {"cold_ms": [9.0] * 30, "warm_ms": [1.5] * 197 + [44.0] * 3}}}, f)
        with open(os.path.join(results, "own_stack.json"), "w") as f:
            def run(connections, rps):
                return {"connections": connections, "environments": connections + 1,
                        "summary": {"requests": int(rps * 10), "seconds": 10.0, "rps": rps,
                                    "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
                                    "latency_ms": {"mean": 1.0, "p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 9.0}},
                        "new_environments": 1,
                        "cpu_ms_per_request": {"books-local": 0.2, "function": 0.1, "extension": 0.05, "endpoint": 0.3}}
            json.dump({"cpus": 2, "runs": [run(1, 900.0), run(8, own_stack_rps), run(64, 2500.0)],
                       "no_freeze": run(8, own_stack_rps * 1.2),
                       "profile": {"summary": {"seconds": 8.0, "rps": 2000.0},
                                   "by_process": {"books-local": 50.0, "function": 30.0, "extension": 20.0},
                                   "by_object": [{"share": 30.0, "role": "books-local", "what": "books-local"}],
                                   "symbols": [{"share": 3.0, "role": "books-local", "what": "[k] _raw_spin_unlock"}]}}, f)
        with open(os.path.join(results, "floor.json"), "w") as f:
            json.dump(self.floor or floor_results(), f)
        with open(os.path.join(results, "cost.json"), "w") as f:
            figures = test_cost.figures()
            figures["logs"]["access_log_bytes_per_request"] = 567
            json.dump(figures, f)
        with open(os.path.join(results, "api.jsonl"), "w") as f:
            for operation in ("get", "post"):
                for connections in (1, 8, 64):
                    summary = {"requests": 1000, "seconds": 10.0, "rps": 100.0 * connections,
                               "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
                               "latency_ms": {"mean": 5.0, "p50": 4.0, "p90": 6.0, "p99": 9.0, "max": 20.0}}
                    f.write(json.dumps({"operation": operation, "connections": connections, "summary": summary}) + "\n")
        with open(os.path.join(results, "data_plane.json"), "w") as f:
            grown = {"commit": [10.0] * 29 + [40.0], "cancel": [12.0] * 30, "get": [6.0] * 30}
            json.dump({"sizes": [0, 10000, 50000], "rounds": 30, "fill_s": {"0": 0.0, "10000": 8.0, "50000": 40.0},
                       "items": {"0": 2, "10000": 10000, "50000": 50000},
                       "latency_ms": {"0": {"commit": [9.0] * 30, "cancel": [10.0] * 30, "get": [6.0] * 30},
                                      "10000": grown, "50000": grown}}, f)
        pipeline = os.path.join(directory, "pipeline.json")
        with open(pipeline, "w") as f:
            json.dump({"records_per_pass": 8000, "deliveries_per_pass": 50, "rounds": {},
                       "pipeline_records_per_s": 250_000.0, "parse_records_per_s": 800_000.0,
                       "shipped_bytes_per_record": 270.0, "delivered_bytes_per_record": 400.0}, f)
        binary = os.path.join(directory, "books-telemetry")
        with open(binary, "wb") as f:
            f.write(b"\0" * (5 * 2**20))
        return results, pipeline, binary

    def report(self, background_post, own_stack_rps=2000.0):
        with tempfile.TemporaryDirectory() as directory:
            results, pipeline, binary = self.write_results(directory, background_post, own_stack_rps)
            out = os.path.join(directory, "out")
            subprocess.run([sys.executable, str(SCRIPTS / "bench_report.py"), "--results", results,
                            "--pipeline", pipeline, "--binaries", binary, "--out", out],
                           check=True, capture_output=True)
            plots = sorted(p for p in os.listdir(out) if p.endswith(".svg"))
            self.problems = check_bench.problems(out)
            with open(os.path.join(out, "report.md")) as f:
                text = f.read()
            with open(os.path.join(out, "report.md"), "w") as f:
                f.write(text.replace("| 1000 | 0 |", "| 1000 | 3 |", 1))  # one run with errors
            self.problems_with_errors = check_bench.problems(out)
            with open(os.path.join(out, "report.md"), "w") as f:
                f.write(text)
            with open(os.path.join(out, "report.md")) as f:
                return f.read(), plots

    def test_every_part_with_its_plots_and_goals(self):
        text, plots = self.report(background_post=0.3)
        for heading in ("## Goals", "## 1. Cold start", "## 2. Extension cost per invocation",
                        "## 3. Telemetry pipeline throughput", "## 4. API throughput", "## 5. Side by side with a peer",
                        "## 6. Data plane as the tables grow", "## 7. Our stack alone",
                        "## 8. Other local Lambda emulators, side by side"):
            self.assertIn(heading, text)
        self.assertEqual(plots, ["api-throughput.svg", "cold-start.svg", "invocation-latency.svg", "post-runtime.svg"])
        for plot in plots:
            self.assertIn(f"]({plot})", text)
        self.assertIn("| cold start with vs without extension (p50) | ≤ 1.1× | 1.05× | met |", text)
        self.assertIn("| extension ready after spawn | < 5 ms | p50 3.00 ms, p99 3.00 ms (beside a function of light init: "
                      "p99 3.00 ms; section 1) | met |", text)
        self.assertIn("| extension binary | < 5 MiB | 5.00 MiB | **not met** |", text)
        self.assertIn("| post-runtime p99, background flush | < 1 ms | 0.300 ms (no extension at all: 0.010 ms, the runtime's own `next` through the emulator on these cores; section 2) | met |", text)
        self.assertIn("| peer (lambda-extension crate) | 130.00 | 130.00 | 130.00 | 65.00 |", text)
        self.assertIn("| books-telemetry end | 200 | 30.00 | 30.00 | 28.000 | 28.000 | 15.00× |", text)
        self.assertIn("### Flush strategies, frozen between invocations or not", text)
        self.assertIn("| background | off | 0.100 | 0.100 | 2.10 | 249 of 250 | 1 | 0 |", text)
        self.assertIn("| adaptive | off | not measured |", text)
        self.assertIn("| 50,000 | 10.00 | 40.00 | 12.00 | 12.00 | 6.00 | 6.00 |", text)
        self.assertIn("| POST transaction, largest table vs empty (p50) | ≤ 1.2× at 0 → 50,000 items | 1.11× (0 → 50,000) "
                      "| met |", text)
        # Section 7's CPU per request at one connection (function 0.1 ms, extension 0.05) as billed ms.
        self.assertIn("| 1,769 | 1.000 | 0.10 | 0.05 | 0.15 | 33% |", text)
        self.assertIn("| 128 | 0.072 | 1.38 | 0.69 | 2.07 | 33% |", text)
        # Section 9 from cost.json, and the figures beside the report for make cost.
        self.assertIn("## 9. Cost and capacity", text)
        self.assertIn("| command | 1 / 0 / 0 | 20.0 | 20 | 20 | 1.00 | 1,000 | 1,500 |", text)

    def test_the_checker_accepts_a_whole_report_and_refuses_failed_requests(self):
        self.report(background_post=0.3)
        self.assertEqual(self.problems, [])
        self.assertEqual(len(self.problems_with_errors), 1, self.problems_with_errors)
        self.assertIn("API run with errors", self.problems_with_errors[0])

    def test_the_extension_table_and_what_its_p99_pays_for(self):
        text, _ = self.report(background_post=0.3)
        self.assertIn("| books-telemetry | 0.50 | 0.50 | 1.00 | 1.00 | 3.00 | 3.00 | 1.00 | 1.00 | 0.75 | 0.75 |", text)
        self.assertIn("| books-telemetry, beside `books-bench-ping` | 0.50 | 0.50 | 1.00 | 1.00 | 3.00 | 3.00 |", text)
        # The slowest tenth, split: 12 ms ready = 2 ms on a CPU + 4 ms waiting for one + 6 ms on answers.
        samples = [{"extension": {"ready_after_spawn_ms": 3.0, "on_cpu_ms": 1.0, "runqueue_ms": 0.5}} for _ in range(18)]
        samples += [{"extension": {"ready_after_spawn_ms": 12.0, "on_cpu_ms": 2.0, "runqueue_ms": 4.0}} for _ in range(2)]
        beside = [{"ready_after_spawn_ms": 2.0}] * 10
        (line, _) = bench_report.ready_breakdown(samples, beside)
        self.assertIn("the slowest tenth of these cold starts (2) took 12.00 ms on average, of which the extension's "
                      "main thread ran 2.00 ms and waited 4.00 ms for a CPU; the other 6.00 ms", line)
        self.assertIn("The fastest half took 3.00 ms (1.00 ms on a CPU, 0.50 ms waiting for one, 1.50 ms on answers)", line)
        self.assertIn("ready at p50 2.00 ms and p99 2.00 ms", line)
        self.assertEqual(bench_report.ready_breakdown(samples[:5], beside), [], "too few samples to say")

    def test_our_stack_alone_and_the_other_emulators(self):
        text, _ = self.report(background_post=0.3, own_stack_rps=6000.0)
        self.assertIn("| GET through our stack alone (no DynamoDB) | ≥ 5,000 requests/s at 8 connections | "
                      "6,000 requests/s | met |", text)
        self.assertIn("| 8 | off | 7,200 | 1.00 | 3.00 | 72000 | 0 | 9 | 1 | 0.200 | 0.100 | 0.050 | 0.350 | 0.300 |", text)
        self.assertIn("CPU samples by process: books-local 50.0 %, function 30.0 %, extension 20.0 % (*other*", text)
        self.assertIn("a request costs 0.350 ms of CPU across books-local, the function and the extension, so 2 cores "
                      "serve at most 5,714 requests/s", text)
        self.assertIn("5,000 requests/s needs at most 0.400 ms per request", text)
        self.assertIn("| cargo lambda watch | 1.9.2 (67129fc 2026-08-21Z) | 9.00 | 9.00 | 1.500 | 44.000 | 30 | 200 |", text)
        self.assertIn("| books-local, books-telemetry | this tree | 22.00 | 22.00 | 0.600 | 0.600 | 30 | 200 |", text)
        text, _ = self.report(background_post=0.3, own_stack_rps=2000.0)
        self.assertIn("| GET through our stack alone (no DynamoDB) | ≥ 5,000 requests/s at 8 connections | "
                      "2,000 requests/s | **not met** |", text)

    def test_against_the_floor(self):
        text, _ = self.report(background_post=0.3)
        self.assertIn("## 10. Against the floor", text)
        self.assertIn("| function CPU per invocation vs a bare `lambda_runtime` function | ≤ 1.3× | 1.25× "
                      "(0.175 vs 0.140 ms; section 10) | met |", text)
        self.assertIn("| extension CPU per invocation vs the peer | ≤ 0.5× | 0.40× (0.100 vs 0.250 ms) | met |", text)
        self.assertIn("| extension peak RSS vs the peer | ≤ 1× | 0.83× (5.0 vs 6.0 MiB) | met |", text)
        self.assertIn("| post-runtime p99, adaptive flush, vs the peer | ≤ 1× | 0.300 vs 0.400 ms | met |", text)
        self.assertIn("| telemetry pipeline vs a bare JSON parse | ≤ 2.5× | 3.20× (section 3) | **not met** |", text)
        self.assertIn("| `books-bench-ping` (ours) | 0.175 | 1.25× | 3.0 | 1.00 |", text)
        self.assertIn("| books-telemetry, adaptive (shipped) | 0.100 | 1.25× | 0.40× | 5.0 | 3.5 + 1.5 | 0.300 | 0.300 | "
                      "4.5 | 250 of 250 |", text)
        # CPU per invocation at Lambda's share: 0.175 ms at 128 MB (0.0724 of a vCPU) runs 2.42 ms.
        self.assertIn("| `books-bench-ping` (ours) | 2.42 | 1.21 | 0.60 | 0.30 | 0.17 |", text)
        # 256 MB: 0.175 / 0.1447 = 1.21 ms alone, 0.275 / 0.1447 = 1.90 with ours: billed 2 ms either way.
        self.assertIn("| 256 (dev command, dev query) | 1.21 | 1.90 | 2 → 2 | 0% |", text)
        self.assertIn("| 8.0 % | `[kernel.kallsyms] [k] finish_task_switch` |", text)
        self.assertNotIn("perf [.] main", text)

    def test_missing_reports_against_the_floor_are_a_problem(self):
        self.floor = floor_results(ours_ms=0.2, ours_rss=7.0, ours_post=0.5,
                                   shipped={"invocations": 250, "reports": 248, "lost": 2, "duplicated": 0})
        text, _ = self.report(background_post=0.3)
        self.assertIn("| extension CPU per invocation vs the peer | ≤ 0.5× | 0.80× (0.200 vs 0.250 ms) | **not met** |", text)
        self.assertIn("| extension peak RSS vs the peer | ≤ 1× | 1.17× (7.0 vs 6.0 MiB) | **not met** |", text)
        self.assertIn("| post-runtime p99, adaptive flush, vs the peer | ≤ 1× | 0.500 vs 0.400 ms | **not met** |", text)
        self.assertEqual(len(self.problems), 1, self.problems)
        self.assertIn("did not ship one report per invocation against the floor", self.problems[0])

    def test_a_missed_goal_says_so(self):
        text, _ = self.report(background_post=4.0)
        self.assertIn("| post-runtime p99, background flush | < 1 ms | 4.000 ms (no extension at all: 0.010 ms, the runtime's own `next` through the emulator on these cores; section 2) | **not met** |", text)


if __name__ == "__main__":
    unittest.main()
