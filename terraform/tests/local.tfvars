# The throw-away deployment `make test-terraform` (and the local cloud) applies to moto: the
# environment's root module's variables. Images are fake digests: moto does not pull them; the
# local cloud runs binaries laid out as in the images instead. The keys root (../keys) takes
# only environment and aws_endpoint_url, on its command line, and usage_plans from this
# deployment's output usage_plan_ids; with the default api_clients it makes one key.
environment         = "test"
deletion_protection = false
keep_platform_logs  = true
images = {
  command = { digest = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" }
  query   = { digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" }
}
