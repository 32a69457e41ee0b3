# The dependency lock file (.terraform.lock.hcl) is not committed (see .gitignore): on a machine
# that installs the provider from an offline filesystem mirror, `init` can record only that
# mirror's single-platform h1 hash, and a lock holding just that hash makes `init` fail on every
# other platform. The version constraint below pins the provider instead; a deployment pipeline
# that wants a lock generates one with `terraform providers lock -platform=...` where the
# registry is reachable.
terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 6"
    }
  }
}
