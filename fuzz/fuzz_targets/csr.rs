//! A certificate signing request as `Enroll` receives it after the join
//! token: PEM or DER, checked (parses, self-signature, key strength, the
//! name), with and without a name the token allows. A request that passes
//! the checks must be signed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_collector::pki::sign::check_csr;
use meterlink_fuzz::signer;

fuzz_target!(|data: &[u8]| {
    let _ = check_csr(data, Some("agent-1"));
    if let Ok(csr) = check_csr(data, None) {
        let cert = signer().sign(&csr, 1_790_000_000_000, 86_400_000, [7; 16]);
        assert!(cert.is_ok(), "a checked CSR was not signed: {cert:?}");
    }
});
