// Compiles meterlink/v1/*.proto with protox (pure Rust): no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["meterlink/v1/meterlink.proto"], ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("meterlink_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=meterlink/v1/meterlink.proto");
    Ok(())
}
