"""The root certificates the images carry (scripts/check_image.py): where the binaries' HTTPS
clients look for them, according to the crate that looks (the locked openssl-probe's own list),
and what check_image.py requires of them."""

import json
import pathlib
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import certifi  # noqa: E402

import check_image  # noqa: E402


def locked_crate_source(name: str) -> pathlib.Path:
    """The source folder of the locked version of a crate the workspace builds with."""
    # One platform's dependencies: the others' manifests are not fetched by a build (offline).
    host = re.search(r"^host: (\S+)", subprocess.run(["rustc", "-vV"], capture_output=True, text=True).stdout, re.M)
    metadata = subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked", "--offline",
                               "--filter-platform", host.group(1)], cwd=ROOT, capture_output=True, text=True,
                              check=True)
    packages = [p for p in json.loads(metadata.stdout)["packages"] if p["name"] == name]
    if len(packages) != 1:
        raise AssertionError(f"expected one locked {name}, found {[p['version'] for p in packages]}")
    return pathlib.Path(packages[0]["manifest_path"]).parent


class WhereTheBinariesLook(unittest.TestCase):
    def test_the_bundle_is_the_first_file_openssl_probe_looks_for_on_linux(self):
        source = (locked_crate_source("openssl-probe") / "src" / "lib.rs").read_text()
        linux = re.search(r'#\[cfg\(target_os = "linux"\)\]\s*const CERTIFICATE_FILE_NAMES: &\[&str\] = &\[(.*?)\];',
                          source, re.DOTALL)
        self.assertIsNotNone(linux, "openssl-probe no longer lists Linux's certificate files this way")
        files = re.findall(r'"([^"]+)"', linux.group(1))
        self.assertEqual(files[0], "/" + check_image.CA_BUNDLE)

    def test_the_sdks_client_asks_openssl_probe_through_rustls_native_certs(self):
        source = (locked_crate_source("rustls-native-certs") / "src" / "unix.rs").read_text()
        self.assertIn("openssl_probe::probe()", source)


class TheBundle(unittest.TestCase):
    def setUp(self):
        self.folder = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.folder)

    def bundle(self, text: str, mode: int = 0o644) -> pathlib.Path:
        path = self.folder / "ca-certificates.crt"
        path.write_text(text)
        path.chmod(mode)
        return path

    def test_certifis_bundle_holds_the_roots_of_awss_endpoints(self):
        self.assertEqual(check_image.bundle_problems(self.bundle(pathlib.Path(certifi.where()).read_text())), [])

    def test_a_bundle_without_amazons_roots_is_refused(self):
        text = pathlib.Path(certifi.where()).read_text()
        kept = [block for block in re.split(r"(?=\n# Issuer:)", text) if "Amazon Root CA" not in block]
        problems = check_image.bundle_problems(self.bundle("".join(kept)))
        self.assertTrue(any("Amazon Root CA 1" in problem for problem in problems), problems)

    def test_a_bundle_the_function_cannot_read_is_refused(self):
        problems = check_image.bundle_problems(self.bundle(pathlib.Path(certifi.where()).read_text(), 0o600))
        self.assertTrue(any("readable by all" in problem for problem in problems), problems)
        executable = self.bundle(pathlib.Path(certifi.where()).read_text(), 0o755)
        self.assertTrue(executable.stat().st_mode & stat.S_IXOTH)
        self.assertTrue(check_image.bundle_problems(executable))

    def test_not_a_bundle_is_refused(self):
        self.assertTrue(any("not a PEM bundle" in p for p in check_image.bundle_problems(self.bundle("nothing"))))


if __name__ == "__main__":
    unittest.main()
