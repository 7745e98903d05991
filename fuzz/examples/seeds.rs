//! Writes the seed corpora the targets start from (corpus/<target>/seed-*),
//! made from the project's own fixtures, example files and encoders:
//! `cargo run --release --example seeds` from this folder.

use meterlink_agent::snmp::message::{
    CommunityMessage, ScopedData, ScopedPdu, UsmParams, V3Message, FLAG_REPORTABLE,
};
use meterlink_agent::snmp::{Pdu, PduType, Value, VarBind, Version};
use meterlink_fuzz::{fixture_observations, recordings, usm_users};
use meterlink_proto::v1::{agent_message::Kind, AgentMessage, Batch, Hello};
use prost::Message;
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("the corpus folder");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("a seed");
}

fn main() {
    // SNMP: a response with each recording's first values (every type the
    // recordings hold), a GETBULK request, a report; v1, v2c and v3.
    let mut responses = Vec::new();
    for (i, rec) in recordings().iter().enumerate() {
        let varbinds: Vec<VarBind> = rec
            .iter()
            .take(24)
            .map(|(o, v)| VarBind::new(o.clone(), v.clone()))
            .collect();
        responses.push(Pdu {
            kind: PduType::Response,
            request_id: 1000 + i as i32,
            error_status: 0,
            error_index: 0,
            varbinds,
        });
    }
    let oids: Vec<_> = recordings()[0]
        .iter()
        .take(3)
        .map(|(o, _)| o.clone())
        .collect();
    responses.push(Pdu::bulk(7, 1, 10, &oids));
    let mut exceptions = Pdu::request(PduType::Response, 8, &oids);
    exceptions.varbinds[0].value = Value::NoSuchObject;
    exceptions.varbinds[1].value = Value::EndOfMibView;
    exceptions.varbinds[2].value = Value::Counter64(u64::MAX);
    responses.push(exceptions);
    for (i, pdu) in responses.iter().enumerate() {
        for (v, version) in [("v1", Version::V1), ("v2c", Version::V2c)] {
            let m = CommunityMessage {
                version,
                community: b"public".to_vec(),
                pdu: pdu.clone(),
            };
            write("message", &format!("{v}-{i}"), &m.encode());
            if version == Version::V2c {
                // The BER reader starts from whole messages too.
                write("ber", &format!("{v}-{i}"), &m.encode());
            }
        }
    }
    for (u, user) in usm_users().iter().enumerate() {
        let engine_id = b"\x80\x00\x1f\x88\x80meterlink".to_vec();
        let keys = user.localize(&engine_id);
        for (i, pdu) in responses.iter().take(3).enumerate() {
            let msg = V3Message {
                msg_id: 40 + i as i32,
                max_size: 65507,
                flags: user.security_flags() | FLAG_REPORTABLE,
                usm: UsmParams {
                    engine_id: engine_id.clone(),
                    engine_boots: 3,
                    engine_time: 12345,
                    user_name: b"fuzz".to_vec(),
                    ..Default::default()
                },
                data: ScopedData::Plain(ScopedPdu {
                    context_engine_id: engine_id.clone(),
                    context_name: vec![],
                    pdu: pdu.clone(),
                }),
            };
            let sealed = keys.seal(msg);
            write("message", &format!("v3-{u}-{i}"), &sealed);
            let mut with_user = vec![u as u8, 1];
            with_user.extend_from_slice(&sealed);
            write("usm", &format!("{u}-{i}"), &with_user);
        }
    }

    // Text files: the embedded profiles, the example configurations, the
    // default rules.
    for (name, text) in [
        ("canon", include_str!("../../agent/profiles/canon.toml")),
        (
            "printer-mib",
            include_str!("../../agent/profiles/printer-mib.toml"),
        ),
    ] {
        write("profile", name, text.as_bytes());
    }
    // agent_config: the first byte 0 for agent.toml, 1 for pushed settings.
    let mut agent = vec![0];
    agent.extend_from_slice(include_bytes!("../../deploy/examples/agent.toml"));
    write("agent_config", "example", &agent);
    write(
        "agent_config",
        "pushed",
        b"\x01[schedule]\ntimezone = \"Europe/Rome\"\nmeter = \"0 */15 * * * *\"\n\n[[targets]]\naddresses = [\"192.0.2.0/29\"]\ncredentials = [\"office-v3\", \"legacy\"]\n",
    );
    write(
        "collector_config",
        "example",
        include_bytes!("../../deploy/examples/collector.toml"),
    );
    write(
        "rules",
        "default",
        include_bytes!("../../collector/src/requests/default-rules.toml"),
    );

    // CSRs: ECDSA P-256 and Ed25519, PEM and DER, as an agent makes them.
    for (name, alg) in [
        ("p256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("ed25519", &rcgen::PKCS_ED25519),
    ] {
        let key = rcgen::KeyPair::generate_for(alg).expect("a key");
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("parameters");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "agent-1");
        let csr = p.serialize_request(&key).expect("a CSR");
        write(
            "csr",
            &format!("{name}.pem"),
            csr.pem().expect("PEM").as_bytes(),
        );
        write("csr", &format!("{name}.der"), csr.der());
    }

    // Agent messages: a Hello, each recording's observations as a batch,
    // and all of them in one (mode byte 1: renumbered).
    let hello = AgentMessage {
        kind: Some(Kind::Hello(Hello {
            agent_id: "fuzz-agent".into(),
            version: "0.1.0".into(),
            highest_seq: 12,
            ..Default::default()
        })),
    };
    let mut hello_bytes = vec![0];
    hello_bytes.extend(hello.encode_to_vec());
    write("ingest", "hello", &hello_bytes);
    let batch = |obs: Vec<meterlink_proto::v1::Observation>| {
        let m = AgentMessage {
            kind: Some(Kind::Batch(Batch { observations: obs })),
        };
        let mut b = vec![1];
        b.extend(m.encode_to_vec());
        b
    };
    for (i, chunk) in fixture_observations().chunks(4).enumerate() {
        write("ingest", &format!("batch-{i}"), &batch(chunk.to_vec()));
    }
    write("ingest", "all", &batch(fixture_observations().to_vec()));

    // REST: one well-formed input per route kind (the first byte is the
    // route, as rest.rs numbers them).
    let rest: &[(u8, &str)] = &[
        (
            0,
            r#"{"id":"acme","name":"Acme","billing_code":"B-1","service_code":"S-1","time_zone":"Europe/Rome"}"#,
        ),
        (
            2,
            r#"{"account":"acme","serial":"X-1","kind":"lease","starts":"2026-01-01","ends":"2027-01-01"}"#,
        ),
        (
            3,
            "serial,kind,starts,ends\nX-1,lease,2026-01-01,2027-01-01\n",
        ),
        (4, r#"{"account":"acme","label":"LAN host"}"#),
        (6, r#"{"account":"acme","name":"East wing"}"#),
        (7, r#"{"name":"West wing"}"#),
        (
            9,
            r#"{"id":"fuzz-article","kind":"faq","title":"Jam in tray 2","body":"Open the tray.","language":"en","codes":["E000007-0001"],"models":["iR-ADV C5560"]}"#,
        ),
        (
            11,
            r#"{"email":"paolo@example.com","first_name":"Paolo","last_name":"Rossi","role":"product_administrator","account":"acme","language":"it"}"#,
        ),
        (
            14,
            r#"{"email":"bea@example.com","first_name":"Bea","last_name":"Neri","company":"Beta","serials":["C-1"],"password":"a long pass phrase"}"#,
        ),
        (
            16,
            r#"{"alternative_name":"Reception","location":"2nd floor"}"#,
        ),
        (
            17,
            r#"{"counter":"total","value":123456,"taken_at_ms":1790000000000}"#,
        ),
        (18, r#"{"first_name":"Olga","language":"it"}"#),
        (
            21,
            r#"{"account":"acme","kind":"information","title":"Toner order"}"#,
        ),
        (23, r#"{"text":"Technician on site tomorrow"}"#),
        (25, r#"{"login":"fuzz-op","password":"wrong password"}"#),
        (
            28,
            r#"{"id":"fuzz-user","name":"Fuzz","role":"product_administrator","account":"acme"}"#,
        ),
        (29, "q=room%20201&status=open&page=2&group=1"),
        (31, "status=closed&kind=service&account=acme"),
        (32, "code=E000007&words=jam&lang=en&lang=it"),
        (36, "from=2026-01-01&to=2026-02-01"),
        (39, "C-1"),
    ];
    for (route, input) in rest {
        let mut b = vec![*route];
        b.extend_from_slice(input.as_bytes());
        write("rest", &format!("{route}"), &b);
        b[0] |= 0x80;
        write("rest", &format!("{route}-manager"), &b);
    }
}
