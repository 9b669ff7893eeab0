//! Fuzzes the SOAP answer reader: the XML stream reader, fault decoding,
//! object contents, VM records and update sets.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vsphere_client::fuzzing::soap_response(data);
});
