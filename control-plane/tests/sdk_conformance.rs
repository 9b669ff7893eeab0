//! `bgw-cloud` driven by unmodified AWS clients: the current boto3 (AWS JSON 1.0,
//! which botocore prefers when a model lists both protocols, and Smithy RPC v2
//! CBOR, forced by narrowing the client's own model), botocore 1.43.45 (AWS
//! JSON 1.0 only) and the current aws-cli. Each test starts its own server and
//! runs one Python suite from `tests/python/`; the suite prints every check.

mod support;

use support::{run_suite, Client, CloudServer, Protocol};

/// One test per (suite, client, protocol).
macro_rules! suite_tests {
    ($script:literal, $min:expr, { $($name:ident => ($client:expr, $protocol:expr)),+ $(,)? }) => {
        $(
            #[test]
            fn $name() {
                let server = CloudServer::start(&[]);
                run_suite(&server, $client, $protocol, $script, &[], &[], $min);
            }
        )+
    };
}

suite_tests!("operations.py", 50, {
    operations_boto3_cbor => (Client::Current, Protocol::Cbor),
    operations_boto3_json => (Client::Current, Protocol::Json),
    operations_botocore_1_43_45_json => (Client::Botocore14345, Protocol::Json),
});

suite_tests!("validation.py", 200, {
    validation_boto3_cbor => (Client::Current, Protocol::Cbor),
    validation_boto3_json => (Client::Current, Protocol::Json),
    validation_botocore_1_43_45_json => (Client::Botocore14345, Protocol::Json),
});

suite_tests!("semantics.py", 30, {
    semantics_boto3_cbor => (Client::Current, Protocol::Cbor),
    semantics_boto3_json => (Client::Current, Protocol::Json),
    semantics_botocore_1_43_45_json => (Client::Botocore14345, Protocol::Json),
});

suite_tests!("pagination.py", 12, {
    pagination_boto3_cbor => (Client::Current, Protocol::Cbor),
    pagination_boto3_json => (Client::Current, Protocol::Json),
    pagination_botocore_1_43_45_json => (Client::Botocore14345, Protocol::Json),
});

suite_tests!("cli_suite.py", 16, {
    awscli_cbor => (Client::Current, Protocol::Cbor),
    awscli_json => (Client::Current, Protocol::Json),
});

/// Error answers as the SDK surfaces them; the server runs with a short
/// activation-key lifetime so an expired key can be shown refused.
macro_rules! error_tests {
    ($($name:ident => ($client:expr, $protocol:expr)),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                let server = CloudServer::start(&["--activation-key-ttl", "2s"]);
                run_suite(&server, $client, $protocol, "errors.py", &[],
                    &[("BGW_KEY_TTL_SECONDS", "2")], 11);
            }
        )+
    };
}

error_tests! {
    errors_boto3_cbor => (Client::Current, Protocol::Cbor),
    errors_boto3_json => (Client::Current, Protocol::Json),
    errors_botocore_1_43_45_json => (Client::Botocore14345, Protocol::Json),
}

/// A low request rate: bursts are throttled and the SDK's retries absorb it.
macro_rules! throttling_tests {
    ($($name:ident => ($client:expr, $protocol:expr)),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                let server = CloudServer::start(&["--throttle-rps", "4", "--throttle-burst", "2"]);
                run_suite(&server, $client, $protocol, "throttling.py", &[], &[], 2);
            }
        )+
    };
}

throttling_tests! {
    throttling_boto3_cbor => (Client::Current, Protocol::Cbor),
    throttling_botocore_1_43_45_json => (Client::Botocore14345, Protocol::Json),
}
