"""One Terraform working directory per stack and environment (`.deploy/<env>/stack`, or
`.deploy/account-<account>-<region>/stack`), as Terraform means a working directory: a root
module's configuration, its `.terraform` folder, its dependency lock file and a backend.

The configuration is copied from the committed root module at every command, never linked: what
Terraform writes in its working directory (the lock file, to which an install from the registry
adds hashes) then stays there and cannot break the next command or change the checkout. Only the
backend is the working directory's own: `backend.tf` (the environments' root module declares
none; the account stack's `backend "local" {}` is replaced through an override file for S3).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import Refusal

LOCK_FILE = ".terraform.lock.hcl"
# What a root module's folder holds that is not its configuration.
NOT_CONFIGURATION = {"tests", "environments", "account", "keys", ".terraform", "README.md"}
NOISE = ("Still creating", "Still modifying", "Still destroying", "Still reading")


@dataclass(frozen=True)
class Backend:
    """Where a working directory keeps its state: `kind` is local or s3; `config_files` are
    passed to init as partial backend configuration, in order (a later file wins)."""

    kind: str
    local_path: str = "../terraform.tfstate"
    config_files: tuple[Path, ...] = ()
    # key=value settings after the files (they win over them).
    config_values: tuple[str, ...] = ()
    # The account stack declares `backend "local" {}` itself: S3 replaces it by an override file.
    declared_local: bool = False

    def backend_file(self) -> tuple[str, str] | None:
        if self.kind == "local":
            return (None if self.declared_local else
                    ("backend.tf", f'terraform {{\n  backend "local" {{\n    path = "{self.local_path}"\n  }}\n}}\n'))
        name = "backend_override.tf" if self.declared_local else "backend.tf"
        return name, 'terraform {\n  backend "s3" {}\n}\n'

    def init_arguments(self) -> list[str]:
        arguments = [f"-backend-config={path}" for path in self.config_files]
        arguments += [f"-backend-config={value}" for value in self.config_values]
        if self.kind == "local" and self.declared_local:
            arguments.append(f"-backend-config=path={self.local_path}")
        return arguments


class Stack:
    """A root module's working directory: `source` is the committed module, `folder` its copy."""

    def __init__(self, terraform: str, source: Path, folder: Path, name: str):
        self.terraform = terraform
        self.source = source
        self.folder = folder
        self.name = name

    # --- the working directory ------------------------------------------------------------------

    def prepare(self, backend: Backend, migrate: bool = False) -> None:
        """Copies the configuration afresh (everything but `.terraform`) and runs init; with
        `migrate`, init moves the state from the backend of the last init to this one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for entry in self.folder.iterdir():
            if entry.name == ".terraform":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for entry in self.source.iterdir():
            if entry.name in NOT_CONFIGURATION or entry.name.endswith((".tfstate", ".backup")):
                continue
            if entry.is_dir():
                # A linked folder (terraform/dashboards) is copied as what it links to.
                shutil.copytree(entry, self.folder / entry.name, symlinks=False)
            elif entry.suffix in (".tf", ".json", ".hcl") or entry.name == LOCK_FILE:
                shutil.copyfile(entry, self.folder / entry.name)
        generated = backend.backend_file()
        if generated:
            (self.folder / generated[0]).write_text(generated[1])
        log = self.folder.parent / "init.log"
        moving = ["-migrate-state", "-force-copy"] if migrate else []
        result = self.run("init", "-input=false", "-no-color", *moving, *backend.init_arguments(), capture=True,
                          check=False)
        log.write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            hint = ""
            if "Backend configuration changed" in result.stdout + result.stderr:
                hint = (f"\nhint: the state of {self.name} moved between backends; move it with: "
                        f"terraform -chdir={self.folder} init -migrate-state")
            raise Refusal(f"terraform init of {self.name} failed:\n{result.stdout}{result.stderr}{hint}")

    # --- commands ---------------------------------------------------------------------------------

    def run(self, *arguments: str, capture: bool = False, check: bool = True, stdin: str | None = None,
            ) -> subprocess.CompletedProcess:
        result = subprocess.run([self.terraform, f"-chdir={self.folder}", *arguments], text=True, input=stdin,
                                capture_output=capture)
        if check and result.returncode != 0:
            detail = (result.stdout + result.stderr) if capture else ""
            raise Refusal(f"terraform {arguments[0]} of {self.name} failed{': ' + detail if detail else ' (above)'}")
        return result

    def streamed(self, *arguments: str, keep: re.Pattern | None = None, log: Path | None = None) -> str:
        """Runs a long command, printing its lines as they come (all of them, or those `keep`
        matches, without Terraform's progress noise); its whole output is returned and written
        to `log`."""
        process = subprocess.Popen([self.terraform, f"-chdir={self.folder}", *arguments], text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if any(noise in line for noise in NOISE):
                continue
            if keep is None or keep.search(line):
                print(line, end="", flush=True)
        output = "".join(lines)
        if log:
            log.write_text(output)
        if process.wait() != 0:
            if keep is not None:
                print(output[-6000:], end="")
            raise Refusal(f"terraform {arguments[0]} of {self.name} failed (above{f'; whole log: {log}' if log else ''})")
        return output

    def output(self, name: str) -> str:
        return self.run("output", "-raw", name, capture=True).stdout

    def output_json(self, name: str | None = None) -> str:
        return self.run("output", "-json", *([name] if name else []), capture=True).stdout

    def state_list(self) -> list[str]:
        result = self.run("state", "list", capture=True, check=False)
        return result.stdout.split() if result.returncode == 0 else []

    def show_json(self) -> str:
        return self.run("show", "-json", capture=True).stdout
