//! Embeds an rpath to libtorch's `lib/` folder so that `risk-train` and the test binaries
//! find libtorch without LD_LIBRARY_PATH. LIBTORCH comes from `.deps/env.sh`.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{libtorch}/lib");
    }
}
