//! The meterlink.v1 wire protocol, generated from `meterlink/v1/*.proto`,
//! and the metrics text format both programs serve.

pub mod exposition;

#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("meterlink.v1");

    /// The encoded file descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/meterlink_descriptor.bin"));
}
