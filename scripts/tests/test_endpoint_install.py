"""Tests of scripts/local_endpoint/__init__.py: the behaviours installed in their order, and a moto
release they were not written against refused with the fix."""

import pathlib
import subprocess
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import moto  # noqa: E402
import moto.server  # noqa: E402

import local_endpoint  # noqa: E402
import support  # noqa: E402,F401  (installs every behaviour of the local endpoint)

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent


class Install(unittest.TestCase):
    def test_the_middlewares_wrap_motos_dispatcher_in_their_order(self):
        app = moto.server.DomainDispatcherApplication(moto.server.create_backend_app)
        chain = []
        while "app" in vars(app):  # vars(): each middleware forwards other attributes inward
            chain.append(type(app).__module__)
            app = vars(app)["app"]
        self.assertEqual(chain, [module.__name__ for module in local_endpoint.MIDDLEWARES])
        self.assertEqual(type(app).__name__, "DomainDispatcherApplication")

    def test_every_module_says_what_it_follows_and_against_which_moto(self):
        for module in local_endpoint.PATCHES + local_endpoint.MIDDLEWARES:
            with self.subTest(module=module.__name__):
                self.assertIn("AWS documentation followed:", module.__doc__)
                self.assertTrue(module.MOTO_VERSIONS is None or moto.__version__ in module.MOTO_VERSIONS)
        self.assertEqual(len({m.__name__ for m in local_endpoint.PATCHES + local_endpoint.MIDDLEWARES}),
                         len(list((SCRIPTS / "local_endpoint").glob("*.py"))) - 2)  # all but __init__ and wsgi

    def test_another_moto_is_refused_naming_the_modules_and_the_fix(self):
        local_endpoint.require_moto(moto.__version__)
        with self.assertRaises(local_endpoint.WrongMoto) as refused:
            local_endpoint.require_moto("5.3.0")
        message = str(refused.exception)
        self.assertIn("dynamodb_atomic", message)
        self.assertNotIn("whole_bodies", message)  # reads nothing of moto's
        self.assertIn("this is moto 5.3.0", message)
        self.assertIn("fix: rm -rf .venv && make venv", message)

    def test_the_server_refuses_to_start_on_another_moto(self):
        started = subprocess.run(
            [sys.executable, "-c", "import moto, runpy; moto.__version__ = '5.3.0'; "
                                   "runpy.run_path('moto_server.py', run_name='__main__')"],
            cwd=SCRIPTS, capture_output=True, text=True, timeout=300)
        self.assertEqual(started.returncode, 1, started.stderr)
        self.assertIn("this is moto 5.3.0", started.stderr)


if __name__ == "__main__":
    unittest.main()
