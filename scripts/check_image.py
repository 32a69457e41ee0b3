#!/usr/bin/env python3
"""Checks one unpacked image against what the functions need (scripts/test-images).

    check_image.py --kind command|query --arch arm64|x86_64 --digest sha256:… \
                   --inspect INSPECT.json --config CONFIG.json ROOTFS

- the files are exactly the binaries of that image, executable, where Lambda looks for them
  (the runtime in /var/task, the extension in /opt/extensions), and the root certificates their
  HTTPS clients trust, readable by every user (Lambda runs the function as one without
  privileges), holding the roots AWS's endpoints chain to;
- every binary is a static ELF for the architecture (no program interpreter, no dynamic
  section): the image needs nothing from its base;
- the image configuration clears the entrypoint, runs the image's own function by absolute
  path, works in /var/task, and is for linux/<arch>; the registry serves it under the digest
  the delivery recorded.
"""

import argparse
import json
import os
import pathlib
import stat
import struct
import sys
import warnings

# Where openssl-probe, which the AWS SDK's rustls client asks for the system's roots, looks first
# on Linux (scripts/tests/test_check_image.py holds it to the locked crate's own list).
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
BINARIES = {
    "command": {"var/task/books-command", "opt/extensions/books-telemetry"},
    "query": {"var/task/books-query", "var/task/books-projector", "opt/extensions/books-telemetry"},
}
EXPECTED = {kind: files | {CA_BUNDLE} for kind, files in BINARIES.items()}
# The roots of Amazon Trust Services, which issue the certificates of AWS's service endpoints.
AWS_ROOTS = {"Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4",
             "Starfield Services Root Certificate Authority - G2"}
CMD = {"command": ["/var/task/books-command"], "query": ["/var/task/books-query"]}
ELF_MACHINE = {"x86_64": 62, "arm64": 183}
PT_DYNAMIC, PT_INTERP = 2, 3
DT_NULL, DT_NEEDED = 0, 1


def elf_problems(path, arch):
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        return ["not an ELF file"]
    if data[4] != 2 or data[5] != 1:
        return ["not a 64-bit little-endian ELF"]
    problems = []
    machine = struct.unpack_from("<H", data, 18)[0]
    if machine != ELF_MACHINE[arch]:
        problems.append(f"built for ELF machine {machine}, not {arch} ({ELF_MACHINE[arch]})")
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        header = phoff + i * phentsize
        kind = struct.unpack_from("<I", data, header)[0]
        if kind == PT_INTERP:
            problems.append("dynamically linked (has a program interpreter)")
        if kind == PT_DYNAMIC:
            # A static PIE has a dynamic section (for its own relocations) but needs no library.
            offset, _, _, size = struct.unpack_from("<QQQQ", data, header + 8)
            for entry in range(offset, offset + size, 16):
                tag = struct.unpack_from("<q", data, entry)[0]
                if tag == DT_NULL:
                    break
                if tag == DT_NEEDED:
                    problems.append("needs shared libraries (DT_NEEDED)")
                    break
    return problems


def bundle_problems(path):
    from cryptography import x509
    from cryptography.utils import CryptographyDeprecationWarning
    from cryptography.x509.oid import NameOID

    mode = path.stat().st_mode
    problems = []
    if mode & stat.S_IROTH == 0 or mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        problems.append(f"mode {oct(mode & 0o777)}, expected readable by all and not executable")
    try:
        with warnings.catch_warnings():
            # One of Mozilla's roots has a serial number RFC 5280 disallows (not ours to mend).
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except ValueError as error:
        return problems + [f"not a PEM bundle: {error}"]
    names = {attribute.value for certificate in certificates
             for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    missing = AWS_ROOTS - names
    if missing:
        problems.append(f"lacks the roots AWS's endpoints chain to: {sorted(missing)}")
    return problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", required=True, choices=sorted(EXPECTED))
    parser.add_argument("--arch", required=True, choices=sorted(ELF_MACHINE))
    parser.add_argument("--digest", required=True)
    parser.add_argument("--inspect", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("rootfs")
    args = parser.parse_args()
    rootfs = pathlib.Path(args.rootfs)
    failures = []

    files = set()
    for directory, _, names in os.walk(rootfs):
        for name in names:
            files.add(str((pathlib.Path(directory) / name).relative_to(rootfs)))
    if files != EXPECTED[args.kind]:
        failures.append(f"files {sorted(files)}, expected {sorted(EXPECTED[args.kind])}")
    sizes = {}
    if (rootfs / CA_BUNDLE).is_file():
        failures += [f"{CA_BUNDLE}: {p}" for p in bundle_problems(rootfs / CA_BUNDLE)]
    for name in sorted(files & BINARIES[args.kind]):
        path = rootfs / name
        if not path.stat().st_mode & stat.S_IXUSR:
            failures.append(f"{name} is not executable")
        failures += [f"{name}: {p}" for p in elf_problems(path, args.arch)]
        sizes[name] = path.stat().st_size

    config = json.loads(pathlib.Path(args.config).read_text())
    inner = config.get("config", {})
    if inner.get("Entrypoint") not in (None, []):
        failures.append(f"entrypoint {inner.get('Entrypoint')} (must be cleared)")
    if inner.get("Cmd") != CMD[args.kind]:
        failures.append(f"command {inner.get('Cmd')}, expected {CMD[args.kind]}")
    if inner.get("WorkingDir") != "/var/task":
        failures.append(f"working directory {inner.get('WorkingDir')!r}, expected /var/task")
    expected_arch = {"x86_64": "amd64", "arm64": "arm64"}[args.arch]
    if (config.get("os"), config.get("architecture")) != ("linux", expected_arch):
        failures.append(f"platform {config.get('os')}/{config.get('architecture')}, expected linux/{expected_arch}")
    inspect = json.loads(pathlib.Path(args.inspect).read_text())
    if inspect.get("Digest") != args.digest:
        failures.append(f"the registry serves {inspect.get('Digest')} for the tag, the delivery recorded {args.digest}")

    if failures:
        print(f"image {args.kind} failed its checks:", *failures, sep="\n  ", file=sys.stderr)
        raise SystemExit(1)
    listing = ", ".join(f"{name} ({size / 1e6:.1f} MB)" for name, size in sizes.items())
    print(f"    books-{args.kind}: {listing}; static {args.arch} ELF; command {CMD[args.kind]}")


if __name__ == "__main__":
    main()
