//! Embeds the console's third-party browser code from npm: `npm ci --prefix web` installs
//! `@xterm/xterm` and `@xterm/addon-fit` into `web/node_modules` (see `web/package.json`;
//! nothing of them is in the repository), and this script copies the files the terminal page
//! needs into `OUT_DIR`, where `src/console.rs` embeds them with `include_str!`.
//!
//! Without them the build still succeeds (with a warning): the files are written empty,
//! `vendor.rs` says `PRESENT = false`, and the terminal page explains how to fix it.
//!
//! `vendor.rs` also carries `TAG`, a hash of the files, which the asset URLs contain, so the
//! server can let browsers cache them for a year.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (file in `web/node_modules`, name in `OUT_DIR`).
const FILES: [(&str, &str); 3] = [
    ("@xterm/xterm/lib/xterm.js", "xterm.js"),
    ("@xterm/xterm/css/xterm.css", "xterm.css"),
    ("@xterm/addon-fit/lib/addon-fit.js", "addon-fit.js"),
];

/// Licences shipped beside the code, concatenated into `licenses.txt`.
const LICENSES: [(&str, &str); 2] = [
    ("@xterm/xterm", "@xterm/xterm/LICENSE"),
    ("@xterm/addon-fit", "@xterm/addon-fit/LICENSE"),
];

/// FNV-1a, 64 bits: enough to tell builds' assets apart in a URL (not a security check).
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The `"version"` of a package.json, read without a JSON parser (the file is npm's).
fn version(package_json: &str) -> Option<String> {
    let rest = package_json.split("\"version\"").nth(1)?;
    let start = rest.find('"')?.checked_add(1)?;
    let tail = rest.get(start..)?;
    let end = tail.find('"')?;
    Some(tail.get(..end)?.to_owned())
}

fn main() -> Result<(), String> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let web = manifest.join("../../web");
    let modules = web.join("node_modules");
    println!(
        "cargo:rerun-if-changed={}",
        web.join("package-lock.json").display()
    );

    let mut contents = Vec::new();
    let mut missing = Vec::new();
    for (from, _) in FILES {
        let path = modules.join(from);
        match std::fs::read(&path) {
            Ok(bytes) => {
                println!("cargo:rerun-if-changed={}", path.display());
                contents.push(bytes);
            }
            Err(_) => missing.push(from),
        }
    }
    let present = missing.is_empty();
    if !present {
        // Watch the folder, so installing the packages later rebuilds with them.
        println!("cargo:rerun-if-changed={}", web.display());
        println!(
            "cargo:warning=the web console's terminal assets are missing ({}): the terminal \
             page will say so. Run `npm ci --prefix web` and build again.",
            missing.join(", ")
        );
        contents = vec![Vec::new(); FILES.len()];
    }

    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for ((_, name), bytes) in FILES.iter().zip(&contents) {
        hash = fnv1a(hash, bytes);
        write(&out.join(name), bytes)?;
    }

    let mut licenses = String::new();
    let mut versions = Vec::new();
    for (package, license) in LICENSES {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let text = if present {
            read(&modules.join(license))
        } else {
            String::new()
        };
        let v = if present {
            version(&read(&modules.join(package).join("package.json"))).unwrap_or_default()
        } else {
            String::new()
        };
        let _ = writeln!(licenses, "{package} {v}\n\n{text}\n");
        versions.push(format!("{package}@{v}"));
    }
    write(&out.join("licenses.txt"), licenses.as_bytes())?;

    let rust = format!(
        "/// Whether the build found the packages in `web/node_modules`.\n\
         pub const PRESENT: bool = {present};\n\
         /// A hash of the embedded files, part of their URLs.\n\
         pub const TAG: &str = \"{hash:016x}\";\n\
         /// The embedded packages and their versions.\n\
         pub const VERSIONS: &str = \"{}\";\n",
        versions.join(" ")
    );
    write(&out.join("vendor.rs"), rust.as_bytes())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}
