//! Hostile peers against the collector, and an agent that does not trust
//! the server: refused, nothing filed.

use meterlink_collector::config::Config;
use meterlink_collector::pki::{Pki, Validity};
use meterlink_collector::server::Running;
use meterlink_proto::v1::collector_client::CollectorClient;
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{
    agent_message, AgentMessage, Batch, CounterValue, Hello, MeterReading, Observation,
};
use meterlink_tests::stack::collector_toml;
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

async fn collector(dir: &Path) -> Running {
    let cfg = Config::parse(
        "test",
        &collector_toml(&dir.join("collector"), "127.0.0.1:0", "127.0.0.1:0"),
    )
    .unwrap();
    meterlink_collector::server::start(&cfg).await.unwrap()
}

fn pem(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

async fn channel(
    r: &Running,
    ca: &str,
    identity: Option<(String, String)>,
) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((c, k)) = identity {
        tls = tls.identity(Identity::from_pem(c, k));
    }
    Endpoint::from_shared(format!("https://{}", r.grpc_addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

fn meter(seq: u64) -> Observation {
    Observation {
        seq,
        taken_at_ms: 1_700_000_000_000,
        device_address: "127.0.0.1:161".into(),
        serial: "HOSTILE1".into(),
        body: Some(Body::Meter(MeterReading {
            counters: vec![CounterValue {
                id: "canon.101".into(),
                value: 5,
                ..Default::default()
            }],
        })),
    }
}

/// Opens a stream, says hello as `agent_id`, sends `batch`; returns the
/// first answer or the error status.
async fn send(ch: Channel, agent_id: &str, batch: Vec<Observation>) -> Result<u64, tonic::Status> {
    let mut client = CollectorClient::new(ch).max_encoding_message_size(64 << 20);
    let msgs = vec![
        AgentMessage {
            kind: Some(agent_message::Kind::Hello(Hello {
                agent_id: agent_id.into(),
                ..Default::default()
            })),
        },
        AgentMessage {
            kind: Some(agent_message::Kind::Batch(Batch {
                observations: batch,
            })),
        },
    ];
    let mut inbound = client.stream(tokio_stream::iter(msgs)).await?.into_inner();
    match inbound.message().await? {
        Some(m) => match m.kind {
            Some(meterlink_proto::v1::collector_message::Kind::Ack(a)) => Ok(a.seq),
            _ => Err(tonic::Status::unknown("no ack")),
        },
        None => Err(tonic::Status::unknown("stream ended without an answer")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_peers_file_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let r = collector(tmp.path()).await;
    let pki = Pki::ensure(&tmp.path().join("collector/pki"), "x").unwrap();
    let ca = pem(&pki.ca_cert());
    let certs = tmp.path().join("certs");

    // A proper agent works (the control case).
    let good = pki
        .issue("agent-good", false, &certs, "good", None)
        .unwrap();
    let ch = channel(&r, &ca, Some((pem(&good.cert), pem(&good.key))))
        .await
        .unwrap();
    assert_eq!(send(ch, "agent-good", vec![meter(1)]).await.unwrap(), 1);

    // No client certificate: the handshake or the first call fails.
    let outcome = match channel(&r, &ca, None).await {
        Err(e) => Err(e),
        Ok(ch) => send(ch, "intruder", vec![meter(1)])
            .await
            .map_err(|s| s.to_string()),
    };
    assert!(outcome.is_err(), "accepted without a certificate");

    // A certificate from another CA.
    let other = Pki::ensure(&tmp.path().join("other-ca"), "other").unwrap();
    let foreign = other
        .issue("agent-foreign", false, &certs, "foreign", None)
        .unwrap();
    let outcome = match channel(&r, &ca, Some((pem(&foreign.cert), pem(&foreign.key)))).await {
        Err(e) => Err(e),
        Ok(ch) => send(ch, "agent-foreign", vec![meter(1)])
            .await
            .map_err(|s| s.to_string()),
    };
    assert!(outcome.is_err(), "accepted a certificate from another CA");

    // An expired certificate from the right CA.
    let expired = pki
        .issue(
            "agent-expired",
            false,
            &certs,
            "expired",
            Some(Validity {
                not_before: (2020, 1, 1),
                not_after: (2021, 1, 1),
            }),
        )
        .unwrap();
    let outcome = match channel(&r, &ca, Some((pem(&expired.cert), pem(&expired.key)))).await {
        Err(e) => Err(e),
        Ok(ch) => send(ch, "agent-expired", vec![meter(1)])
            .await
            .map_err(|s| s.to_string()),
    };
    assert!(outcome.is_err(), "accepted an expired certificate");

    // A good certificate claiming another agent's id.
    let ch = channel(&r, &ca, Some((pem(&good.cert), pem(&good.key))))
        .await
        .unwrap();
    let e = send(ch, "agent-other", vec![meter(2)]).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e}");

    // An oversized message: refused, the stream dropped, nothing filed.
    let big: Vec<Observation> = (10..30_000u64)
        .map(|s| {
            let mut o = meter(s);
            o.device_address = "x".repeat(400);
            o
        })
        .collect();
    let ch = channel(&r, &ca, Some((pem(&good.cert), pem(&good.key))))
        .await
        .unwrap();
    let e = send(ch, "agent-good", big).await.unwrap_err();
    assert!(
        matches!(
            e.code(),
            tonic::Code::ResourceExhausted | tonic::Code::OutOfRange | tonic::Code::InvalidArgument
        ),
        "{e}"
    );

    // A sequence number of 0 is invalid data: refused.
    let ch = channel(&r, &ca, Some((pem(&good.cert), pem(&good.key))))
        .await
        .unwrap();
    let e = send(ch, "agent-good", vec![meter(0)]).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");

    // Only the control observation was filed, by the only good agent.
    assert_eq!(r.store.filed_seqs("agent-good").await.unwrap(), vec![1]);
    for a in ["intruder", "agent-foreign", "agent-expired", "agent-other"] {
        assert_eq!(r.store.observation_count(a).await.unwrap(), 0, "{a}");
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let r = collector(tmp.path()).await;
    let pki = Pki::ensure(&tmp.path().join("collector/pki"), "x").unwrap();
    let good = pki
        .issue("agent-good", false, &tmp.path().join("certs"), "good", None)
        .unwrap();
    let ch = channel(
        &r,
        &pem(&pki.ca_cert()),
        Some((pem(&good.cert), pem(&good.key))),
    )
    .await
    .unwrap();
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.unwrap();
    // A Hello, then bytes that are not a protobuf message.
    let hello = prost::Message::encode_to_vec(&AgentMessage {
        kind: Some(agent_message::Kind::Hello(Hello {
            agent_id: "agent-good".into(),
            ..Default::default()
        })),
    });
    let garbage = vec![0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02];
    let path = http::uri::PathAndQuery::from_static("/meterlink.v1.Collector/Stream");
    let res = grpc
        .streaming(
            tonic::Request::new(tokio_stream::iter(vec![hello, garbage])),
            path,
            RawCodec,
        )
        .await;
    let failed = match res {
        Err(_) => true,
        Ok(resp) => {
            let mut s = resp.into_inner();
            matches!(s.message().await, Err(_) | Ok(None))
        }
    };
    assert!(failed, "garbage was answered normally");
    assert_eq!(r.store.observation_count("agent-good").await.unwrap(), 0);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_with_the_wrong_server_ca_refuses_to_send() {
    let tmp = tempfile::tempdir().unwrap();
    let r = collector(tmp.path()).await;
    let pki = Pki::ensure(&tmp.path().join("collector/pki"), "x").unwrap();
    let good = pki
        .issue("agent-good", false, &tmp.path().join("certs"), "good", None)
        .unwrap();
    let other = Pki::ensure(&tmp.path().join("other-ca"), "other").unwrap();
    // The agent trusts another CA than the one that signed the collector.
    let e = channel(
        &r,
        &pem(&other.ca_cert()),
        Some((pem(&good.cert), pem(&good.key))),
    )
    .await;
    let outcome = match e {
        Err(e) => Err(e),
        Ok(ch) => send(ch, "agent-good", vec![meter(1)])
            .await
            .map_err(|s| s.to_string()),
    };
    assert!(outcome.is_err(), "sent to an untrusted server");
    assert_eq!(r.store.observation_count("agent-good").await.unwrap(), 0);
    r.stop().await;
}

/// Sends and receives raw bytes: lets a test put malformed messages on the wire.
#[derive(Clone, Copy)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        let n = src.remaining();
        let mut v = vec![0u8; n];
        src.copy_to_slice(&mut v);
        Ok(Some(v))
    }
}

/// What grpcurl does: list the services by reflection, describe the ingest
/// service, and call the health check (with a client certificate, like any
/// agent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_and_health_answers() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let tmp = tempfile::tempdir().unwrap();
    let r = collector(tmp.path()).await;
    let pki = Pki::ensure(&tmp.path().join("collector/pki"), "x").unwrap();
    let good = pki
        .issue("ops", false, &tmp.path().join("certs"), "ops", None)
        .unwrap();
    let ch = channel(
        &r,
        &pem(&pki.ca_cert()),
        Some((pem(&good.cert), pem(&good.key))),
    )
    .await
    .unwrap();

    let mut refl = ServerReflectionClient::new(ch.clone());
    let reqs = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "meterlink.v1.Collector".into(),
            )),
        },
    ];
    let mut answers = refl
        .server_reflection_info(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"meterlink.v1.Collector".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
    let Some(MessageResponse::FileDescriptorResponse(fd)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no descriptor for meterlink.v1.Collector")
    };
    assert!(!fd.file_descriptor_proto.is_empty());

    let mut health = HealthClient::new(ch);
    let s = health
        .check(HealthCheckRequest {
            service: "meterlink.v1.Collector".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.status, 1, "SERVING");
    r.stop().await;
}
