# prod keeps its state in S3, locked (Terraform's lock object beside it): this file's presence
# declares it, and a plan or apply of prod on local state is refused (scripts/deploy/settings.py).
# What it leaves out, the delivery program fills in: the region's state bucket of
# `make aws-state-bucket` (books-tfstate-<account>-<region>) and the region. To use a bucket of
# your own, set it here (bucket = "...", region = "..."); copy the file to <env>.backend.hcl to
# give another environment remote state the same way.
key          = "books/prod/terraform.tfstate"
encrypt      = true
use_lockfile = true
