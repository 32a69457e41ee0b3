"""Faults on demand, for the local cloud's fault scenarios (a switch AWS does not have).

Faults on demand (`Faults`): `POST /_books/faults` with `{"operation": "PutLogEvents",
"match": {"logGroupName": "/aws/lambda/f"}, "status": 503, "code": "ServiceUnavailableException"}`
makes every request of that operation (the `X-Amz-Target` action) whose JSON body holds those
fields fail as AWS fails, without reaching moto; `GET` lists the faults with how many requests
each failed, `DELETE` ends them all. A telemetry outage of one function is this, for instance.
`"probability": 0.2` fails only that share of the matching requests (drawn per request);
`"after": true` lets the request be carried out and then answers the error instead of its
answer: a lost answer, which the client's SDK retries under the same invocation id (see 8).
`"delay": 4` holds the request that many seconds first (after carrying it out, with `after`),
and `"slow": true` then lets it through to its real answer: a slow request, which a client's
timeout gives up on and its SDK retries. `"reorder": true` answers the real answer with the
`Records` it lists shuffled, some of them twice, and some records of the same stream's earlier
answers again: stream reads (`GetRecords`) delivered out of order, duplicated and late, as a
consumer that must converge on the newest state has to bear. The consistency checker
(scripts/consistency.py) injects all of them on DynamoDB.

AWS documentation followed:
- https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/CommonErrors.html (the errors a fault answers)
- https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html (a stream's records, which a consumer must bear late or twice)
- docs/local-endpoint-protocol.md: `/_books/faults` is part of the endpoint's private protocol
"""

import collections
import json
import random
import threading
import time

from local_endpoint.wsgi import json_answer, read_body, whole_body

# Reads no private part of moto: any version.
MOTO_VERSIONS = None


class Faults:
    """WSGI middleware: requests that match a fault fail as AWS fails them (behaviour 10).

    Matches AWS JSON protocol requests (CloudWatch Logs, DynamoDB…: the operation in
    `X-Amz-Target`, the parameters in the JSON body). Faults live until `DELETE /_books/faults`.
    """

    PATH = "/_books/faults"

    def __init__(self, app):
        self.app = app
        self._guard = threading.Lock()
        self._delivered = {}  # stream ARN -> its latest records answered (reorder)
        self._faults = []  # dicts: operation, match, status, code, message, probability, after, delay, slow, reorder, failed (requests it applied to)

    def __getattr__(self, name):  # moto.server.main sets `debug` on the application
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == self.PATH:
            return self._control(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        with self._guard:
            candidates = [f for f in self._faults if target.rpartition(".")[2] == f["operation"]]
        if not candidates:
            return self.app(environ, start_response)
        body = whole_body(environ)
        try:
            parameters = json.loads(body or b"{}")
        except ValueError:
            parameters = {}
        for fault in candidates:
            if not (isinstance(parameters, dict) and all(parameters.get(k) == v for k, v in fault["match"].items())):
                continue
            if random.random() >= fault["probability"]:
                continue
            with self._guard:
                fault["failed"] += 1
            if fault["slow"]:
                time.sleep(fault["delay"])
                return self.app(environ, start_response)
            if fault["reorder"]:
                return self._reordered(environ, start_response, parameters)
            if fault["after"]:
                # Carried out, then its answer lost: read it whole (and close it, as WSGI asks) and drop it.
                answer = self.app(environ, lambda status, headers, exc_info=None: None)
                try:
                    for _ in answer:
                        pass
                finally:
                    if hasattr(answer, "close"):
                        answer.close()
            time.sleep(fault["delay"])
            return json_answer(start_response, fault["status"],
                           {"__type": fault["code"], "message": fault["message"]},
                           [("x-amzn-ErrorType", fault["code"])])
        return self.app(environ, start_response)

    def _reordered(self, environ, start_response, parameters):
        """The real answer, its `Records` shuffled, a third of them (at least one) twice, and up
        to as many of the stream's records answered before (late)."""
        started = []
        chunks = self.app(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status, headers = started[0]
        document = json.loads(body or b"{}") if status.startswith("200") else None
        if isinstance(document, dict) and document.get("Records"):
            records = document["Records"]
            # A moto shard iterator starts with its stream's ARN.
            stream = str(parameters.get("ShardIterator", "")).split("|", 1)[0]
            with self._guard:
                earlier = self._delivered.setdefault(stream, collections.deque(maxlen=256))
                late = random.sample(list(earlier), min(len(earlier), max(1, len(records) // 3)))
                earlier.extend(records)
            records += random.sample(records, max(1, len(records) // 3)) + late
            random.shuffle(records)
            body = json.dumps(document).encode()
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"] + [("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [body]

    def _control(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if method == "POST":
            try:
                asked = json.loads(read_body(environ))
                fault = {"operation": str(asked["operation"]), "match": dict(asked.get("match") or {}),
                         "status": int(asked.get("status", 503)),
                         "code": str(asked.get("code", "ServiceUnavailableException")),
                         "message": str(asked.get("message", "injected by the local endpoint's fault switch")),
                         "probability": float(asked.get("probability", 1.0)), "after": bool(asked.get("after", False)),
                         "delay": float(asked.get("delay", 0.0)), "slow": bool(asked.get("slow", False)),
                         "reorder": bool(asked.get("reorder", False)),
                         "failed": 0}
                if not 0 <= fault["delay"] <= 60:
                    raise ValueError(f"delay must be 0 to 60 seconds, not {fault['delay']}")
            except (ValueError, KeyError, TypeError) as error:
                return json_answer(start_response, 400, {"message": f"a fault is {{operation, match?, status?, "
                                                                f"code?, message?, probability?, after?, delay?, slow?, reorder?}}: {error!r}"})
            with self._guard:
                self._faults.append(fault)
            return json_answer(start_response, 201, fault)
        if method == "DELETE":
            with self._guard:
                ended, self._faults = self._faults, []
            return json_answer(start_response, 200, {"ended": ended})
        with self._guard:
            return json_answer(start_response, 200, {"faults": [dict(f) for f in self._faults]})
