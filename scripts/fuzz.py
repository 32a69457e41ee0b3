#!/usr/bin/env python3
"""Runs the fuzz targets of fuzz/ (cargo fuzz, libFuzzer), each for a bounded time.

    scripts/fuzz.py --seconds 300 [--sanitizer address] [TARGET...]

Every target starts from its seeds (fuzz/seeds/TARGET, taken from the tests and AWS's documented
examples) and the corpus earlier runs grew (.build/fuzz/corpus/TARGET), with its dictionary when
it has one (fuzz/dictionaries/TARGET.dict). An input that fails is written to
fuzz/regressions/TARGET/, where `cargo test` replays it from then on (tests/fuzz_inputs.rs of the
crate that owns the parser): commit it with the fix.

Writes .build/fuzz/summary.json (per target: seconds, executions, coverage, corpus, failure) for
the reliability report, prints a table, and exits 1 when any target failed.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from provenance import commit

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
BUILD = Path(os.environ.get("BUILD", ROOT / ".build"))
# The nightly cargo fuzz builds with, as mk/fuzz.mk resolved the pinned FUZZ_TOOLCHAIN (never a
# default of its own: that would be a second, unpinned choice).
TOOLCHAIN = os.environ.get("FUZZ_TOOLCHAIN", "")
HOST_TRIPLE = "x86_64-unknown-linux-gnu"


def targets() -> list[str]:
    return sorted(path.stem for path in (FUZZ / "fuzz_targets").glob("*.rs"))


def stat(log: str, name: str) -> int | None:
    found = re.findall(rf"^stat::{name}:\s+(\d+)", log, re.MULTILINE)
    return int(found[-1]) if found else None


def coverage(log: str) -> tuple[int | None, int | None]:
    """The last `cov:` (edges) and `ft:` (features) libFuzzer printed."""
    found = re.findall(r"\bcov: (\d+) ft: (\d+)", log)
    return (int(found[-1][0]), int(found[-1][1])) if found else (None, None)


def run(target: str, seconds: int, binary_dir: Path) -> dict:
    corpus = BUILD / "fuzz" / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    regressions = FUZZ / "regressions" / target
    regressions.mkdir(parents=True, exist_ok=True)
    before = set(regressions.iterdir())
    command = [str(binary_dir / target), str(corpus), str(FUZZ / "seeds" / target),
               f"-max_total_time={seconds}", "-print_final_stats=1", "-timeout=10", "-rss_limit_mb=2048",
               f"-artifact_prefix={regressions}/"]
    dictionary = FUZZ / "dictionaries" / f"{target}.dict"
    if dictionary.exists():
        command.append(f"-dict={dictionary}")
    started = time.monotonic()
    # The fuzzer may never end on its own if an input hangs: -timeout ends that input, and this
    # bound ends the run.
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, errors="replace",
                            timeout=seconds * 3 + 120)
    took = time.monotonic() - started
    log = result.stdout + result.stderr
    (BUILD / "fuzz" / f"{target}.log").write_text(log)
    edges, features = coverage(log)
    saved = sorted(str(p.relative_to(ROOT)) for p in set(regressions.iterdir()) - before)
    failure = None
    if result.returncode != 0:
        panic = re.search(r"panicked at .*?\n(.*?)(?:\nstack backtrace|\nnote:)", log, re.DOTALL)
        failure = (panic.group(0).strip() if panic else log[-2000:]).strip()
    return {
        "target": target,
        "seconds": round(took, 1),
        "executions": stat(log, "number_of_executed_units"),
        "exec_per_s": stat(log, "average_exec_per_sec"),
        "edges": edges,
        "features": features,
        "corpus": sum(1 for _ in corpus.iterdir()),
        "seeds": sum(1 for _ in (FUZZ / "seeds" / target).iterdir()),
        "saved": saved,
        "failure": failure,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=300, help="per target")
    parser.add_argument("--sanitizer", default="address", choices=["address", "none"])
    parser.add_argument("targets", nargs="*", help="default: every target in fuzz/fuzz_targets")
    args = parser.parse_args()
    ran_at = commit()
    if not TOOLCHAIN:
        sys.exit("FUZZ_TOOLCHAIN is not set: run make fuzz or make test-fuzz (mk/fuzz.mk finds or installs "
                 "the pinned nightly), or set it to an installed nightly toolchain")
    chosen = args.targets or targets()
    unknown = set(chosen) - set(targets())
    if unknown:
        sys.exit(f"no such fuzz target: {', '.join(sorted(unknown))} (see fuzz/fuzz_targets)")

    print(f"==> building {len(chosen)} fuzz targets (cargo +{TOOLCHAIN} fuzz build, sanitizer {args.sanitizer})",
          flush=True)
    # cargo fuzz builds one target or all of them; all cost hardly more than one. In release mode
    # cargo fuzz forces one codegen unit on every crate (for ThinLTO's imports, which our profile
    # does not use: fuzz/Cargo.toml, lto = false), which compiles each generated AWS SDK crate on
    # one core; the profile's 16 are asked for instead.
    # The fuzz crates are a workspace of their own, with a lock file of their own: cargo fuzz has no
    # --locked, so a dependency the main workspace gained (books-local's, which the targets use)
    # would be resolved and written here silently. Refused instead, with the file to commit.
    lock = FUZZ / "Cargo.lock"
    locked = lock.read_bytes()
    subprocess.run(["cargo", f"+{TOOLCHAIN}", "fuzz", "build", "-O", "--codegen-units", "16", "-s", args.sanitizer],
                   cwd=FUZZ, check=True, close_fds=False)  # keeps make's jobserver
    if lock.read_bytes() != locked:
        sys.exit("error: fuzz/Cargo.lock was stale (the crates the fuzz targets use changed their dependencies); "
                 "cargo fuzz build has updated it.\n       fix: review and commit fuzz/Cargo.lock")
    binary_dir = FUZZ / "target" / HOST_TRIPLE / "release"

    results = []
    for target in chosen:
        print(f"==> fuzzing {target} for {args.seconds} s", flush=True)
        results.append(run(target, args.seconds, binary_dir))
    summary = {"commit": ran_at, "sanitizer": args.sanitizer, "seconds_per_target": args.seconds, "targets": results}
    (BUILD / "fuzz").mkdir(parents=True, exist_ok=True)
    (BUILD / "fuzz" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    print(f"\n{'target':<24}{'seconds':>8}{'executions':>12}{'exec/s':>8}{'edges':>7}{'corpus':>8}  result")
    for r in results:
        print(f"{r['target']:<24}{r['seconds']:>8}{r['executions'] or 0:>12}{r['exec_per_s'] or 0:>8}"
              f"{r['edges'] or 0:>7}{r['corpus']:>8}  {'FAILED' if r['failure'] else 'ok'}")
    failed = [r for r in results if r["failure"]]
    for r in failed:
        print(f"\n{r['target']} failed (log: {BUILD / 'fuzz' / (r['target'] + '.log')}):\n{r['failure']}")
        for path in r["saved"]:
            print(f"  the input is saved as {path}: cargo test replays it; commit it with the fix")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
