"""The AWS path of the Makefile: deliver the images, promote them, plan, provision, verify and
destroy an environment, and the account-wide stack, as `scripts/aws-lambda <step>` (make is the
interface: `make aws-lambda-*`, docs/deploying.md).

Where each concern lives, top to bottom:
  settings   what the user asked for (the environment variables make passes), the decisions
             taken from it alone (which environment, which state, what is refused), prerequisites
  aws        the account, region and caller of the credentials; ECR's registry credentials
  terraform  one working folder per stack and environment, and the Terraform commands in it
  registry   the image registry (ECR, or a stand-in for it) through skopeo
  images     building the two images and pushing them, single image manifests only
  steps      the steps themselves, each a function of the above
"""
