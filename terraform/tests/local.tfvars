# The throw-away deployment `make test-terraform` applies to moto. Images are fake digests:
# moto does not pull them; the local cloud runs binaries laid out as in the images instead.
environment         = "test"
deletion_protection = false
keep_platform_logs  = true
images = {
  command = { digest = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" }
  query   = { digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" }
}
