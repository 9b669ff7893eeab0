"""Request throttling per access key, against a server started with a low
--throttle-rps: a burst is answered with ThrottlingException (HTTP 429), and
the SDK's standard retry mode gets every call through."""

from botocore.exceptions import ClientError

from bgwtest import Suite, client, eq, expect_error, true

suite = Suite("throttling")
BURST = 12


def burst_is_throttled():
    c = client(max_attempts=1)
    throttled = None
    for _ in range(BURST):
        try:
            c.list_gateways()
        except ClientError as err:
            throttled = err
            break
    true(throttled is not None, "%d back-to-back calls were never throttled" % BURST)
    expect_error(lambda: (_ for _ in ()).throw(throttled), "ThrottlingException")
    true(isinstance(throttled, c.exceptions.ThrottlingException), "botocore maps it to its ThrottlingException class")


def retries_succeed():
    c = client(max_attempts=10)
    retries = 0
    for _ in range(BURST):
        out = c.list_gateways()
        eq(out["ResponseMetadata"]["HTTPStatusCode"], 200, "status after retries")
        retries += out["ResponseMetadata"]["RetryAttempts"]
    true(retries > 0, "no call needed a retry: the server did not throttle")


suite.check("a burst gets 429 ThrottlingException", burst_is_throttled)
suite.check("the SDK's standard retries get every call through", retries_succeed)
suite.finish()
