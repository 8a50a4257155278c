//! Arbitrary bytes as an AWS JSON 1.1 request body into `json::decode`, for the real
//! `RegisterTaskDefinitionRequest` (the largest ECS input: nested containers, maps, enums), a small local
//! request shape (nested struct, list, map, enum, integers, booleans, `deny_unknown_fields`) and
//! `serde_json::Value`. The ECS request types of skiff-api are private, so these stand in for them.
//!
//! Properties: no panic; a failure is always a 400 with the code passed in and a non-empty message; a
//! success only for a body that is blank or a JSON object (never an array or scalar, at the top level);
//! and a decoded request survives a round trip (serialize, decode again: equal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use skiff_model::task_definition::RegisterTaskDefinitionRequest;
use skiff_proto::json::decode;
use std::collections::BTreeMap;
use std::fmt::Debug;

const CODE: &str = "InvalidParameterException";

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunTaskLike {
    cluster: Option<String>,
    task_definition: String,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    enable_ecs_managed_tags: bool,
    launch_type: Option<LaunchType>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    overrides: Option<Overrides>,
    #[serde(default)]
    started_by: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum LaunchType {
    #[serde(rename = "EC2")]
    Ec2,
    #[serde(rename = "FARGATE")]
    Fargate,
    #[serde(rename = "EXTERNAL")]
    External,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tag {
    key: String,
    value: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Overrides {
    #[serde(default)]
    cpu: Option<String>,
    #[serde(default)]
    memory: Option<i64>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

fn check<T: DeserializeOwned + Serialize + PartialEq + Debug>(body: &[u8]) {
    match decode::<T>(body, CODE) {
        Err(e) => {
            assert_eq!((e.code.as_ref(), e.status), (CODE, 400), "unexpected error {e:?}");
            assert!(!e.message.is_empty(), "empty error message");
        }
        Ok(value) => {
            let text = std::str::from_utf8(body).expect("decode accepted non-UTF-8");
            assert!(
                text.bytes().all(|b| b.is_ascii_whitespace()) || text.trim_start().starts_with('{'),
                "decode accepted a body that is not a JSON object: {text:?}"
            );
            let again = serde_json::to_vec(&value).expect("a decoded value serializes");
            let round = decode::<T>(&again, CODE)
                .unwrap_or_else(|e| panic!("re-encoded {} does not decode: {e:?}", String::from_utf8_lossy(&again)));
            assert_eq!(round, value, "round trip changed the value");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check::<RegisterTaskDefinitionRequest>(data);
    check::<RunTaskLike>(data);
    check::<serde_json::Value>(data);
});
