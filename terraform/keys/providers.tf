# The same provider set-up as the environment's root module (../providers.tf), for the services
# this root uses: `aws_endpoint_url` aims them at that endpoint, null at AWS's; the credentials
# are the usual chain's either way.
locals {
  local_endpoint = var.aws_endpoint_url != null
}

provider "aws" {
  region = var.region

  skip_credentials_validation = local.local_endpoint
  skip_metadata_api_check     = local.local_endpoint
  skip_region_validation      = local.local_endpoint

  dynamic "endpoints" {
    for_each = local.local_endpoint ? [var.aws_endpoint_url] : []
    content {
      apigateway = endpoints.value
      sts        = endpoints.value
    }
  }

  default_tags {
    tags = {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
