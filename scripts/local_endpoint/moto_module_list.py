"""moto's package listed once, not twice per request.

moto finds the backend of every request by listing its own package's folders (a directory
read and a stat per entry, ~150 system calls), twice, under the lock that serialises every
request's dispatch. Those folders do not change while the server runs: here they are listed
once. (Where a GetItem's time goes, profiled with cProfile: Flask's and moto's dispatch,
moto's response serialiser, and this lookup, about a sixth of the server's time; side by side,
boto3 GetItem round trips went ~7% faster with it. The rest is moto's own and not cheap to
change.)

AWS documentation followed:
- (none: a cost of moto's dispatch, not a difference from AWS)
"""

import moto.backends

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.1",)

motos_own = moto.backends.list_of_moto_modules


def apply():
    modules = tuple(motos_own())
    moto.backends.list_of_moto_modules = lambda: modules
