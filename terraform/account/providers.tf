# The same provider set-up as the environments' root module (../providers.tf), for the services
# this stack uses.
provider "aws" {
  region = var.region

  skip_credentials_validation = local.local_endpoint
  skip_metadata_api_check     = local.local_endpoint
  skip_region_validation      = local.local_endpoint
  s3_use_path_style           = local.local_endpoint

  dynamic "endpoints" {
    for_each = local.local_endpoint ? [var.aws_endpoint_url] : []
    content {
      apigateway = endpoints.value
      iam        = endpoints.value
      s3         = endpoints.value
      sts        = endpoints.value
    }
  }

  default_tags {
    tags = {
      Project   = var.project
      ManagedBy = "terraform"
      Scope     = "account"
    }
  }
}

terraform {
  required_version = ">= 1.10"

  # Local, path set at init (scripts/aws-lambda: .deploy/account-<account>-<region>/).
  backend "local" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 6"
    }
  }
}
