# The provider's exact version and package hashes are in .terraform.lock.hcl (committed): the
# zh: hashes are the SHA256SUMS HashiCorp publishes for every platform's package of the release
# (so `terraform init` from the registry verifies the download on every platform, recording only
# another platform's h1: hash beside them), and the h1: hash is the linux_amd64 package's contents (what a filesystem
# mirror such as this project's machines' is checked against). Moving to another provider
# version: terraform -chdir=terraform providers lock -platform=linux_amd64 -platform=linux_arm64
# -platform=darwin_amd64 -platform=darwin_arm64, then copy the file to terraform/account/ and
# terraform/keys/.
terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 6"
    }
  }
}
