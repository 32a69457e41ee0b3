# The supply chain of the Rust workspace, checked by cargo deny against deny.toml: licenses,
# bans (duplicate versions, wildcards) and sources in `make test` (cargo metadata fetches from
# crates.io the manifests of every platform's dependencies); advisories in
# `make audit`, which fetches the RustSec database from GitHub (CI's daily audit job runs it).
# `make audit-selftest` (in make test) runs that same advisories check against a database built
# on the spot, which must fail on an advisory planted against a linked crate.
# Included by the root Makefile (uses its CARGO).

# Pinned like cargo-fuzz: installed into cargo's bin folder by `make deny-tools`. Built with the
# dev profile (--debug): on a fresh machine (every CI run) its release build was 4 CPU-minutes of
# make test and the dev build under 2, while checking this workspace takes it seconds either way
# (2.4 s release, 6.5 s dev, measured side by side).
CARGO_DENY_VERSION := 0.20.2

.PHONY: deny deny-tools audit audit-selftest
deny-tools: check-rust
	@$(CARGO) deny --version 2>/dev/null | grep -q ' $(CARGO_DENY_VERSION)$$' || { \
	  echo "==> installing cargo-deny $(CARGO_DENY_VERSION) (crates.io)"; \
	  $(CARGO) install cargo-deny --version $(CARGO_DENY_VERSION) --locked --debug; }

deny: deny-tools ## Licenses, duplicate versions, wildcards and sources of every crate (deny.toml; make test runs it)
	$(CARGO) deny --locked check licenses bans sources

audit: deny-tools ## Security advisories of every crate (RustSec; fetches its database from GitHub)
	$(CARGO) deny --locked check advisories

audit-selftest: deny-tools ## The advisories check against a planted advisory, offline (make test runs it)
	CARGO=$(CARGO) scripts/audit-selftest
