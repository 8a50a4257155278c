//! The routing table: every operation Skiff serves, by service. One line per operation; the table is the
//! single source of truth for what is implemented (the conformance suite and `skiff api operations` read it).

use crate::context::Ctx;
use crate::{ec2, ecr, ecs, elbv2, sts};
use bytes::Bytes;
use skiff_proto::json::WireResponse;
use skiff_proto::query::QueryParams;
use skiff_proto::ApiError;
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A JSON 1.1 operation: decodes the body (failures reported with the service's validation error code),
/// runs the handler, encodes the output.
pub struct JsonOperation {
    pub name: &'static str,
    pub call: fn(Ctx, Bytes, &'static str) -> BoxFuture<Result<WireResponse, ApiError>>,
}

/// An AWS JSON 1.1 service, addressed by the `X-Amz-Target` prefix.
pub struct JsonService {
    /// The service name in the SigV4 credential scope.
    pub signing_name: &'static str,
    pub target_prefix: &'static str,
    /// The error code for requests that do not decode (bad JSON, wrong types, unknown members).
    pub validation_error: &'static str,
    pub operations: &'static [JsonOperation],
}

/// A query-protocol operation: parameters in, the `<ActionResult>` body XML out.
pub struct QueryOperation {
    pub name: &'static str,
    pub call: fn(Ctx, QueryParams) -> BoxFuture<Result<String, ApiError>>,
}

/// How a query-protocol service frames its responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryDialect {
    /// `<ActionResponse><ActionResult>…</ActionResult><ResponseMetadata>` and `<ErrorResponse>` errors
    /// (STS, IAM, ELBv2): botocore's `query` protocol.
    Query,
    /// EC2's own: `<ActionResponse><requestId/>…` (no Result wrapper) and `<Response><Errors><Error>`
    /// errors; EC2 also answers authentication failures as `AuthFailure`. botocore's `ec2` protocol.
    Ec2,
}

impl QueryDialect {
    /// botocore's name of the protocol (the model's `metadata.protocol`).
    pub fn protocol_name(self) -> &'static str {
        match self {
            QueryDialect::Query => "query",
            QueryDialect::Ec2 => "ec2",
        }
    }
}

/// A query-protocol service, addressed by the service in the SigV4 credential scope.
pub struct QueryService {
    pub signing_name: &'static str,
    pub xmlns: &'static str,
    pub dialect: QueryDialect,
    pub operations: &'static [QueryOperation],
}

/// Builds a [`JsonOperation`] from `async fn(&Ctx, Input) -> Result<Output, ApiError>`.
macro_rules! json_op {
    ($name:literal, $handler:path) => {
        $crate::router::JsonOperation {
            name: $name,
            call: |ctx, body, code| {
                Box::pin(async move {
                    let input = skiff_proto::json::decode(&body, code)?;
                    let output = $handler(&ctx, input).await?;
                    skiff_proto::json::success(&output)
                })
            },
        }
    };
}

/// Builds a [`QueryOperation`] from `async fn(&Ctx, QueryParams) -> Result<String, ApiError>`.
macro_rules! query_op {
    ($name:literal, $handler:path) => {
        $crate::router::QueryOperation {
            name: $name,
            call: |ctx, params| Box::pin(async move { $handler(&ctx, params).await }),
        }
    };
}

pub static ECS: JsonService = JsonService {
    signing_name: "ecs",
    target_prefix: "AmazonEC2ContainerServiceV20141113",
    validation_error: "InvalidParameterException",
    operations: &[
        json_op!("CreateCluster", ecs::clusters::create_cluster),
        json_op!("DescribeClusters", ecs::clusters::describe_clusters),
        json_op!("ListClusters", ecs::clusters::list_clusters),
        json_op!("UpdateCluster", ecs::clusters::update_cluster),
        json_op!("UpdateClusterSettings", ecs::clusters::update_cluster_settings),
        json_op!("PutClusterCapacityProviders", ecs::clusters::put_cluster_capacity_providers),
        json_op!("DeleteCluster", ecs::clusters::delete_cluster),
        json_op!("RegisterTaskDefinition", ecs::task_definitions::register_task_definition),
        json_op!("DescribeTaskDefinition", ecs::task_definitions::describe_task_definition),
        json_op!("ListTaskDefinitions", ecs::task_definitions::list_task_definitions),
        json_op!("ListTaskDefinitionFamilies", ecs::task_definitions::list_task_definition_families),
        json_op!("DeregisterTaskDefinition", ecs::task_definitions::deregister_task_definition),
        json_op!("DeleteTaskDefinitions", ecs::task_definitions::delete_task_definitions),
        json_op!("TagResource", ecs::tags::tag_resource),
        json_op!("UntagResource", ecs::tags::untag_resource),
        json_op!("ListTagsForResource", ecs::tags::list_tags_for_resource),
        json_op!("RunTask", ecs::tasks::run_task),
        json_op!("StopTask", ecs::tasks::stop_task),
        json_op!("DescribeTasks", ecs::tasks::describe_tasks),
        json_op!("ListTasks", ecs::tasks::list_tasks),
        json_op!("CreateService", ecs::services::create_service),
        json_op!("UpdateService", ecs::services::update_service),
        json_op!("DeleteService", ecs::services::delete_service),
        json_op!("DescribeServices", ecs::services::describe_services),
        json_op!("ListServices", ecs::services::list_services),
        json_op!("ListServiceDeployments", ecs::services::list_service_deployments),
        json_op!("DescribeServiceDeployments", ecs::services::describe_service_deployments),
    ],
};

pub static ECR: JsonService = JsonService {
    signing_name: "ecr",
    target_prefix: "AmazonEC2ContainerRegistry_V20150921",
    validation_error: "InvalidParameterException",
    operations: &[
        json_op!("CreateRepository", ecr::repositories::create_repository),
        json_op!("DescribeRepositories", ecr::repositories::describe_repositories),
        json_op!("DeleteRepository", ecr::repositories::delete_repository),
        json_op!("PutImageTagMutability", ecr::repositories::put_image_tag_mutability),
        json_op!("PutImageScanningConfiguration", ecr::repositories::put_image_scanning_configuration),
        json_op!("DescribeImages", ecr::images::describe_images),
        json_op!("ListImages", ecr::images::list_images),
        json_op!("BatchGetImage", ecr::images::batch_get_image),
        json_op!("BatchDeleteImage", ecr::images::batch_delete_image),
        json_op!("GetAuthorizationToken", ecr::auth::get_authorization_token),
        json_op!("PutLifecyclePolicy", ecr::lifecycle::put_lifecycle_policy),
        json_op!("GetLifecyclePolicy", ecr::lifecycle::get_lifecycle_policy),
        json_op!("DeleteLifecyclePolicy", ecr::lifecycle::delete_lifecycle_policy),
        json_op!("TagResource", ecr::tags::tag_resource),
        json_op!("UntagResource", ecr::tags::untag_resource),
        json_op!("ListTagsForResource", ecr::tags::list_tags_for_resource),
    ],
};

pub static STS: QueryService = QueryService {
    signing_name: "sts",
    xmlns: "https://sts.amazonaws.com/doc/2011-06-15/",
    dialect: QueryDialect::Query,
    operations: &[query_op!("GetCallerIdentity", sts::get_caller_identity)],
};

/// The EC2 networking subset awsvpc tasks need: the region's default VPC, its subnets and security group,
/// and the availability zones (read-only for now).
pub static EC2: QueryService = QueryService {
    signing_name: "ec2",
    xmlns: "http://ec2.amazonaws.com/doc/2016-11-15/",
    dialect: QueryDialect::Ec2,
    operations: &[
        query_op!("DescribeVpcs", ec2::describe_vpcs),
        query_op!("DescribeVpcAttribute", ec2::describe_vpc_attribute),
        query_op!("DescribeSubnets", ec2::describe_subnets),
        query_op!("DescribeSecurityGroups", ec2::describe_security_groups),
        query_op!("DescribeAvailabilityZones", ec2::describe_availability_zones),
    ],
};

/// Elastic Load Balancing v2: the records, served by the data plane (`lb.rs` → `skiff_lb`).
pub static ELBV2: QueryService = QueryService {
    signing_name: "elasticloadbalancing",
    xmlns: "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
    dialect: QueryDialect::Query,
    operations: &[
        query_op!("CreateLoadBalancer", elbv2::create_load_balancer),
        query_op!("DescribeLoadBalancers", elbv2::describe_load_balancers),
        query_op!("DeleteLoadBalancer", elbv2::delete_load_balancer),
        query_op!("DescribeLoadBalancerAttributes", elbv2::describe_load_balancer_attributes),
        query_op!("ModifyLoadBalancerAttributes", elbv2::modify_load_balancer_attributes),
        query_op!("CreateTargetGroup", elbv2::create_target_group),
        query_op!("DescribeTargetGroups", elbv2::describe_target_groups),
        query_op!("ModifyTargetGroup", elbv2::modify_target_group),
        query_op!("DeleteTargetGroup", elbv2::delete_target_group),
        query_op!("DescribeTargetGroupAttributes", elbv2::describe_target_group_attributes),
        query_op!("ModifyTargetGroupAttributes", elbv2::modify_target_group_attributes),
        query_op!("RegisterTargets", elbv2::register_targets),
        query_op!("DeregisterTargets", elbv2::deregister_targets),
        query_op!("DescribeTargetHealth", elbv2::describe_target_health),
        query_op!("CreateListener", elbv2::create_listener),
        query_op!("ModifyListener", elbv2::modify_listener),
        query_op!("DeleteListener", elbv2::delete_listener),
        query_op!("DescribeListeners", elbv2::describe_listeners),
        query_op!("CreateRule", elbv2::create_rule),
        query_op!("ModifyRule", elbv2::modify_rule),
        query_op!("DeleteRule", elbv2::delete_rule),
        query_op!("DescribeRules", elbv2::describe_rules),
        query_op!("SetRulePriorities", elbv2::set_rule_priorities),
        query_op!("AddTags", elbv2::add_tags),
        query_op!("RemoveTags", elbv2::remove_tags),
        query_op!("DescribeTags", elbv2::describe_tags),
    ],
};

pub static JSON_SERVICES: &[&JsonService] = &[&ECS, &ECR];
pub static QUERY_SERVICES: &[&QueryService] = &[&STS, &EC2, &ELBV2];

pub fn json_service_by_prefix(prefix: &str) -> Option<&'static JsonService> {
    JSON_SERVICES.iter().copied().find(|s| s.target_prefix == prefix)
}

pub fn query_service_by_signing_name(name: &str) -> Option<&'static QueryService> {
    QUERY_SERVICES.iter().copied().find(|s| s.signing_name == name)
}

/// One routed operation, as `skiff api operations` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RoutedOperation {
    /// The service's SigV4 signing name (also botocore's service name for the services Skiff speaks).
    pub service: &'static str,
    pub operation: &'static str,
    /// botocore's protocol name: `json` (AWS JSON 1.1), `query` or `ec2` (EC2's query dialect).
    pub protocol: &'static str,
}

/// Every implemented operation, from the routing table.
pub fn operations() -> impl Iterator<Item = RoutedOperation> {
    let json = JSON_SERVICES.iter().flat_map(|s| {
        s.operations.iter().map(move |o| RoutedOperation {
            service: s.signing_name,
            operation: o.name,
            protocol: "json",
        })
    });
    let query = QUERY_SERVICES.iter().flat_map(|s| {
        s.operations.iter().map(move |o| RoutedOperation {
            service: s.signing_name,
            operation: o.name,
            protocol: s.dialect.protocol_name(),
        })
    });
    json.chain(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_unique_per_service() {
        let mut seen = std::collections::HashSet::new();
        for op in operations() {
            assert!(seen.insert((op.service, op.operation)), "{op:?} routed twice");
        }
    }

    #[test]
    fn ec2_speaks_its_own_dialect() {
        let ec2 = query_service_by_signing_name("ec2").unwrap();
        assert_eq!(ec2.dialect, QueryDialect::Ec2);
        let row = operations().find(|o| o.operation == "DescribeSubnets").unwrap();
        assert_eq!((row.service, row.protocol), ("ec2", "ec2"));
        assert_eq!(operations().find(|o| o.operation == "GetCallerIdentity").unwrap().protocol, "query");
    }
}
