# The provider's exact version and package hashes are in .terraform.lock.hcl (committed). It
# holds the hashes of the packages this project's machines install (linux_amd64, from their
# provider mirror); a machine of another platform adds its own once, with the registry
# reachable, and commits the result:
#   terraform -chdir=terraform providers lock -platform=linux_amd64 -platform=linux_arm64 -platform=darwin_arm64 -platform=darwin_amd64
terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 6"
    }
  }
}
