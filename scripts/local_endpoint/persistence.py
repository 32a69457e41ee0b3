"""The endpoint's state saved when it stops and read back when it starts.

`--state FILE`: the endpoint starts from the state saved in FILE, if there is one, and saves
its whole state there when it stops (SIGTERM or Ctrl-C): every backend moto holds (tables,
their items and streams, log groups, metrics, alarms, the API and its keys...), pickled at
once so that objects one service shares with another stay shared, with what the emulator
keeps in `PUT /_books/emulator-state` (where its stream pollers and its EMF extraction are;
`GET` reads it back), so both are saved together and agree. The file is written whole or not
at all, and names the moto version that wrote it: a state another version wrote is refused
with the way out (`make run FRESH=1`), never half read. A server killed with SIGKILL saves
nothing; the last saved state stays.

AWS documentation followed:
- (none: AWS keeps its state; this keeps the local cloud's across restarts)
- docs/local-endpoint-protocol.md: `/_books/emulator-state` is part of the endpoint's private protocol
"""

import collections
import importlib
import io
import json
import os
import pickle
import sys
import threading
import weakref

import moto
from cryptography.hazmat.primitives import serialization
from moto.core.base_backend import BackendDict
from moto.server import main

from local_endpoint.dynamodb_atomic import ATOMIC
from local_endpoint.wsgi import json_answer, read_body

# The moto release(s) whose private code this module was written against (checked by install()).
MOTO_VERSIONS = ("5.2.6",)


class Persistence:
    """The endpoint's state saved in a file and read back (behaviour 11), and the emulator's
    own part of it: WSGI middleware serving `/_books/emulator-state`."""

    PATH = "/_books/emulator-state"
    FORMAT = 1

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != self.PATH:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") == "PUT":
            try:
                document = json.loads(read_body(environ))
            except ValueError as error:
                return json_answer(start_response, 400, {"message": f"the emulator's state is JSON: {error}"})
            with ATOMIC:
                _EMULATOR_STATE.clear()
                _EMULATOR_STATE.update(document=document)
            return json_answer(start_response, 200, {})
        with ATOMIC:
            return json_answer(start_response, 200, _EMULATOR_STATE.get("document", {}))

    @staticmethod
    def _backends():
        """Every backend registry moto has filled, by the module and name that hold it."""
        found, seen = {}, set()
        for module_name, module in sorted(sys.modules.items()):
            if not module_name.startswith("moto.") or module is None:
                continue
            for attribute, value in list(vars(module).items()):
                if isinstance(value, BackendDict) and value and id(value) not in seen:
                    seen.add(id(value))
                    found[(module_name, attribute)] = value
        return found

    @classmethod
    def save(cls, path):
        with ATOMIC:
            for attempt in range(3):
                try:
                    buffer = io.BytesIO()
                    _StatePickler(buffer).dump({"format": cls.FORMAT, "moto": moto.__version__,
                                                "backends": cls._backends(), "emulator": dict(_EMULATOR_STATE)})
                    state = buffer.getvalue()
                    break
                except RuntimeError:  # a request still running changed a dict being pickled
                    if attempt == 2:
                        raise
        partial = f"{path}.partial"
        with open(partial, "wb") as file:
            file.write(state)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
        print(f"local state saved in {path} ({len(state)} bytes)", file=sys.stderr)

    @classmethod
    def restore(cls, path):
        with open(path, "rb") as file:
            state = pickle.load(file)
        if state.get("format") != cls.FORMAT or state.get("moto") != moto.__version__:
            sys.exit(f"error: {path} holds a local state saved by moto {state.get('moto')} (format "
                     f"{state.get('format')}); this is moto {moto.__version__}.\n"
                     f"       fix: make run FRESH=1   (starts with an empty local cloud)")
        for (module_name, attribute), saved in state["backends"].items():
            registry = getattr(importlib.import_module(module_name), attribute)
            registry.clear()
            registry.update(saved)
        _EMULATOR_STATE.update(state["emulator"])
        print(f"local state restored from {path}", file=sys.stderr)


_EMULATOR_STATE = {}


def _private_key(pem):
    return serialization.load_pem_private_key(pem, None)


# Reducers other behaviours register for what they store (behaviour 21: log streams).
COMPACT = {}


class _StatePickler(pickle.Pickler):
    """pickle, plus what moto's backends hold that pickle cannot write: locks (read back as
    new, free ones: nothing runs while the state is saved or read), the private keys of KMS
    keys (written as PKCS#8 PEM), weak-value dictionaries (Lambda's index of functions by ARN;
    the functions are pickled where they live, so the index points at them again), and default
    dictionaries whose factory is a lambda making an empty container (written with its type);
    and the objects other behaviours write compactly themselves (`COMPACT`: type -> reducer)."""

    _LOCKS = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}

    def __init__(self, file):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)

    def reducer_override(self, obj):
        kind = type(obj)
        if kind in COMPACT:
            return COMPACT[kind](obj)
        if kind in self._LOCKS:
            return self._LOCKS[kind], ()
        if kind.__module__.startswith("cryptography.") and hasattr(obj, "private_bytes"):
            pem = obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            return _private_key, (pem,)
        if type(obj) is weakref.WeakValueDictionary:
            return weakref.WeakValueDictionary, (dict(obj),)
        if type(obj) is collections.defaultdict and getattr(obj.default_factory, "__name__", "") == "<lambda>":
            made = obj.default_factory()
            if type(made) in (dict, list, set) and not made:
                return collections.defaultdict, (type(made), dict(obj))
            raise pickle.PicklingError(f"a defaultdict whose factory makes {made!r} cannot be saved")
        return NotImplemented


def serve(argv):
    """moto's server, with the state in `--state FILE` restored first and saved at the end."""
    state = None
    if "--state" in argv:
        at = argv.index("--state")
        state, argv = argv[at + 1], argv[:at] + argv[at + 2:]
        if os.path.exists(state):
            Persistence.restore(state)
    try:
        return main(argv)
    finally:
        if state is not None:
            Persistence.save(state)
