"""Shared support for the bgw-cloud conformance scripts.

The Rust integration tests in `control-plane/tests/` start a real `bgw-cloud`
process and run these scripts with the interpreter of one of the tool venvs.
They pass the server through the environment:

    BGW_ENDPOINT      https://127.0.0.1:PORT
    BGW_CA_BUNDLE     DIR/tls/cert.pem
    BGW_DATA_DIR      DIR
    BGW_REGION        us-east-1
    BGW_ACCOUNT_ID    123456789012
    BGW_PROTOCOL      json | cbor: the wire protocol the client must use
    AWS_SHARED_CREDENTIALS_FILE  DIR/admin-credentials

With BGW_PROTOCOL=cbor the client's own bundled model is copied with its
`protocols` list narrowed to `smithy-rpc-v2-cbor` and put first on
AWS_DATA_PATH, so the unmodified botocore serializer and parser speak Smithy
RPC v2 CBOR (botocore prefers AWS JSON 1.0 whenever a model lists both).

Every script is a list of named checks. Each check prints `ok   NAME` or
`FAIL NAME: reason`; the last line is `SUMMARY passed=N failed=M`, which the
Rust side asserts on.
"""

import json
import os
import re
import ssl
import sys
import tempfile
import traceback
import urllib.request

import boto3
import botocore
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.loaders
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["BGW_ENDPOINT"]
CA_BUNDLE = os.environ.get("BGW_CA_BUNDLE") or None
DATA_DIR = os.environ.get("BGW_DATA_DIR", "")
REGION = os.environ.get("BGW_REGION", "us-east-1")
ACCOUNT_ID = os.environ.get("BGW_ACCOUNT_ID", "123456789012")
PROTOCOL = os.environ.get("BGW_PROTOCOL", "json")

SERVICE = "backup-gateway"
CBOR_PROTOCOL = "smithy-rpc-v2-cbor"
CONTENT_TYPES = {"json": "application/x-amz-json-1.0", "cbor": "application/cbor"}
RESOLVED = {"json": "json", "cbor": CBOR_PROTOCOL}

GATEWAY_ARN_RE = re.compile(
    r"^arn:aws:backup-gateway:%s:%s:gateway/bgw-[A-Za-z0-9]+$" % (REGION, ACCOUNT_ID)
)
HYPERVISOR_ARN_RE = re.compile(
    r"^arn:aws:backup-gateway:%s:%s:hypervisor/hype-[A-Za-z0-9]+$" % (REGION, ACCOUNT_ID)
)


def fake_arn(kind, suffix="0000000000000000"):
    """A well-formed ARN that names nothing on the server."""
    prefix = {"gateway": "bgw", "hypervisor": "hype", "vm": "vm"}[kind]
    return "arn:aws:backup-gateway:%s:%s:%s/%s-%s" % (REGION, ACCOUNT_ID, kind, prefix, suffix)


def _force_cbor_model():
    """Put a copy of the client's model that lists only CBOR first on AWS_DATA_PATH."""
    loader = botocore.loaders.Loader()
    model = loader.load_service_model(SERVICE, "service-2")
    api_version = model["metadata"]["apiVersion"]
    model["metadata"]["protocols"] = [CBOR_PROTOCOL]
    model["metadata"]["protocol"] = CBOR_PROTOCOL
    root = tempfile.mkdtemp(prefix="bgw-cbor-model-")
    folder = os.path.join(root, SERVICE, api_version)
    os.makedirs(folder)
    with open(os.path.join(folder, "service-2.json"), "w") as f:
        json.dump(model, f)
    previous = os.environ.get("AWS_DATA_PATH")
    os.environ["AWS_DATA_PATH"] = root + (os.pathsep + previous if previous else "")


if PROTOCOL == "cbor":
    _force_cbor_model()
elif PROTOCOL != "json":
    raise SystemExit("BGW_PROTOCOL must be json or cbor, not %r" % PROTOCOL)

# Every request a client of this module sends is recorded here, so a suite can
# prove at the end that it really spoke the protocol it claims to test.
SEEN_REQUESTS = []


def _record_request(request, **_kwargs):
    SEEN_REQUESTS.append((request.url, request.headers.get("Content-Type", b"")))


def client(validate=True, max_attempts=3, credentials=None, **config):
    """A boto3 client for bgw-cloud. Standard-mode retries absorb throttling
    as they do in production (the server limits each access key); modeled
    client errors are never retried, so they reach the check that provoked
    them. Pass max_attempts=1 to see a throttling answer itself."""
    cfg = Config(
        parameter_validation=validate,
        # botocore's `max_attempts` counts retries only; `total_max_attempts`
        # counts every attempt, so 1 really means a single request.
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=30,
        **config,
    )
    kwargs = {}
    if credentials is not None:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = credentials
    session = boto3.session.Session(region_name=REGION)
    c = session.client(SERVICE, endpoint_url=ENDPOINT, verify=CA_BUNDLE, config=cfg, **kwargs)
    resolved = c.meta.service_model.resolved_protocol
    if resolved != RESOLVED[PROTOCOL]:
        raise AssertionError(
            "client resolved protocol %r, expected %r" % (resolved, RESOLVED[PROTOCOL])
        )
    c.meta.events.register("before-send", _record_request)
    return c


def admin_credentials():
    session = boto3.session.Session(region_name=REGION)
    creds = session.get_credentials()
    if creds is None:
        raise AssertionError("no credentials found in AWS_SHARED_CREDENTIALS_FILE")
    return creds.get_frozen_credentials()


def _ssl_context():
    return ssl.create_default_context(cafile=CA_BUNDLE) if CA_BUNDLE else None


def signed_request(method, path, body=b"", headers=None, credentials=None):
    """Send a SigV4-signed request outside the SDK; returns (status, headers, body)."""
    creds = credentials or admin_credentials()
    req = botocore.awsrequest.AWSRequest(
        method=method, url=ENDPOINT + path, data=body, headers=dict(headers or {})
    )
    botocore.auth.SigV4Auth(creds, SERVICE, REGION).add_auth(req)
    prepared = req.prepare()
    raw = urllib.request.Request(
        prepared.url, data=prepared.body or None, method=method, headers=dict(prepared.headers)
    )
    try:
        with urllib.request.urlopen(raw, context=_ssl_context(), timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def mint_activation_key():
    """Mint a one-time activation key through the admin-only endpoint."""
    status, _headers, body = signed_request(
        "POST",
        "/admin/activation-keys",
        b"{}",
        {"Content-Type": "application/json"},
    )
    if status != 200:
        raise AssertionError("minting an activation key: HTTP %s %r" % (status, body[:300]))
    key = json.loads(body)["ActivationKey"]
    if not re.fullmatch(r"[0-9a-zA-Z-]{1,50}", key):
        raise AssertionError("minted activation key %r does not fit the model's pattern" % key)
    return key


_counter = [0]


def unique_name(prefix):
    _counter[0] += 1
    return "%s-%d-%d" % (prefix, os.getpid(), _counter[0])


def create_gateway(c, name=None, tags=None):
    args = {
        "ActivationKey": mint_activation_key(),
        "GatewayDisplayName": name or unique_name("gw"),
        "GatewayType": "BACKUP_VM",
    }
    if tags is not None:
        args["Tags"] = tags
    return c.create_gateway(**args)["GatewayArn"]


def import_hypervisor(c, name=None, host="vcenter.example.com", tags=None):
    args = {
        "Name": name or unique_name("hv"),
        "Host": host,
        "Username": "administrator@vsphere.local",
        "Password": "not-a-real-secret",
    }
    if tags is not None:
        args["Tags"] = tags
    return c.import_hypervisor_configuration(**args)["HypervisorArn"]


# --- assertions ---------------------------------------------------------------


def eq(actual, expected, what=""):
    if actual != expected:
        raise AssertionError("%sexpected %r, got %r" % (what + ": " if what else "", expected, actual))


def true(cond, what):
    if not cond:
        raise AssertionError(what)


ERROR_STATUS = {
    "ValidationException": 400,
    "SerializationException": 400,
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "ThrottlingException": 429,
    "InternalServerException": 500,
}
MODELED_ERRORS = {
    "ValidationException",
    "AccessDeniedException",
    "ResourceNotFoundException",
    "ConflictException",
    "ThrottlingException",
    "InternalServerException",
}


def expect_error(call, code, mentions=(), status=None):
    """Run `call`; it must fail with error `code`, the model's HTTP status, the
    modeled members ErrorCode and Message, and a message naming each of
    `mentions` (case-insensitive)."""
    try:
        result = call()
    except ClientError as err:
        response = err.response
        got = response.get("Error", {}).get("Code")
        message = response.get("Error", {}).get("Message") or response.get("Message") or ""
        if got != code:
            raise AssertionError("expected %s, got %s: %s" % (code, got, message))
        want_status = status or ERROR_STATUS.get(code)
        got_status = response["ResponseMetadata"]["HTTPStatusCode"]
        if want_status and got_status != want_status:
            raise AssertionError("%s: expected HTTP %s, got %s" % (code, want_status, got_status))
        if not message:
            raise AssertionError("%s carries no Message" % code)
        if code in MODELED_ERRORS:
            if not response.get("ErrorCode"):
                raise AssertionError("%s body lacks the modeled ErrorCode member: %r" % (code, response))
            if not response.get("Message"):
                raise AssertionError("%s body lacks the modeled Message member" % code)
        for word in mentions:
            if word.lower() not in message.lower():
                raise AssertionError("%s message %r does not mention %r" % (code, message, word))
        return err
    raise AssertionError("expected %s, but the call succeeded: %r" % (code, _strip(result)))


def _strip(result):
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if k != "ResponseMetadata"}
    return result


# --- the check runner -----------------------------------------------------------


class Suite:
    def __init__(self, name, sdk_requests=True):
        self.name = name
        self.sdk_requests = sdk_requests
        self.passed = 0
        self.failed = []
        print(
            "suite %s: botocore %s, protocol %s, endpoint %s"
            % (name, botocore.__version__, PROTOCOL, ENDPOINT),
            flush=True,
        )

    def check(self, name, fn, *args, **kwargs):
        try:
            result = fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - every failure is reported, not raised
            self.failed.append(name)
            print("FAIL %s: %s: %s" % (name, type(err).__name__, err), flush=True)
            if not isinstance(err, AssertionError):
                traceback.print_exc(file=sys.stdout)
            return None
        self.passed += 1
        print("ok   %s" % name, flush=True)
        return result

    def finish(self):
        if self.sdk_requests:
            self.check("all requests used the %s protocol" % PROTOCOL, _check_seen_protocol)
        print("SUMMARY passed=%d failed=%d" % (self.passed, len(self.failed)), flush=True)
        if self.failed:
            print("failed checks:", flush=True)
            for name in self.failed:
                print("  - " + name, flush=True)
        sys.exit(1 if self.failed else 0)


def _check_seen_protocol():
    true(SEEN_REQUESTS, "no request went through a boto3 client")
    want = CONTENT_TYPES[PROTOCOL]
    for url, content_type in SEEN_REQUESTS:
        if isinstance(content_type, bytes):
            content_type = content_type.decode()
        if not content_type.startswith(want):
            raise AssertionError("request to %s had Content-Type %r, not %r" % (url, content_type, want))
        if PROTOCOL == "cbor" and "/service/BackupOnPremises_v20210101/operation/" not in url:
            raise AssertionError("CBOR request went to %s" % url)
