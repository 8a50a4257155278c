//! `skiff-model` owns Skiff's domain types — the AWS nouns (`Cluster`, `TaskDefinition`,
//! `ContainerDefinition`, …) with the exact member names of the AWS service models — and the validation
//! and defaulting ECS applies to them. It never does I/O: no store, no network, no clock.

pub mod cluster;
pub mod ecr;
pub mod elbv2;
pub mod fargate;
pub mod service;
pub mod tag;
pub mod task;
pub mod task_definition;
pub mod vpc;
