"""The local AWS endpoint: moto's server with the behaviours of scripts/local_endpoint/ (its
package docstring lists them, one module each). Arguments are moto_server's, plus `--state FILE`
(behaviour 11)."""

import sys

import local_endpoint

local_endpoint.install()

if __name__ == "__main__":
    sys.exit(local_endpoint.serve(sys.argv[1:]))
