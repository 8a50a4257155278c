//! Arbitrary bytes as a layer tar: `unpack_layer` may refuse them, but must not panic, hang or write
//! anything outside its target (checked by `scene::contained`). Small caps keep every run short.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_agent::images::{unpack_layer, UnpackLimits};

#[path = "scene.rs"]
mod scene;

fuzz_target!(|data: &[u8]| {
    let limits = UnpackLimits { max_entries: 256, max_bytes: 4 << 20 };
    scene::contained(|target| {
        let _ = unpack_layer(data, target, &limits);
    });
});
