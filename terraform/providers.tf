# One provider for AWS and for the local AWS endpoint (moto): setting `aws_endpoint_url` aims
# every service this module uses at that endpoint; leaving it null uses AWS's endpoints. The
# credentials are the usual chain's either way (`books-local endpoint` exports fake ones), so that a
# rehearsal can run Terraform under a role's credentials, as CI does, and the endpoint can tell
# which role made each call.
#
# The account id is still requested (STS is aimed at the endpoint too, and moto answers it):
# skip_requesting_account_id would leave the account out of the ARNs the provider builds
# itself, e.g. the API's execution_arn in the Lambda permissions.
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
      apigateway     = endpoints.value
      cloudwatch     = endpoints.value
      dynamodb       = endpoints.value
      ecr            = endpoints.value
      iam            = endpoints.value
      kms            = endpoints.value
      lambda         = endpoints.value
      logs           = endpoints.value
      secretsmanager = endpoints.value
      sns            = endpoints.value
      sts            = endpoints.value
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
