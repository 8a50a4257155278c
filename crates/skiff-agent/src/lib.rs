//! `skiff-agent` is the node agent: what runs on every node to turn assignments into running tasks.
//! It owns the node's image store ([`images`]: pull, verify, cache and unpack images, assemble overlayfs
//! root filesystems, collect garbage), per-task networking ([`network`]) and the container runtime
//! ([`runtime`]: OCI bundles run by crun/runc under a monitor).
//!
//! **The agent never touches the store** (`skiff-store`) and knows no ECS records: it receives assignments
//! and reports observed state. It writes only under its own data directories; the image store never
//! follows a path a layer placed and never applies a layer's device nodes or `trusted.*` xattrs.

pub mod images;
pub mod network;
pub mod runtime;
pub mod storage;
pub mod task;
