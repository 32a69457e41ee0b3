"""moto's package listed once, not twice per request.

moto finds the backend of every request by listing its own package's folders (a directory
read and a stat per entry, ~150 system calls) under the lock that serialises every request's
dispatch, and this endpoint's S3 and CBOR middlewares ask moto's dispatcher again for the
requests they inspect. Those folders do not change while the server runs: here they are listed
once. (Where a GetItem's time goes, profiled with cProfile: Flask's and moto's dispatch, moto's
response serialiser, and this lookup, about a sixth of the server's time; measured on stock moto
for a Logs call, 0.5 to 1.1 ms a request: upstream/backends-listed-per-request.md. The rest is
moto's own and not cheap to change.)

AWS documentation followed:
- (none: a cost of moto's dispatch, not a difference from AWS)
"""

import moto.backends

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)

motos_own = moto.backends.list_of_moto_modules


def apply():
    modules = tuple(motos_own())
    moto.backends.list_of_moto_modules = lambda: modules
