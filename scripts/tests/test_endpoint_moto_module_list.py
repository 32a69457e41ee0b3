"""Tests of scripts/local_endpoint/moto_module_list.py. Behaviour 9: moto's package listed once."""

import pathlib
import sys
import unittest
import unittest.mock

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from local_endpoint import moto_module_list  # noqa: E402
import support  # noqa: E402,F401  (installs every behaviour of the local endpoint)


class BackendLookup(unittest.TestCase):
    """Behaviour 9: moto's own folders, listed once, the same as moto lists them."""

    def test_the_modules_are_not_listed_again_per_request(self):
        import moto.backends
        self.assertEqual(list(moto.backends.list_of_moto_modules()), list(moto_module_list.motos_own()))
        self.assertIn("dynamodb", moto.backends.list_of_moto_modules())
        with unittest.mock.patch("os.listdir", side_effect=AssertionError("listed again")):
            self.assertIn("logs", moto.backends.list_of_moto_modules())
