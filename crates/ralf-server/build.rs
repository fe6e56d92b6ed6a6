//! Takes the few Swagger UI files that `/api/docs` serves out of the vendored Swagger UI release
//! (a zip archive carried by a crate, so the build needs no network) and leaves them in
//! `$OUT_DIR/swagger-ui/`, where `routes/docs.rs` compiles them into the binary. The rest of the
//! release (other bundles, source maps: about 9 MB) stays out of the binary.

use std::io::{Cursor, Read};
use std::path::Path;

/// The files the viewer's page loads; `routes/docs.rs` lists the same names.
const SERVED: [&str; 5] = [
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
];

fn main() {
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let target = Path::new(&out_dir).join("swagger-ui");
    std::fs::create_dir_all(&target).expect("create $OUT_DIR/swagger-ui");
    let mut release =
        zip::ZipArchive::new(Cursor::new(utoipa_swagger_ui_vendored::SWAGGER_UI_VENDORED))
            .expect("the vendored Swagger UI is a zip archive");
    for name in SERVED {
        let path = release
            .file_names()
            .find(|path| path.ends_with(&format!("/dist/{name}")))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("the vendored Swagger UI has no dist/{name}"));
        let mut bytes = Vec::new();
        let mut file = release
            .by_name(&path)
            .unwrap_or_else(|e| panic!("finding {path} in the vendored Swagger UI: {e}"));
        file.read_to_end(&mut bytes)
            .unwrap_or_else(|e| panic!("reading {path} from the vendored Swagger UI: {e}"));
        drop(file);
        std::fs::write(target.join(name), bytes).expect("write a Swagger UI file");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
