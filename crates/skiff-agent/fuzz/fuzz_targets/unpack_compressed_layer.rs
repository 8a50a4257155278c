//! Arbitrary bytes as a compressed layer: the first byte picks the media type (gzip, zstd, plain tar), the
//! rest is the blob. Same containment checks as `unpack_layer` (`scene::contained`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_agent::images::{unpack_compressed_layer, UnpackLimits};

#[path = "scene.rs"]
mod scene;

const MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, blob)) = data.split_first() else { return };
    let limits = UnpackLimits { max_entries: 256, max_bytes: 4 << 20 };
    let media_type = MEDIA_TYPES[pick as usize % MEDIA_TYPES.len()];
    scene::contained(|target| {
        let _ = unpack_compressed_layer(blob, media_type, target, &limits);
    });
});
