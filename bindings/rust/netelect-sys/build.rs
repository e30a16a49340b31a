// SPDX-License-Identifier: MIT
//! Finds libnetelect through pkg-config.  A build tree is used by putting
//! its `meson-uninstalled` directory on PKG_CONFIG_PATH: pkg-config then
//! prefers `netelect-uninstalled.pc`, which points at the just-built
//! library and the source tree's headers.
fn main() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let lib = match pkg_config::Config::new().atleast_version("0.1.0").probe("netelect") {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!(
                "netelect-sys: libnetelect not found by pkg-config ({e}).\n\
                 Install it (`meson install -C build`) or point PKG_CONFIG_PATH at \
                 BUILD/meson-uninstalled."
            );
            std::process::exit(1);
        }
    };
    // The header sync test (tests/sync.rs) compiles a C probe against the
    // same headers the library was found with.
    let inc: Vec<String> = lib.include_paths.iter().map(|p| p.display().to_string()).collect();
    println!("cargo:rustc-env=NETELECT_SYS_INCLUDE={}", inc.join(":"));
    println!("cargo:include={}", inc.join(":"));
    let libdirs: Vec<String> = lib.link_paths.iter().map(|p| p.display().to_string()).collect();
    println!("cargo:rustc-env=NETELECT_SYS_LIBDIR={}", libdirs.join(":"));
}
