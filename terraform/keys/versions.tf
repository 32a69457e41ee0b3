# The same Terraform and provider constraints as the environment's root module (../versions.tf);
# .terraform.lock.hcl is a copy of its lock file (copy it again when the provider moves).
terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 6"
    }
  }
}
