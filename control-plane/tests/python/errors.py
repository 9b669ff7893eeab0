"""One provocation per error the server answers with, as the SDK surfaces it:
code, HTTP status, the modeled ErrorCode and Message members, and the
exception class botocore maps it to. Authentication failures (unknown key,
wrong secret, skewed clock) go through the SDK's own signer.

With BGW_KEY_TTL_SECONDS set (the server runs with --activation-key-ttl), an
activation key left unused past its lifetime is refused too."""

import datetime
import os
import time

import botocore
import botocore.auth
from botocore.exceptions import ClientError

from bgwtest import (
    Suite,
    admin_credentials,
    client,
    create_gateway,
    eq,
    expect_error,
    fake_arn,
    import_hypervisor,
    mint_activation_key,
    true,
    unique_name,
)

suite = Suite("errors")
c = client()
raw = client(validate=False)
GW = create_gateway(c)
HV = import_hypervisor(c)


def modeled_class(code, call, via=c):
    # Each client has its own exception classes: check against the one that made the call.
    err = expect_error(call, code)
    true(isinstance(err, getattr(via.exceptions, code)), "botocore did not map %s to its modeled exception class" % code)


suite.check("ValidationException (400)", modeled_class, "ValidationException", lambda: raw.get_gateway(GatewayArn="short"), raw)
suite.check("ResourceNotFoundException (404)", modeled_class, "ResourceNotFoundException", lambda: c.get_gateway(GatewayArn=fake_arn("gateway")))


def conflict():
    other = import_hypervisor(c)
    c.associate_gateway_to_server(GatewayArn=GW, ServerArn=HV)
    try:
        modeled_class("ConflictException", lambda: c.associate_gateway_to_server(GatewayArn=GW, ServerArn=other), c)
    finally:
        c.disassociate_gateway_from_server(GatewayArn=GW)


suite.check("ConflictException (409)", conflict)


def error_body_has_members():
    err = expect_error(lambda: c.get_hypervisor(HypervisorArn=fake_arn("hypervisor")), "ResourceNotFoundException")
    true(err.response.get("ErrorCode"), "ErrorCode member present")
    true(fake_arn("hypervisor") in err.response["Message"] or "hypervisor" in err.response["Message"].lower(),
         "the message names what was not found: %r" % err.response["Message"])


suite.check("error bodies carry ErrorCode and Message", error_body_has_members)


def unknown_access_key():
    other = client(credentials=("AKIAUNKNOWNKEY000000", "x" * 40))
    expect_error(other.list_gateways, "UnrecognizedClientException", status=403)


def wrong_secret():
    creds = admin_credentials()
    other = client(credentials=(creds.access_key, creds.secret_key[:-1] + ("A" if creds.secret_key[-1] != "A" else "B")))
    err = expect_error(other.list_gateways, "InvalidSignatureException", status=403)
    true(creds.secret_key not in str(err.response), "the secret is never echoed")


def skewed(minutes):
    real = botocore.auth.get_current_datetime

    def shifted(*args, **kwargs):
        return real(*args, **kwargs) + datetime.timedelta(minutes=minutes)

    botocore.auth.get_current_datetime = shifted
    try:
        return c.list_gateways()
    finally:
        botocore.auth.get_current_datetime = real


def skew_refused(minutes):
    expect_error(lambda: skewed(minutes), "InvalidSignatureException", mentions=["skew"], status=403)


suite.check("unknown access key -> 403 UnrecognizedClientException", unknown_access_key)
suite.check("wrong secret -> 403 InvalidSignatureException", wrong_secret)
suite.check("clock 10 minutes fast -> 403 naming the skew", skew_refused, 10)
suite.check("clock 10 minutes slow -> 403 naming the skew", skew_refused, -10)
suite.check("clock 4 minutes off is accepted", skewed, 4)


def unsigned():
    anon = client(signature_version=botocore.UNSIGNED)
    try:
        anon.list_gateways()
    except ClientError as err:
        eq(err.response["ResponseMetadata"]["HTTPStatusCode"], 403, "status of an unsigned request")
        return
    raise AssertionError("an unsigned request was served")


suite.check("unsigned request -> 403", unsigned)


def expired_key(ttl):
    key = mint_activation_key()
    time.sleep(ttl + 1.0)
    expect_error(
        lambda: c.create_gateway(ActivationKey=key, GatewayDisplayName=unique_name("gw"), GatewayType="BACKUP_VM"),
        "ValidationException",
        ["activation key"],
    )


ttl = os.environ.get("BGW_KEY_TTL_SECONDS")
if ttl:
    suite.check("activation key unused past its lifetime -> ValidationException", expired_key, float(ttl))

suite.finish()
