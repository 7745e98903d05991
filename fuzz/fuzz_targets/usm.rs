//! SNMPv3 with USM as the engine receives an answer: the message decoded,
//! then verified and decrypted with fixed users' keys. The first byte picks
//! the user; the second whether the harness signs the packet first, so that
//! the decryption path (any ciphertext, any salt, any boots and time) is
//! reached and not only the digest check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_agent::snmp::message::{decode_message, Message};
use meterlink_fuzz::usm_users;

fuzz_target!(|data: &[u8]| {
    let [user, sign, packet @ ..] = data else {
        return;
    };
    let users = usm_users();
    let user = &users[usize::from(*user) % users.len()];
    let Ok(Message::V3(first)) = decode_message(packet) else {
        return;
    };
    let keys = user.localize(&first.msg.usm.engine_id);
    let _ = keys.open(packet, first.auth_params_offset, &first.msg);
    if sign & 1 == 1 {
        // The same message with a good digest: what a device with these
        // keys could send, whatever its ciphertext holds.
        let signed = keys.seal(first.msg);
        if let Ok(Message::V3(again)) = decode_message(&signed) {
            let _ = keys.open(&signed, again.auth_params_offset, &again.msg);
        }
    }
});
