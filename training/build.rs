//! 1. Embeds an rpath to libtorch's `lib/` folder so that `risk-train` and the test binaries
//!    find libtorch without LD_LIBRARY_PATH. LIBTORCH comes from `.deps/env.sh`.
//! 2. Compiles the vendored `src/onnx/onnx.proto` into Rust types (`prost-build`), parsing it
//!    with `protox` (pure Rust, no `protoc` needed).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{libtorch}/lib");
    }
    let proto = "src/onnx/onnx.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["src/onnx"]).expect("parse src/onnx/onnx.proto");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("generate the ONNX protobuf types");
}
