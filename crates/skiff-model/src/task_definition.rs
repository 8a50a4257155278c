//! ECS task definitions: every shape reachable from `RegisterTaskDefinitionRequest` and `TaskDefinition`
//! in botocore's ECS model (2014-11-13), named after the model's shapes with its exact member names, and
//! the validation and defaulting ECS applies when a task definition is registered
//! ([`RegisterTaskDefinitionRequest::into_task_definition`]).
//!
//! The same types decode requests, encode responses and are stored as JSON. Members the model marks
//! `required` are plain fields (a request without them fails to decode); every other member is an
//! `Option` that is left out of the JSON when `None`. Enums accept only the model's values.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use skiff_proto::timestamp::{json_opt, EpochMillis};
use skiff_proto::ApiError;

use crate::fargate;
use crate::tag::{validate_tags, Tag};

/// An enum of the model, serialized as the model's exact strings; anything else fails to decode.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in the model's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire string.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            /// The value whose wire string is `s`, exactly.
            pub fn from_wire(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// `NetworkMode`.
    NetworkMode { Bridge = "bridge", Host = "host", Awsvpc = "awsvpc", None = "none" }
);
wire_enum!(
    /// `PidMode`.
    PidMode { Host = "host", Task = "task" }
);
wire_enum!(
    /// `IpcMode`.
    IpcMode { Host = "host", Task = "task", None = "none" }
);
wire_enum!(
    /// `TaskDefinitionStatus`.
    TaskDefinitionStatus { Active = "ACTIVE", Inactive = "INACTIVE", DeleteInProgress = "DELETE_IN_PROGRESS" }
);
wire_enum!(
    /// `Compatibility`: a launch type a task definition is validated against / compatible with.
    Compatibility { Ec2 = "EC2", Fargate = "FARGATE", External = "EXTERNAL", ManagedInstances = "MANAGED_INSTANCES" }
);
wire_enum!(
    /// `ProxyConfigurationType`.
    ProxyConfigurationType { Appmesh = "APPMESH" }
);
wire_enum!(
    /// `CPUArchitecture`.
    CPUArchitecture { X86_64 = "X86_64", Arm64 = "ARM64" }
);
wire_enum!(
    /// `OSFamily`.
    OSFamily {
        WindowsServer2019Full = "WINDOWS_SERVER_2019_FULL",
        WindowsServer2019Core = "WINDOWS_SERVER_2019_CORE",
        WindowsServer2016Full = "WINDOWS_SERVER_2016_FULL",
        WindowsServer2004Core = "WINDOWS_SERVER_2004_CORE",
        WindowsServer2022Core = "WINDOWS_SERVER_2022_CORE",
        WindowsServer2022Full = "WINDOWS_SERVER_2022_FULL",
        WindowsServer2025Core = "WINDOWS_SERVER_2025_CORE",
        WindowsServer2025Full = "WINDOWS_SERVER_2025_FULL",
        WindowsServer20H2Core = "WINDOWS_SERVER_20H2_CORE",
        Linux = "LINUX",
    }
);
wire_enum!(
    /// `VersionConsistency`.
    VersionConsistency { Enabled = "enabled", Disabled = "disabled" }
);
wire_enum!(
    /// `TaskDefinitionPlacementConstraintType`.
    TaskDefinitionPlacementConstraintType { MemberOf = "memberOf" }
);
wire_enum!(
    /// `TargetType`.
    TargetType { ContainerInstance = "container-instance" }
);
wire_enum!(
    /// `LogDriver`.
    LogDriver {
        JsonFile = "json-file",
        Syslog = "syslog",
        Journald = "journald",
        Gelf = "gelf",
        Fluentd = "fluentd",
        Awslogs = "awslogs",
        Splunk = "splunk",
        Awsfirelens = "awsfirelens",
    }
);
wire_enum!(
    /// `FirelensConfigurationType`.
    FirelensConfigurationType { Fluentd = "fluentd", Fluentbit = "fluentbit" }
);
wire_enum!(
    /// `Scope` (of a Docker volume).
    Scope { Task = "task", Shared = "shared" }
);
wire_enum!(
    /// `EFSTransitEncryption`.
    EFSTransitEncryption { Enabled = "ENABLED", Disabled = "DISABLED" }
);
wire_enum!(
    /// `TransportProtocol`.
    TransportProtocol { Tcp = "tcp", Udp = "udp" }
);
wire_enum!(
    /// `ApplicationProtocol`.
    ApplicationProtocol { Http = "http", Http2 = "http2", Grpc = "grpc" }
);
wire_enum!(
    /// `EnvironmentFileType`.
    EnvironmentFileType { S3 = "s3" }
);
wire_enum!(
    /// `ContainerCondition` (of a `dependsOn` entry).
    ContainerCondition { Start = "START", Complete = "COMPLETE", Success = "SUCCESS", Healthy = "HEALTHY" }
);
wire_enum!(
    /// `UlimitName`.
    UlimitName {
        Core = "core",
        Cpu = "cpu",
        Data = "data",
        Fsize = "fsize",
        Locks = "locks",
        Memlock = "memlock",
        Msgqueue = "msgqueue",
        Nice = "nice",
        Nofile = "nofile",
        Nproc = "nproc",
        Rss = "rss",
        Rtprio = "rtprio",
        Rttime = "rttime",
        Sigpending = "sigpending",
        Stack = "stack",
    }
);
wire_enum!(
    /// `ResourceType`.
    ResourceType { Gpu = "GPU", InferenceAccelerator = "InferenceAccelerator" }
);
wire_enum!(
    /// `EFSAuthorizationConfigIAM`.
    EFSAuthorizationConfigIAM { Enabled = "ENABLED", Disabled = "DISABLED" }
);
wire_enum!(
    /// `DeviceCgroupPermission`.
    DeviceCgroupPermission { Read = "read", Write = "write", Mknod = "mknod" }
);

/// `RegisterTaskDefinitionRequest`: the input of RegisterTaskDefinition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterTaskDefinitionRequest {
    pub family: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    pub container_definitions: Vec<ContainerDefinition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement_constraints: Option<Vec<TaskDefinitionPlacementConstraint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires_compatibilities: Option<Vec<Compatibility>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<PidMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<IpcMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_configuration: Option<ProxyConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_accelerators: Option<Vec<InferenceAccelerator>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<RuntimePlatform>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_fault_injection: Option<bool>,
}

/// `TaskDefinition`: a registered revision, as RegisterTaskDefinition/DescribeTaskDefinition return it
/// and as Skiff stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDefinition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_definitions: Option<Vec<ContainerDefinition>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskDefinitionStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires_attributes: Option<Vec<Attribute>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement_constraints: Option<Vec<TaskDefinitionPlacementConstraint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compatibilities: Option<Vec<Compatibility>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<RuntimePlatform>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires_compatibilities: Option<Vec<Compatibility>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_accelerators: Option<Vec<InferenceAccelerator>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<PidMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<IpcMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_configuration: Option<ProxyConfiguration>,
    #[serde(default, with = "json_opt", skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<EpochMillis>,
    #[serde(default, with = "json_opt", skip_serializing_if = "Option::is_none")]
    pub deregistered_at: Option<EpochMillis>,
    #[serde(default, with = "json_opt", skip_serializing_if = "Option::is_none")]
    pub delete_requested_at: Option<EpochMillis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_fault_injection: Option<bool>,
}

impl TaskDefinition {
    /// The family ("" if unset, which a registered task definition never is).
    pub fn family(&self) -> &str {
        self.family.as_deref().unwrap_or_default()
    }

    /// The revision (0 if unset).
    pub fn revision(&self) -> i32 {
        self.revision.unwrap_or_default()
    }

    /// The ARN ("" if unset).
    pub fn arn(&self) -> &str {
        self.task_definition_arn.as_deref().unwrap_or_default()
    }

    /// The container definitions (empty if unset).
    pub fn containers(&self) -> &[ContainerDefinition] {
        self.container_definitions.as_deref().unwrap_or_default()
    }

    /// The container definition named `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerDefinition> {
        self.containers().iter().find(|c| c.name.as_deref() == Some(name))
    }

    /// Whether the task definition can run with `launch_type` (its `compatibilities` list it).
    pub fn is_compatible_with(&self, launch_type: Compatibility) -> bool {
        self.compatibilities.as_deref().unwrap_or_default().contains(&launch_type)
    }
}

/// `ContainerDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerDefinition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_credentials: Option<RepositoryCredentials>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMapping>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<ContainerRestartPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<KeyValuePair>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_files: Option<Vec<EnvironmentFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_points: Option<Vec<MountPoint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes_from: Option<Vec<VolumeFrom>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<Secret>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<ContainerDependency>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_timeout: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_consistency: Option<VersionConsistency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_networking: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_servers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_search_domains: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_hosts: Option<Vec<HostEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_security_options: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudo_terminal: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ulimits: Option<Vec<Ulimit>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_controls: Option<Vec<SystemControl>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firelens_configuration: Option<FirelensConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_specs: Option<Vec<String>>,
}

impl ContainerDefinition {
    /// Whether the container is essential (`essential` defaults to true).
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }
}

/// `RepositoryCredentials`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryCredentials {
    pub credentials_parameter: String,
}

/// `PortMapping`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortMapping {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<TransportProtocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<ApplicationProtocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_port_range: Option<String>,
}

/// `ContainerRestartPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerRestartPolicy {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored_exit_codes: Option<Vec<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_attempt_period: Option<i32>,
}

/// `KeyValuePair` (environment variables, proxy configuration properties).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyValuePair {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `EnvironmentFile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentFile {
    pub value: String,
    pub r#type: EnvironmentFileType,
}

/// `MountPoint`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MountPoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_volume: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// `VolumeFrom`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeFrom {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// `LinuxParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinuxParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<KernelCapabilities>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<Device>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_process_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_memory_size: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<Vec<Tmpfs>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_swap: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<i32>,
}

/// `KernelCapabilities`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KernelCapabilities {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop: Option<Vec<String>>,
}

/// `Device`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Device {
    pub host_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<DeviceCgroupPermission>>,
}

/// `Tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tmpfs {
    pub container_path: String,
    pub size: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_options: Option<Vec<String>>,
}

/// `Secret` (container secrets and log configuration `secretOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secret {
    pub name: String,
    pub value_from: String,
}

/// `ContainerDependency` (a `dependsOn` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerDependency {
    pub container_name: String,
    pub condition: ContainerCondition,
}

/// `HostEntry` (an `extraHosts` entry).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostEntry {
    pub hostname: String,
    pub ip_address: String,
}

/// `Ulimit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ulimit {
    pub name: UlimitName,
    pub soft_limit: i32,
    pub hard_limit: i32,
}

/// `LogConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogConfiguration {
    pub log_driver: LogDriver,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_options: Option<Vec<Secret>>,
}

impl LogConfiguration {
    /// The value of option `key`, if set.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.as_ref().and_then(|o| o.get(key)).map(String::as_str)
    }
}

/// `HealthCheck`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i32>,
}

/// `SystemControl`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SystemControl {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `ResourceRequirement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRequirement {
    pub value: String,
    pub r#type: ResourceType,
}

/// `FirelensConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FirelensConfiguration {
    pub r#type: FirelensConfigurationType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
}

/// `Volume`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostVolumeProperties>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_volume_configuration: Option<DockerVolumeConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub efs_volume_configuration: Option<EFSVolumeConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3files_volume_configuration: Option<S3FilesVolumeConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fsx_windows_file_server_volume_configuration: Option<FSxWindowsFileServerVolumeConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured_at_launch: Option<bool>,
}

/// `HostVolumeProperties`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostVolumeProperties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
}

/// `DockerVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DockerVolumeConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoprovision: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `EFSVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EFSVolumeConfiguration {
    pub file_system_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transit_encryption: Option<EFSTransitEncryption>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transit_encryption_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_config: Option<EFSAuthorizationConfig>,
}

/// `EFSAuthorizationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EFSAuthorizationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_point_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam: Option<EFSAuthorizationConfigIAM>,
}

/// `S3FilesVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3FilesVolumeConfiguration {
    pub file_system_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transit_encryption_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_point_arn: Option<String>,
}

/// `FSxWindowsFileServerVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FSxWindowsFileServerVolumeConfiguration {
    pub file_system_id: String,
    pub root_directory: String,
    pub authorization_config: FSxWindowsFileServerAuthorizationConfig,
}

/// `FSxWindowsFileServerAuthorizationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FSxWindowsFileServerAuthorizationConfig {
    pub credentials_parameter: String,
    pub domain: String,
}

/// `TaskDefinitionPlacementConstraint`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDefinitionPlacementConstraint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<TaskDefinitionPlacementConstraintType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// `ProxyConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<ProxyConfigurationType>,
    pub container_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Vec<KeyValuePair>>,
}

/// `InferenceAccelerator` (deprecated by ECS in 2023; kept because the model still carries it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InferenceAccelerator {
    pub device_name: String,
    pub device_type: String,
}

/// `EphemeralStorage`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EphemeralStorage {
    #[serde(rename = "sizeInGiB")]
    pub size_in_gib: i32,
}

/// `RuntimePlatform`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimePlatform {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_architecture: Option<CPUArchitecture>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operating_system_family: Option<OSFamily>,
}

/// `Attribute` (a `requiresAttributes` entry).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attribute {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
}

impl Attribute {
    /// An attribute with only a name, as `requiresAttributes` lists them.
    pub fn named(name: impl Into<String>) -> Self {
        Attribute { name: name.into(), ..Attribute::default() }
    }
}

//--------------------------------------------------------------------------------------------------------
// Registration: validation and defaulting.
//--------------------------------------------------------------------------------------------------------

/// What the caller decides for a new revision (the model crate does no I/O and reads no clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationContext {
    /// `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION`.
    pub arn: String,
    pub revision: i32,
    pub registered_at: EpochMillis,
    /// The ARN of the caller's identity.
    pub registered_by: String,
}

/// Most containers in one task definition (an ECS quota that applies to every launch type).
pub const MAX_CONTAINERS: usize = 10;
/// Task-level cpu range ECS accepts for EC2/EXTERNAL task definitions (0.125 to 192 vCPU).
pub const EC2_TASK_CPU_RANGE: std::ops::RangeInclusive<u32> = 128..=196_608;
/// Fargate ephemeral storage range, GiB.
pub const EPHEMERAL_STORAGE_GIB: std::ops::RangeInclusive<i32> = 21..=200;
/// Highest `nofile` hard limit Fargate allows.
pub const FARGATE_MAX_NOFILE: i32 = 1_048_576;
/// Health check defaults ECS fills in (seconds, seconds, count).
pub const DEFAULT_HEALTH_CHECK_INTERVAL: i32 = 30;
pub const DEFAULT_HEALTH_CHECK_TIMEOUT: i32 = 5;
pub const DEFAULT_HEALTH_CHECK_RETRIES: i32 = 3;

/// The Linux capabilities ECS documents for `linuxParameters.capabilities` (`CAP_` prefix optional).
const CAPABILITIES: &[&str] = &[
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

fn client(message: impl Into<String>) -> ApiError {
    ApiError::client_exception(message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_parameter(message)
}

/// ECS's wording for a parameter Fargate does not support ("Tasks using the Fargate launch type do not
/// support ipcMode."), with the container named when the parameter is a container's.
fn fargate_unsupported(what: &str, container: Option<&str>) -> ApiError {
    match container {
        Some(name) => {
            client(format!("Tasks using the Fargate launch type do not support {what} (container '{name}')."))
        }
        None => client(format!("Tasks using the Fargate launch type do not support {what}.")),
    }
}

/// 1–255 letters, digits, hyphens and underscores: the rule for families, container and volume names.
fn is_resource_name(s: &str) -> bool {
    (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn non_empty(s: Option<&str>) -> bool {
    s.is_some_and(|s| !s.trim().is_empty())
}

/// What every container check needs to know about the task around it.
struct TaskScope<'a> {
    fargate: bool,
    mode: NetworkMode,
    task_memory: Option<u32>,
    execution_role: bool,
    volume_names: HashSet<&'a str>,
    container_names: &'a [String],
    accelerator_names: HashSet<&'a str>,
}

impl RegisterTaskDefinitionRequest {
    /// Validates the request as ECS validates RegisterTaskDefinition and builds the new revision with the
    /// defaults ECS fills in, so that a client reading it back sees exactly what ECS would return. The
    /// tags are validated and returned separately (ECS stores them beside the task definition).
    pub fn into_task_definition(self, ctx: RegistrationContext) -> Result<(TaskDefinition, Vec<Tag>), ApiError> {
        let RegisterTaskDefinitionRequest {
            family,
            task_role_arn,
            execution_role_arn,
            network_mode,
            mut container_definitions,
            volumes,
            placement_constraints,
            requires_compatibilities,
            cpu,
            memory,
            tags,
            pid_mode,
            ipc_mode,
            proxy_configuration,
            inference_accelerators,
            ephemeral_storage,
            runtime_platform,
            enable_fault_injection,
        } = self;

        validate_family(&family)?;
        let tags = tags.unwrap_or_default();
        validate_tags(&tags)?;

        let requested = requires_compatibilities.as_deref().unwrap_or_default();
        let fargate = requested.contains(&Compatibility::Fargate);
        if fargate && network_mode != Some(NetworkMode::Awsvpc) {
            return Err(client("Fargate only supports network mode \u{2018}awsvpc\u{2019}."));
        }
        let mode = network_mode.unwrap_or(NetworkMode::Bridge);

        let task_cpu = parse_task_size(cpu.as_deref(), "cpu", fargate::parse_cpu)?;
        let task_memory = parse_task_size(memory.as_deref(), "memory", fargate::parse_memory)?;
        validate_task_size(task_cpu, task_memory, fargate, runtime_platform.as_ref())?;

        let volumes = volumes.unwrap_or_default();
        validate_volumes(&volumes, fargate)?;
        let placement_constraints = placement_constraints.unwrap_or_default();
        validate_placement_constraints(&placement_constraints, fargate)?;
        if fargate {
            if pid_mode == Some(PidMode::Host) {
                return Err(client(
                    "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.",
                ));
            }
            if ipc_mode.is_some() {
                return Err(fargate_unsupported("ipcMode", None));
            }
        }
        if let Some(storage) = &ephemeral_storage {
            if !EPHEMERAL_STORAGE_GIB.contains(&storage.size_in_gib) {
                return Err(client(format!(
                    "invalid 'ephemeralStorage.sizeInGiB' {}: must be between {} and {} GiB",
                    storage.size_in_gib,
                    EPHEMERAL_STORAGE_GIB.start(),
                    EPHEMERAL_STORAGE_GIB.end()
                )));
            }
        }
        let accelerators = inference_accelerators.as_deref().unwrap_or_default();
        if fargate && !accelerators.is_empty() {
            return Err(fargate_unsupported("inferenceAccelerators", None));
        }
        let mut accelerator_names = HashSet::new();
        for a in accelerators {
            if a.device_name.is_empty() || !accelerator_names.insert(a.device_name.as_str()) {
                return Err(client(format!(
                    "invalid inferenceAccelerators: deviceName '{}' is empty or not unique",
                    a.device_name
                )));
            }
        }

        let container_names = validate_container_names(&container_definitions)?;
        let scope = TaskScope {
            fargate,
            mode,
            task_memory,
            execution_role: non_empty(execution_role_arn.as_deref()),
            volume_names: volumes.iter().filter_map(|v| v.name.as_deref()).collect(),
            container_names: &container_names,
            accelerator_names,
        };
        for (c, name) in container_definitions.iter_mut().zip(&container_names) {
            normalize_container(c, name, &scope)?;
        }
        validate_across_containers(&container_definitions, &container_names, task_cpu, task_memory)?;
        if let Some(proxy) = &proxy_configuration {
            if !container_names.contains(&proxy.container_name) {
                return Err(client(format!(
                    "invalid proxyConfiguration: container '{}' is not defined in the task definition",
                    proxy.container_name
                )));
            }
        }

        let requires_attributes = required_attributes(
            &container_definitions,
            &volumes,
            mode,
            non_empty(task_role_arn.as_deref()),
            scope.execution_role,
        );
        let mut compatibilities = vec![Compatibility::Ec2];
        for c in Compatibility::ALL {
            if *c != Compatibility::Ec2 && requested.contains(c) {
                compatibilities.push(*c);
            }
        }

        let task_definition = TaskDefinition {
            task_definition_arn: Some(ctx.arn),
            container_definitions: Some(container_definitions),
            family: Some(family),
            task_role_arn,
            execution_role_arn,
            network_mode: Some(mode),
            revision: Some(ctx.revision),
            volumes: Some(volumes),
            status: Some(TaskDefinitionStatus::Active),
            requires_attributes: Some(requires_attributes),
            placement_constraints: Some(placement_constraints),
            compatibilities: Some(compatibilities),
            runtime_platform,
            requires_compatibilities,
            cpu: task_cpu.map(|c| c.to_string()),
            memory: task_memory.map(|m| m.to_string()),
            inference_accelerators,
            pid_mode,
            ipc_mode,
            proxy_configuration,
            registered_at: Some(ctx.registered_at),
            deregistered_at: None,
            delete_requested_at: None,
            registered_by: Some(ctx.registered_by),
            ephemeral_storage,
            enable_fault_injection,
        };
        Ok((task_definition, tags))
    }
}

fn validate_family(family: &str) -> Result<(), ApiError> {
    if family.is_empty() {
        return Err(client("family must not be empty"));
    }
    let chars = family.chars().count();
    if chars > 255 {
        return Err(client(format!("family is {chars} characters long: at most 255 are allowed")));
    }
    if !is_resource_name(family) {
        return Err(client(format!(
            "Family contains invalid characters: '{family}'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed."
        )));
    }
    Ok(())
}

/// A task-level `cpu`/`memory` string in units/MiB; a string that is not a size at all is malformed.
fn parse_task_size(value: Option<&str>, field: &str, parse: fn(&str) -> Option<u32>) -> Result<Option<u32>, ApiError> {
    match value {
        None => Ok(None),
        Some(s) => match parse(s) {
            Some(n) => Ok(Some(n)),
            None => Err(invalid(format!("Invalid '{field}' setting for task."))),
        },
    }
}

fn validate_task_size(
    cpu: Option<u32>,
    memory: Option<u32>,
    fargate: bool,
    platform: Option<&RuntimePlatform>,
) -> Result<(), ApiError> {
    if fargate {
        let Some(cpu) = cpu else {
            return Err(client("Fargate requires that 'cpu' be defined at the task level."));
        };
        let Some(memory) = memory else {
            return Err(client("Fargate requires that 'memory' be defined at the task level."));
        };
        if !fargate::is_fargate_cpu(cpu) {
            return Err(client(format!(
                "Invalid 'cpu' setting for task. {cpu} CPU units is not a Fargate task size: use 256, 512, 1024, 2048, 4096, 8192 or 16384."
            )));
        }
        if !fargate::is_valid_fargate_combination(cpu, memory) {
            return Err(client(format!(
                "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS documentation for the valid values."
            )));
        }
        let windows = platform.and_then(|p| p.operating_system_family).is_some_and(|f| f != OSFamily::Linux);
        if windows && cpu < 1024 {
            return Err(client(format!(
                "Invalid 'cpu' setting for task. Windows containers on Fargate need at least 1 vCPU (1024 units), got {cpu}."
            )));
        }
    } else {
        if let Some(cpu) = cpu {
            if !EC2_TASK_CPU_RANGE.contains(&cpu) {
                return Err(client(format!(
                    "Invalid 'cpu' setting for task. Task cpu must be between {} and {} CPU units, got {cpu}.",
                    EC2_TASK_CPU_RANGE.start(),
                    EC2_TASK_CPU_RANGE.end()
                )));
            }
        }
        if memory == Some(0) {
            return Err(client("Invalid 'memory' setting for task. Task memory must be greater than 0 MiB."));
        }
    }
    Ok(())
}

fn validate_volumes(volumes: &[Volume], fargate: bool) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for v in volumes {
        let name = v.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(client("Volume.name should not be null or empty."));
        }
        if !is_resource_name(name) {
            return Err(client(format!(
                "invalid volume name '{name}': up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed"
            )));
        }
        if !seen.insert(name) {
            return Err(client(format!("duplicate volume name '{name}': volume names must be unique")));
        }
        let kinds = [
            v.host.is_some(),
            v.docker_volume_configuration.is_some(),
            v.efs_volume_configuration.is_some(),
            v.s3files_volume_configuration.is_some(),
            v.fsx_windows_file_server_volume_configuration.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(client(format!(
                "volume '{name}': specify at most one of host, dockerVolumeConfiguration, efsVolumeConfiguration, s3filesVolumeConfiguration and fsxWindowsFileServerVolumeConfiguration"
            )));
        }
        if fargate {
            if v.host.as_ref().is_some_and(|h| non_empty(h.source_path.as_deref())) {
                return Err(client(format!(
                    "Tasks using the Fargate launch type do not support host.sourcePath (volume '{name}'): use a bind mount without sourcePath or an EFS volume."
                )));
            }
            if v.docker_volume_configuration.is_some() {
                return Err(client(format!(
                    "Tasks using the Fargate launch type do not support dockerVolumeConfiguration (volume '{name}')."
                )));
            }
        }
        if let Some(efs) = &v.efs_volume_configuration {
            validate_efs(efs, name)?;
        }
        if let Some(s3) = &v.s3files_volume_configuration {
            if s3.file_system_arn.is_empty() {
                return Err(client(format!(
                    "volume '{name}': s3filesVolumeConfiguration.fileSystemArn must not be empty"
                )));
            }
            check_port(s3.transit_encryption_port, name, "s3filesVolumeConfiguration.transitEncryptionPort")?;
        }
        if let Some(fsx) = &v.fsx_windows_file_server_volume_configuration {
            let auth = &fsx.authorization_config;
            if fsx.file_system_id.is_empty()
                || fsx.root_directory.is_empty()
                || auth.credentials_parameter.is_empty()
                || auth.domain.is_empty()
            {
                return Err(client(format!(
                    "volume '{name}': fsxWindowsFileServerVolumeConfiguration needs fileSystemId, rootDirectory, authorizationConfig.credentialsParameter and authorizationConfig.domain"
                )));
            }
        }
    }
    Ok(())
}

fn check_port(port: Option<i32>, volume: &str, field: &str) -> Result<(), ApiError> {
    match port {
        Some(p) if !(1..=65535).contains(&p) => {
            Err(client(format!("volume '{volume}': {field} {p} must be between 1 and 65535")))
        }
        _ => Ok(()),
    }
}

fn validate_efs(efs: &EFSVolumeConfiguration, name: &str) -> Result<(), ApiError> {
    if efs.file_system_id.trim().is_empty() {
        return Err(client(format!("volume '{name}': efsVolumeConfiguration.fileSystemId must not be empty")));
    }
    check_port(efs.transit_encryption_port, name, "efsVolumeConfiguration.transitEncryptionPort")?;
    let encrypted = efs.transit_encryption == Some(EFSTransitEncryption::Enabled);
    if let Some(auth) = &efs.authorization_config {
        if auth.iam == Some(EFSAuthorizationConfigIAM::Enabled) && !encrypted {
            return Err(client(format!(
                "volume '{name}': transit encryption must be ENABLED when EFS IAM authorization is used"
            )));
        }
        if non_empty(auth.access_point_id.as_deref()) {
            if !encrypted {
                return Err(client(format!(
                    "volume '{name}': transit encryption must be ENABLED when an EFS access point is used"
                )));
            }
            if efs.root_directory.as_deref().is_some_and(|r| r != "/") {
                return Err(client(format!(
                    "volume '{name}': rootDirectory must be omitted or '/' when an EFS access point is used"
                )));
            }
        }
    }
    Ok(())
}

fn validate_placement_constraints(
    constraints: &[TaskDefinitionPlacementConstraint],
    fargate: bool,
) -> Result<(), ApiError> {
    if fargate && !constraints.is_empty() {
        return Err(fargate_unsupported("placementConstraints", None));
    }
    for c in constraints {
        if c.r#type == Some(TaskDefinitionPlacementConstraintType::MemberOf) && !non_empty(c.expression.as_deref()) {
            return Err(client("invalid placementConstraints: a memberOf constraint needs an expression"));
        }
    }
    Ok(())
}

/// Checks the count, presence, format and uniqueness of container names; returns them in order.
fn validate_container_names(containers: &[ContainerDefinition]) -> Result<Vec<String>, ApiError> {
    if containers.is_empty() {
        return Err(client("Container list cannot be empty."));
    }
    if containers.len() > MAX_CONTAINERS {
        return Err(client(format!(
            "too many containers: a task definition can have at most {MAX_CONTAINERS} container definitions, got {}",
            containers.len()
        )));
    }
    let mut names: Vec<String> = Vec::with_capacity(containers.len());
    for c in containers {
        let name = c.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(client("Container.name should not be null or empty."));
        }
        if !is_resource_name(name) {
            return Err(client(format!(
                "invalid container name '{name}': up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed"
            )));
        }
        if names.iter().any(|n| n == name) {
            return Err(client(format!(
                "duplicate container name '{name}': container names must be unique within a task definition"
            )));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Validates one container and fills the defaults ECS fills.
fn normalize_container(c: &mut ContainerDefinition, name: &str, scope: &TaskScope<'_>) -> Result<(), ApiError> {
    validate_image(c.image.as_deref(), name)?;
    c.essential.get_or_insert(true);

    let cpu = *c.cpu.get_or_insert(0);
    if cpu < 0 {
        return Err(client(format!("invalid 'cpu' {cpu} for container '{name}': must not be negative")));
    }
    validate_container_memory(c, name, scope.task_memory)?;
    if scope.fargate {
        reject_fargate_container_parameters(c, name)?;
    }
    validate_networking(c, name, scope)?;
    normalize_port_mappings(c, name, scope.mode)?;
    if let Some(lp) = &c.linux_parameters {
        validate_linux_parameters(lp, name, scope.fargate)?;
    }
    if let Some(ulimits) = &c.ulimits {
        validate_ulimits(ulimits, name, scope.fargate)?;
    }
    if let Some(hc) = &mut c.health_check {
        normalize_health_check(hc, name)?;
    }
    if let Some(lc) = &c.log_configuration {
        validate_log_configuration(lc, name, scope.fargate, scope.execution_role)?;
    }
    validate_timeouts(c, name, scope.fargate)?;
    if let Some(rp) = &c.restart_policy {
        if let Some(period) = rp.restart_attempt_period {
            if !(60..=1800).contains(&period) {
                return Err(client(format!(
                    "invalid restartPolicy.restartAttemptPeriod {period} for container '{name}': must be between 60 and 1800 seconds"
                )));
            }
        }
        if rp.ignored_exit_codes.as_ref().is_some_and(|codes| codes.len() > 50) {
            return Err(client(format!(
                "invalid restartPolicy for container '{name}': at most 50 ignoredExitCodes are allowed"
            )));
        }
    }
    validate_environment(c, name)?;
    validate_mounts(c, name, scope)?;
    validate_resource_requirements(c, name, scope)?;
    if c.credential_specs.as_ref().is_some_and(|s| s.len() > 1) {
        return Err(client(format!("invalid credentialSpecs for container '{name}': at most 1 is allowed")));
    }
    for sc in c.system_controls.iter().flatten() {
        if !non_empty(sc.namespace.as_deref()) {
            return Err(client(format!("invalid systemControls for container '{name}': namespace must not be empty")));
        }
    }

    c.port_mappings.get_or_insert_with(Vec::new);
    c.environment.get_or_insert_with(Vec::new);
    c.mount_points.get_or_insert_with(Vec::new);
    c.volumes_from.get_or_insert_with(Vec::new);
    c.system_controls.get_or_insert_with(Vec::new);
    Ok(())
}

/// `image`: required; `repository-url/image:tag` up to 255 characters of letters, digits, `-_:./#`, or
/// `repository-url/image@sha256:<64 hex digits>` with the 255-character limit before the `@`.
fn validate_image(image: Option<&str>, name: &str) -> Result<(), ApiError> {
    let image = image.unwrap_or_default();
    if image.trim().is_empty() {
        return Err(client("Container.image should not be null or empty."));
    }
    let (reference, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if reference.is_empty() || reference.len() > 255 {
        return Err(invalid(format!(
            "invalid image '{image}' for container '{name}': the repository and tag must be 1 to 255 characters long"
        )));
    }
    if let Some(bad) =
        reference.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | '/' | '#')))
    {
        return Err(invalid(format!(
            "invalid image '{image}' for container '{name}': character {bad:?} is not allowed"
        )));
    }
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!(
                "invalid image '{image}' for container '{name}': a digest must be sha256: followed by 64 hexadecimal characters"
            )));
        }
    }
    Ok(())
}

fn validate_container_memory(c: &ContainerDefinition, name: &str, task_memory: Option<u32>) -> Result<(), ApiError> {
    for (field, value) in [("memory", c.memory), ("memoryReservation", c.memory_reservation)] {
        if let Some(v) = value {
            if v <= 0 {
                return Err(client(format!(
                    "Invalid setting for container '{name}'. '{field}' must be greater than 0 MiB, got {v}."
                )));
            }
            if let Some(task) = task_memory {
                if i64::from(v) > i64::from(task) {
                    return Err(client(format!(
                        "Invalid setting for container '{name}'. '{field}' ({v} MiB) must not exceed the task memory ({task} MiB)."
                    )));
                }
            }
        }
    }
    if let (Some(memory), Some(reservation)) = (c.memory, c.memory_reservation) {
        if reservation > memory {
            return Err(client(format!(
                "Invalid setting for container '{name}'. 'memory' ({memory} MiB) must be greater than or equal to 'memoryReservation' ({reservation} MiB)."
            )));
        }
    }
    if task_memory.is_none() && c.memory.is_none() && c.memory_reservation.is_none() {
        return Err(client(format!(
            "Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."
        )));
    }
    Ok(())
}

/// The container parameters AWS-PROTOCOLS §6.2 lists as invalid on Fargate.
fn reject_fargate_container_parameters(c: &ContainerDefinition, name: &str) -> Result<(), ApiError> {
    let set = |l: &Option<Vec<String>>| l.as_ref().is_some_and(|l| !l.is_empty());
    let checks: [(&str, bool); 7] = [
        ("privileged", c.privileged == Some(true)),
        ("disableNetworking", c.disable_networking == Some(true)),
        ("dnsServers", set(&c.dns_servers)),
        ("dnsSearchDomains", set(&c.dns_search_domains)),
        ("dockerSecurityOptions", set(&c.docker_security_options)),
        ("extraHosts", c.extra_hosts.as_ref().is_some_and(|l| !l.is_empty())),
        ("links", set(&c.links)),
    ];
    if let Some((what, _)) = checks.iter().find(|(_, present)| *present) {
        return Err(fargate_unsupported(what, Some(name)));
    }
    let gpu = c.resource_requirements.iter().flatten().any(|r| r.r#type == ResourceType::Gpu);
    if gpu {
        return Err(fargate_unsupported("GPU resource requirements", Some(name)));
    }
    Ok(())
}

fn validate_networking(c: &ContainerDefinition, name: &str, scope: &TaskScope<'_>) -> Result<(), ApiError> {
    if scope.mode == NetworkMode::Awsvpc && non_empty(c.hostname.as_deref()) {
        return Err(client(format!(
            "hostname is not supported on container when networkMode=awsvpc (container '{name}')."
        )));
    }
    if scope.mode == NetworkMode::Awsvpc && c.extra_hosts.as_ref().is_some_and(|h| !h.is_empty()) {
        return Err(client(format!(
            "extraHosts is not supported on container when networkMode=awsvpc (container '{name}')."
        )));
    }
    for h in c.extra_hosts.iter().flatten() {
        if h.hostname.is_empty() || h.ip_address.is_empty() {
            return Err(client(format!(
                "invalid extraHosts for container '{name}': hostname and ipAddress must not be empty"
            )));
        }
    }
    let links = c.links.as_deref().unwrap_or_default();
    if !links.is_empty() && scope.mode != NetworkMode::Bridge {
        return Err(client(format!(
            "links are only supported when networkMode=bridge, not {} (container '{name}').",
            scope.mode
        )));
    }
    for link in links {
        let target = link.split_once(':').map_or(link.as_str(), |(t, _)| t);
        if target == name || !scope.container_names.iter().any(|n| n == target) {
            return Err(client(format!(
                "invalid link '{link}' in container '{name}': it must name another container of the task definition"
            )));
        }
    }
    Ok(())
}

/// Port mappings: defaults (`protocol` tcp, `hostPort` = `containerPort` for awsvpc/host, 0 for bridge),
/// port ranges, and no port in two mappings of one container.
fn normalize_port_mappings(c: &mut ContainerDefinition, name: &str, mode: NetworkMode) -> Result<(), ApiError> {
    let Some(mappings) = &mut c.port_mappings else {
        return Ok(());
    };
    if mode == NetworkMode::None && !mappings.is_empty() {
        return Err(client(format!("port mappings are not supported when networkMode=none (container '{name}').")));
    }
    let mut used: Vec<(i32, i32, TransportProtocol)> = Vec::new();
    let mut ranges = 0;
    for pm in mappings.iter_mut() {
        let protocol = *pm.protocol.get_or_insert(TransportProtocol::Tcp);
        if let Some(range) = pm.container_port_range.as_deref() {
            if pm.container_port.is_some() {
                return Err(client(format!(
                    "invalid port mapping in container '{name}': specify either containerPort or containerPortRange, not both"
                )));
            }
            if pm.host_port.is_some() {
                return Err(client(format!(
                    "invalid port mapping in container '{name}': hostPort must be omitted when containerPortRange is set"
                )));
            }
            if !matches!(mode, NetworkMode::Bridge | NetworkMode::Awsvpc) {
                return Err(client(format!(
                    "containerPortRange is only supported when networkMode=bridge or awsvpc, not {mode} (container '{name}')."
                )));
            }
            let (first, last) = parse_port_range(range).ok_or_else(|| {
                invalid(format!(
                    "invalid containerPortRange '{range}' in container '{name}': expected 'first-last' with ports from 1 to 65535 and first < last"
                ))
            })?;
            ranges += 1;
            used.push((first, last, protocol));
        } else {
            let Some(port) = pm.container_port else {
                return Err(client(format!(
                    "invalid port mapping in container '{name}': containerPort or containerPortRange is required"
                )));
            };
            if !(1..=65535).contains(&port) {
                return Err(client(format!(
                    "invalid containerPort {port} in container '{name}': must be between 1 and 65535"
                )));
            }
            match mode {
                NetworkMode::Awsvpc | NetworkMode::Host => match pm.host_port {
                    None => pm.host_port = Some(port),
                    Some(h) if h == port => {}
                    Some(_) => {
                        return Err(client(format!(
                            "When networkMode={mode}, the host ports and container ports in port mappings must match."
                        )))
                    }
                },
                _ => {
                    let host = *pm.host_port.get_or_insert(0);
                    if !(0..=65535).contains(&host) {
                        return Err(client(format!(
                            "invalid hostPort {host} in container '{name}': must be between 0 and 65535"
                        )));
                    }
                }
            }
            used.push((port, port, protocol));
        }
        if let Some(port_name) = pm.name.as_deref() {
            validate_port_name(port_name, name)?;
        }
    }
    if ranges > 100 {
        return Err(client(format!(
            "too many containerPortRange mappings in container '{name}': at most 100 are allowed"
        )));
    }
    for (i, (a_first, a_last, a_proto)) in used.iter().enumerate() {
        for (b_first, b_last, b_proto) in &used[..i] {
            if a_proto == b_proto && a_first <= b_last && b_first <= a_last {
                let port = (*a_first).max(*b_first);
                return Err(client(format!(
                    "port {port}/{a_proto} appears in more than one port mapping of container '{name}'"
                )));
            }
        }
    }
    Ok(())
}

/// `"first-last"`, both ports in 1–65535, first < last.
fn parse_port_range(s: &str) -> Option<(i32, i32)> {
    let (a, b) = s.split_once('-')?;
    let port = |p: &str| -> Option<i32> {
        let p = p.trim();
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<i32>().ok().filter(|n| (1..=65535).contains(n))
    };
    let (first, last) = (port(a)?, port(b)?);
    (first < last).then_some((first, last))
}

/// A port mapping name: up to 64 lowercase letters, digits, underscores and hyphens, not starting with a hyphen.
fn validate_port_name(port_name: &str, name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&port_name.len())
        && !port_name.starts_with('-')
        && port_name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid port mapping name '{port_name}' in container '{name}': up to 64 lowercase letters, numbers, underscores and hyphens, not starting with a hyphen"
        )))
    }
}

fn validate_linux_parameters(lp: &LinuxParameters, name: &str, fargate: bool) -> Result<(), ApiError> {
    if let Some(caps) = &lp.capabilities {
        for (field, list) in [("add", &caps.add), ("drop", &caps.drop)] {
            for cap in list.iter().flatten() {
                let upper = cap.to_ascii_uppercase();
                let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
                if !CAPABILITIES.contains(&bare) {
                    return Err(client(format!(
                        "invalid linuxParameters.capabilities.{field} value '{cap}' in container '{name}': not a Linux capability ECS supports"
                    )));
                }
                if fargate && field == "add" && bare != "SYS_PTRACE" {
                    return Err(client(format!(
                        "Tasks using the Fargate launch type only support adding the SYS_PTRACE kernel capability, not '{cap}' (container '{name}')."
                    )));
                }
            }
        }
    }
    if fargate {
        let unsupported: [(&str, bool); 5] = [
            ("linuxParameters.devices", lp.devices.as_ref().is_some_and(|d| !d.is_empty())),
            ("linuxParameters.sharedMemorySize", lp.shared_memory_size.is_some()),
            ("linuxParameters.tmpfs", lp.tmpfs.as_ref().is_some_and(|t| !t.is_empty())),
            ("linuxParameters.maxSwap", lp.max_swap.is_some()),
            ("linuxParameters.swappiness", lp.swappiness.is_some()),
        ];
        if let Some((what, _)) = unsupported.iter().find(|(_, present)| *present) {
            return Err(fargate_unsupported(what, Some(name)));
        }
    }
    if let Some(v) = lp.max_swap.filter(|v| *v < 0) {
        return Err(client(format!(
            "invalid linuxParameters.maxSwap {v} in container '{name}': must be 0 or a positive number of MiB"
        )));
    }
    if let Some(v) = lp.swappiness.filter(|v| !(0..=100).contains(v)) {
        return Err(client(format!(
            "invalid linuxParameters.swappiness {v} in container '{name}': must be between 0 and 100"
        )));
    }
    if let Some(v) = lp.shared_memory_size.filter(|v| *v <= 0) {
        return Err(client(format!(
            "invalid linuxParameters.sharedMemorySize {v} in container '{name}': must be a positive number of MiB"
        )));
    }
    for t in lp.tmpfs.iter().flatten() {
        if t.container_path.is_empty() || t.size <= 0 {
            return Err(client(format!(
                "invalid linuxParameters.tmpfs in container '{name}': containerPath must not be empty and size must be a positive number of MiB"
            )));
        }
    }
    for d in lp.devices.iter().flatten() {
        if d.host_path.is_empty() {
            return Err(client(format!(
                "invalid linuxParameters.devices in container '{name}': hostPath must not be empty"
            )));
        }
    }
    Ok(())
}

fn validate_ulimits(ulimits: &[Ulimit], name: &str, fargate: bool) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for u in ulimits {
        let limit = u.name;
        if !seen.insert(limit) {
            return Err(client(format!("ulimit '{limit}' is set more than once in container '{name}'")));
        }
        // -1 means unlimited (e.g. memlock for Elasticsearch); other negative values mean nothing.
        if u.soft_limit < -1 || u.hard_limit < -1 {
            return Err(client(format!(
                "invalid ulimit '{limit}' in container '{name}': limits must be -1 (unlimited) or greater"
            )));
        }
        let as_bound = |v: i32| if v == -1 { i64::MAX } else { i64::from(v) };
        if as_bound(u.soft_limit) > as_bound(u.hard_limit) {
            return Err(client(format!(
                "invalid ulimit '{limit}' in container '{name}': softLimit ({}) must not exceed hardLimit ({})",
                u.soft_limit, u.hard_limit
            )));
        }
        if fargate && limit == UlimitName::Nofile && as_bound(u.hard_limit) > i64::from(FARGATE_MAX_NOFILE) {
            return Err(client(format!(
                "invalid ulimit 'nofile' in container '{name}': the hardLimit on Fargate is at most {FARGATE_MAX_NOFILE}"
            )));
        }
    }
    Ok(())
}

/// Health check: `command` starting with CMD or CMD-SHELL (or `["NONE"]`), ranges, and the defaults ECS
/// returns (interval 30, timeout 5, retries 3; `startPeriod` stays unset).
fn normalize_health_check(hc: &mut HealthCheck, name: &str) -> Result<(), ApiError> {
    let first = hc.command.first().map(String::as_str);
    let valid_command = match first {
        Some("CMD") | Some("CMD-SHELL") => {
            hc.command.len() >= 2 && hc.command[1..].iter().any(|a| !a.trim().is_empty())
        }
        Some("NONE") => hc.command.len() == 1,
        _ => false,
    };
    if !valid_command {
        return Err(client(format!(
            "invalid healthCheck.command for container '{name}': it must start with CMD or CMD-SHELL followed by the command to run (or be [\"NONE\"])"
        )));
    }
    let interval = *hc.interval.get_or_insert(DEFAULT_HEALTH_CHECK_INTERVAL);
    let timeout = *hc.timeout.get_or_insert(DEFAULT_HEALTH_CHECK_TIMEOUT);
    let retries = *hc.retries.get_or_insert(DEFAULT_HEALTH_CHECK_RETRIES);
    let checks = [
        ("interval", interval, 5, 300),
        ("timeout", timeout, 2, 60),
        ("retries", retries, 1, 10),
        ("startPeriod", hc.start_period.unwrap_or(0), 0, 300),
    ];
    for (field, value, min, max) in checks {
        if !(min..=max).contains(&value) {
            return Err(client(format!(
                "invalid healthCheck.{field} {value} for container '{name}': must be between {min} and {max}"
            )));
        }
    }
    Ok(())
}

fn validate_log_configuration(
    lc: &LogConfiguration,
    name: &str,
    fargate: bool,
    execution_role: bool,
) -> Result<(), ApiError> {
    let driver = lc.log_driver;
    if fargate && !matches!(driver, LogDriver::Awslogs | LogDriver::Splunk | LogDriver::Awsfirelens) {
        return Err(client(format!(
            "log driver '{driver}' of container '{name}' is not supported on Fargate: use awslogs, splunk or awsfirelens"
        )));
    }
    if driver == LogDriver::Awslogs {
        let mut required = vec!["awslogs-group", "awslogs-region"];
        if fargate {
            required.push("awslogs-stream-prefix");
        }
        for option in required {
            if !non_empty(lc.option(option)) {
                let on = if option == "awslogs-stream-prefix" { " on Fargate" } else { "" };
                return Err(client(format!(
                    "container '{name}': the awslogs log driver requires the '{option}' option{on}"
                )));
            }
        }
        if fargate && !execution_role {
            return Err(client(
                "Fargate requires task definition to have execution role ARN to support log driver awslogs.",
            ));
        }
    }
    for s in lc.secret_options.iter().flatten() {
        if s.name.is_empty() || s.value_from.is_empty() {
            return Err(client(format!(
                "invalid logConfiguration.secretOptions in container '{name}': name and valueFrom must not be empty"
            )));
        }
    }
    Ok(())
}

/// `startTimeout`/`stopTimeout`: not negative; 2–120 seconds on Fargate (the model's documented range).
fn validate_timeouts(c: &ContainerDefinition, name: &str, fargate: bool) -> Result<(), ApiError> {
    for (field, value) in [("startTimeout", c.start_timeout), ("stopTimeout", c.stop_timeout)] {
        let Some(v) = value else { continue };
        if v < 0 {
            return Err(client(format!("invalid {field} {v} for container '{name}': must not be negative")));
        }
        if fargate && !(2..=120).contains(&v) {
            return Err(client(format!(
                "invalid {field} {v} for container '{name}': tasks using the Fargate launch type accept 2 to 120 seconds"
            )));
        }
    }
    Ok(())
}

fn validate_environment(c: &ContainerDefinition, name: &str) -> Result<(), ApiError> {
    for kv in c.environment.iter().flatten() {
        if !non_empty(kv.name.as_deref()) {
            return Err(client(format!("invalid environment in container '{name}': variable names must not be empty")));
        }
    }
    let files = c.environment_files.as_deref().unwrap_or_default();
    if files.len() > 10 {
        return Err(client(format!("invalid environmentFiles in container '{name}': at most 10 files are allowed")));
    }
    if files.iter().any(|f| f.value.trim().is_empty()) {
        return Err(client(format!(
            "invalid environmentFiles in container '{name}': value must be the ARN of an S3 object"
        )));
    }
    for s in c.secrets.iter().flatten() {
        if s.name.is_empty() || s.value_from.is_empty() {
            return Err(client(format!("invalid secrets in container '{name}': name and valueFrom must not be empty")));
        }
    }
    Ok(())
}

fn validate_mounts(c: &ContainerDefinition, name: &str, scope: &TaskScope<'_>) -> Result<(), ApiError> {
    for mp in c.mount_points.iter().flatten() {
        let volume = mp.source_volume.as_deref().unwrap_or_default();
        if !scope.volume_names.contains(volume) {
            return Err(client(format!(
                "invalid mountPoints in container '{name}': sourceVolume '{volume}' is not a volume of the task definition"
            )));
        }
        if !non_empty(mp.container_path.as_deref()) {
            return Err(client(format!(
                "invalid mountPoints in container '{name}': containerPath must not be empty (volume '{volume}')"
            )));
        }
    }
    for vf in c.volumes_from.iter().flatten() {
        let source = vf.source_container.as_deref().unwrap_or_default();
        if source == name || !scope.container_names.iter().any(|n| n == source) {
            return Err(client(format!(
                "invalid volumesFrom in container '{name}': sourceContainer '{source}' must be another container of the task definition"
            )));
        }
    }
    Ok(())
}

fn validate_resource_requirements(c: &ContainerDefinition, name: &str, scope: &TaskScope<'_>) -> Result<(), ApiError> {
    for r in c.resource_requirements.iter().flatten() {
        match r.r#type {
            ResourceType::Gpu => {
                if !r.value.parse::<u32>().is_ok_and(|n| n > 0) {
                    return Err(client(format!(
                        "invalid GPU resource requirement '{}' in container '{name}': must be a positive whole number",
                        r.value
                    )));
                }
            }
            ResourceType::InferenceAccelerator => {
                if !scope.accelerator_names.contains(r.value.as_str()) {
                    return Err(client(format!(
                        "invalid InferenceAccelerator resource requirement '{}' in container '{name}': no inferenceAccelerators entry has that deviceName",
                        r.value
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Rules that span containers: an essential container, `dependsOn`, cpu/memory totals, host ports, port
/// mapping names and FireLens.
fn validate_across_containers(
    containers: &[ContainerDefinition],
    names: &[String],
    task_cpu: Option<u32>,
    task_memory: Option<u32>,
) -> Result<(), ApiError> {
    if !containers.iter().any(ContainerDefinition::is_essential) {
        return Err(client("task definition must have at least one essential container"));
    }
    validate_dependencies(containers, names)?;

    if let Some(task_cpu) = task_cpu {
        let total: i64 = containers.iter().map(|c| i64::from(c.cpu.unwrap_or(0))).sum();
        if total > i64::from(task_cpu) {
            return Err(client(format!(
                "Invalid 'cpu' setting for task. The containers reserve {total} CPU units in total, more than the task cpu ({task_cpu})."
            )));
        }
    }
    if let Some(task_memory) = task_memory {
        let total: i64 = containers.iter().map(|c| i64::from(c.memory_reservation.or(c.memory).unwrap_or(0))).sum();
        if total > i64::from(task_memory) {
            return Err(client(format!(
                "Invalid 'memory' setting for task. The containers reserve {total} MiB in total, more than the task memory ({task_memory} MiB)."
            )));
        }
    }

    let mut host_ports: HashMap<(i32, TransportProtocol), &str> = HashMap::new();
    let mut port_names: HashMap<&str, &str> = HashMap::new();
    for (c, name) in containers.iter().zip(names) {
        for pm in c.port_mappings.iter().flatten() {
            let protocol = pm.protocol.unwrap_or(TransportProtocol::Tcp);
            if let Some(host) = pm.host_port.filter(|h| *h != 0) {
                if let Some(other) = host_ports.insert((host, protocol), name) {
                    return Err(client(format!(
                        "host port {host}/{protocol} is mapped by both container '{other}' and container '{name}'"
                    )));
                }
            }
            if let Some(port_name) = pm.name.as_deref() {
                if let Some(other) = port_names.insert(port_name, name) {
                    return Err(client(format!(
                        "port mapping name '{port_name}' is used more than once (containers '{other}' and '{name}'): port mapping names must be unique in a task definition"
                    )));
                }
            }
        }
    }

    let has_router = containers.iter().any(|c| c.firelens_configuration.is_some());
    for (c, name) in containers.iter().zip(names) {
        if c.log_configuration.as_ref().is_some_and(|l| l.log_driver == LogDriver::Awsfirelens) && !has_router {
            return Err(client(format!(
                "container '{name}' uses the awsfirelens log driver, but no container of the task definition has a firelensConfiguration"
            )));
        }
    }
    Ok(())
}

fn validate_dependencies(containers: &[ContainerDefinition], names: &[String]) -> Result<(), ApiError> {
    let index = |n: &str| names.iter().position(|x| x == n);
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); containers.len()];
    for (i, c) in containers.iter().enumerate() {
        let name = &names[i];
        for d in c.depends_on.iter().flatten() {
            let target_name = d.container_name.as_str();
            let Some(t) = index(target_name) else {
                return Err(client(format!(
                    "container '{name}' depends on container '{target_name}', which is not defined in the task definition"
                )));
            };
            if t == i {
                return Err(client(format!("container '{name}' cannot depend on itself")));
            }
            let target = &containers[t];
            match d.condition {
                ContainerCondition::Complete | ContainerCondition::Success if target.is_essential() => {
                    return Err(client(format!(
                        "container '{name}' depends on essential container '{target_name}' with condition {}: COMPLETE and SUCCESS can only be used with non-essential containers",
                        d.condition
                    )));
                }
                ContainerCondition::Healthy if target.health_check.is_none() => {
                    return Err(client(format!(
                        "container '{name}' depends on container '{target_name}' with condition HEALTHY, but '{target_name}' has no healthCheck"
                    )));
                }
                _ => {}
            }
            edges[i].push(t);
        }
    }
    // Depth-first search for a cycle; `path` is the current chain for the message.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(n: usize, edges: &[Vec<usize>], marks: &mut [Mark], path: &mut Vec<usize>) -> Option<Vec<usize>> {
        marks[n] = Mark::Active;
        path.push(n);
        for &m in &edges[n] {
            match marks[m] {
                Mark::Active => {
                    let start = path.iter().position(|p| *p == m).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(m);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(m, edges, marks, path) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[n] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; containers.len()];
    for start in 0..containers.len() {
        if marks[start] == Mark::New {
            if let Some(cycle) = visit(start, &edges, &mut marks, &mut Vec::new()) {
                let chain: Vec<&str> = cycle.iter().map(|i| names[*i].as_str()).collect();
                return Err(client(format!("container dependencies form a cycle: {}", chain.join(" -> "))));
            }
        }
    }
    Ok(())
}

/// The order ECS lists `requiresAttributes` in, as observed in RegisterTaskDefinition responses of
/// 2022–2025 (ECS iterates a set, so the order is stable but not meaningful).
const ATTRIBUTE_ORDER: &[&str] = &[
    "com.amazonaws.ecs.capability.logging-driver.awslogs",
    "com.amazonaws.ecs.capability.logging-driver.splunk",
    "com.amazonaws.ecs.capability.logging-driver.json-file",
    "com.amazonaws.ecs.capability.logging-driver.syslog",
    "com.amazonaws.ecs.capability.logging-driver.journald",
    "com.amazonaws.ecs.capability.logging-driver.gelf",
    "com.amazonaws.ecs.capability.logging-driver.fluentd",
    "ecs.capability.execution-role-awslogs",
    "ecs.capability.efsAuth",
    "com.amazonaws.ecs.capability.ecr-auth",
    "com.amazonaws.ecs.capability.docker-remote-api.1.19",
    "com.amazonaws.ecs.capability.logging-driver.awsfirelens",
    "ecs.capability.efs",
    "com.amazonaws.ecs.capability.task-iam-role",
    "ecs.capability.container-ordering",
    "com.amazonaws.ecs.capability.docker-remote-api.1.25",
    "ecs.capability.firelens.fluentd",
    "ecs.capability.firelens.fluentbit",
    "ecs.capability.execution-role-ecr-pull",
    "ecs.capability.secrets.ssm.environment-variables",
    "ecs.capability.secrets.asm.environment-variables",
    "ecs.capability.env-files.s3",
    "ecs.capability.container-health-check",
    "com.amazonaws.ecs.capability.privileged-container",
    "com.amazonaws.ecs.capability.docker-remote-api.1.18",
    "ecs.capability.task-eni",
    "com.amazonaws.ecs.capability.docker-remote-api.1.29",
];

/// `ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn]/…`: an image ECS pulls with ECR credentials.
fn is_ecr_image(image: &str) -> bool {
    let Some((host, _)) = image.split_once('/') else {
        return false;
    };
    let labels: Vec<&str> = host.split('.').collect();
    let suffix_ok = match labels.len() {
        6 => true,
        7 => labels[6] == "cn",
        _ => false,
    };
    suffix_ok
        && labels[0].len() == 12
        && labels[0].bytes().all(|b| b.is_ascii_digit())
        && labels[1] == "dkr"
        && (labels[2] == "ecr" || labels[2] == "ecr-fips")
        && !labels[3].is_empty()
        && labels[4] == "amazonaws"
        && labels[5] == "com"
}

/// The container-instance attributes the task definition needs, as ECS computes `requiresAttributes`.
fn required_attributes(
    containers: &[ContainerDefinition],
    volumes: &[Volume],
    mode: NetworkMode,
    task_role: bool,
    execution_role: bool,
) -> Vec<Attribute> {
    let mut need: HashSet<String> = HashSet::new();
    let mut add = |s: &str| {
        need.insert(s.to_string());
    };
    add("com.amazonaws.ecs.capability.docker-remote-api.1.18");
    if mode == NetworkMode::Awsvpc {
        add("ecs.capability.task-eni");
    }
    if task_role {
        add("com.amazonaws.ecs.capability.task-iam-role");
    }
    for c in containers {
        if let Some(lc) = &c.log_configuration {
            add(&format!("com.amazonaws.ecs.capability.logging-driver.{}", lc.log_driver));
            add("com.amazonaws.ecs.capability.docker-remote-api.1.19");
            if lc.log_driver == LogDriver::Awslogs && execution_role {
                add("ecs.capability.execution-role-awslogs");
            }
        }
        if c.image.as_deref().is_some_and(is_ecr_image) {
            add("com.amazonaws.ecs.capability.ecr-auth");
            if execution_role {
                add("ecs.capability.execution-role-ecr-pull");
            }
        }
        if c.depends_on.as_ref().is_some_and(|d| !d.is_empty()) {
            add("ecs.capability.container-ordering");
        }
        if c.linux_parameters.as_ref().and_then(|lp| lp.init_process_enabled) == Some(true) {
            add("com.amazonaws.ecs.capability.docker-remote-api.1.25");
        }
        if let Some(fc) = &c.firelens_configuration {
            add(&format!("ecs.capability.firelens.{}", fc.r#type));
        }
        for s in c.secrets.iter().flatten() {
            if s.value_from.contains(":secretsmanager:") {
                add("ecs.capability.secrets.asm.environment-variables");
            } else {
                add("ecs.capability.secrets.ssm.environment-variables");
            }
        }
        if c.environment_files.as_ref().is_some_and(|f| !f.is_empty()) {
            add("ecs.capability.env-files.s3");
        }
        if let Some(hc) = &c.health_check {
            add("ecs.capability.container-health-check");
            if hc.start_period.is_some() {
                add("com.amazonaws.ecs.capability.docker-remote-api.1.29");
            }
        }
        if c.privileged == Some(true) {
            add("com.amazonaws.ecs.capability.privileged-container");
        }
    }
    for v in volumes {
        if let Some(efs) = &v.efs_volume_configuration {
            add("ecs.capability.efs");
            if efs.authorization_config.is_some() {
                add("ecs.capability.efsAuth");
            }
        }
    }
    ATTRIBUTE_ORDER.iter().filter(|a| need.contains(**a)).map(|a| Attribute::named(*a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const C: &str = "ClientException";
    const I: &str = "InvalidParameterException";
    const EXEC_ROLE: &str = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole";
    const TASK_ROLE: &str = "arn:aws:iam::123456789012:role/app";
    const ECR_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.0";

    /// Every member of `RegisterTaskDefinitionRequest`, recursively, generated from botocore's ECS model.
    const FULL_REQUEST: &str = r#"{"family":"s","taskRoleArn":"s","executionRoleArn":"s","networkMode":"none","containerDefinitions":[{"name":"s","image":"s","repositoryCredentials":{"credentialsParameter":"s"},"cpu":7,"memory":7,"memoryReservation":7,"links":["s"],"portMappings":[{"containerPort":7,"hostPort":7,"protocol":"udp","name":"s","appProtocol":"grpc","containerPortRange":"s"}],"essential":true,"restartPolicy":{"enabled":true,"ignoredExitCodes":[7],"restartAttemptPeriod":7},"entryPoint":["s"],"command":["s"],"environment":[{"name":"s","value":"s"}],"environmentFiles":[{"value":"s","type":"s3"}],"mountPoints":[{"sourceVolume":"s","containerPath":"s","readOnly":true}],"volumesFrom":[{"sourceContainer":"s","readOnly":true}],"linuxParameters":{"capabilities":{"add":["s"],"drop":["s"]},"devices":[{"hostPath":"s","containerPath":"s","permissions":["mknod"]}],"initProcessEnabled":true,"sharedMemorySize":7,"tmpfs":[{"containerPath":"s","size":7,"mountOptions":["s"]}],"maxSwap":7,"swappiness":7},"secrets":[{"name":"s","valueFrom":"s"}],"dependsOn":[{"containerName":"s","condition":"HEALTHY"}],"startTimeout":7,"stopTimeout":7,"versionConsistency":"disabled","hostname":"s","user":"s","workingDirectory":"s","disableNetworking":true,"privileged":true,"readonlyRootFilesystem":true,"dnsServers":["s"],"dnsSearchDomains":["s"],"extraHosts":[{"hostname":"s","ipAddress":"s"}],"dockerSecurityOptions":["s"],"interactive":true,"pseudoTerminal":true,"dockerLabels":{"k":"s"},"ulimits":[{"name":"stack","softLimit":7,"hardLimit":7}],"logConfiguration":{"logDriver":"awsfirelens","options":{"k":"s"},"secretOptions":[{"name":"s","valueFrom":"s"}]},"healthCheck":{"command":["s"],"interval":7,"timeout":7,"retries":7,"startPeriod":7},"systemControls":[{"namespace":"s","value":"s"}],"resourceRequirements":[{"value":"s","type":"InferenceAccelerator"}],"firelensConfiguration":{"type":"fluentbit","options":{"k":"s"}},"credentialSpecs":["s"]}],"volumes":[{"name":"s","host":{"sourcePath":"s"},"dockerVolumeConfiguration":{"scope":"shared","autoprovision":true,"driver":"s","driverOpts":{"k":"s"},"labels":{"k":"s"}},"efsVolumeConfiguration":{"fileSystemId":"s","rootDirectory":"s","transitEncryption":"DISABLED","transitEncryptionPort":7,"authorizationConfig":{"accessPointId":"s","iam":"DISABLED"}},"s3filesVolumeConfiguration":{"fileSystemArn":"s","rootDirectory":"s","transitEncryptionPort":7,"accessPointArn":"s"},"fsxWindowsFileServerVolumeConfiguration":{"fileSystemId":"s","rootDirectory":"s","authorizationConfig":{"credentialsParameter":"s","domain":"s"}},"configuredAtLaunch":true}],"placementConstraints":[{"type":"memberOf","expression":"s"}],"requiresCompatibilities":["MANAGED_INSTANCES"],"cpu":"s","memory":"s","tags":[{"key":"s","value":"s"}],"pidMode":"task","ipcMode":"none","proxyConfiguration":{"type":"APPMESH","containerName":"s","properties":[{"name":"s","value":"s"}]},"inferenceAccelerators":[{"deviceName":"s","deviceType":"s"}],"ephemeralStorage":{"sizeInGiB":7},"runtimePlatform":{"cpuArchitecture":"ARM64","operatingSystemFamily":"LINUX"},"enableFaultInjection":true}"#;

    /// Every member of `TaskDefinition`, recursively, generated from botocore's ECS model.
    const FULL_TASK_DEFINITION: &str = r#"{"taskDefinitionArn":"s","containerDefinitions":[{"name":"s","image":"s","repositoryCredentials":{"credentialsParameter":"s"},"cpu":7,"memory":7,"memoryReservation":7,"links":["s"],"portMappings":[{"containerPort":7,"hostPort":7,"protocol":"udp","name":"s","appProtocol":"grpc","containerPortRange":"s"}],"essential":true,"restartPolicy":{"enabled":true,"ignoredExitCodes":[7],"restartAttemptPeriod":7},"entryPoint":["s"],"command":["s"],"environment":[{"name":"s","value":"s"}],"environmentFiles":[{"value":"s","type":"s3"}],"mountPoints":[{"sourceVolume":"s","containerPath":"s","readOnly":true}],"volumesFrom":[{"sourceContainer":"s","readOnly":true}],"linuxParameters":{"capabilities":{"add":["s"],"drop":["s"]},"devices":[{"hostPath":"s","containerPath":"s","permissions":["mknod"]}],"initProcessEnabled":true,"sharedMemorySize":7,"tmpfs":[{"containerPath":"s","size":7,"mountOptions":["s"]}],"maxSwap":7,"swappiness":7},"secrets":[{"name":"s","valueFrom":"s"}],"dependsOn":[{"containerName":"s","condition":"HEALTHY"}],"startTimeout":7,"stopTimeout":7,"versionConsistency":"disabled","hostname":"s","user":"s","workingDirectory":"s","disableNetworking":true,"privileged":true,"readonlyRootFilesystem":true,"dnsServers":["s"],"dnsSearchDomains":["s"],"extraHosts":[{"hostname":"s","ipAddress":"s"}],"dockerSecurityOptions":["s"],"interactive":true,"pseudoTerminal":true,"dockerLabels":{"k":"s"},"ulimits":[{"name":"stack","softLimit":7,"hardLimit":7}],"logConfiguration":{"logDriver":"awsfirelens","options":{"k":"s"},"secretOptions":[{"name":"s","valueFrom":"s"}]},"healthCheck":{"command":["s"],"interval":7,"timeout":7,"retries":7,"startPeriod":7},"systemControls":[{"namespace":"s","value":"s"}],"resourceRequirements":[{"value":"s","type":"InferenceAccelerator"}],"firelensConfiguration":{"type":"fluentbit","options":{"k":"s"}},"credentialSpecs":["s"]}],"family":"s","taskRoleArn":"s","executionRoleArn":"s","networkMode":"none","revision":7,"volumes":[{"name":"s","host":{"sourcePath":"s"},"dockerVolumeConfiguration":{"scope":"shared","autoprovision":true,"driver":"s","driverOpts":{"k":"s"},"labels":{"k":"s"}},"efsVolumeConfiguration":{"fileSystemId":"s","rootDirectory":"s","transitEncryption":"DISABLED","transitEncryptionPort":7,"authorizationConfig":{"accessPointId":"s","iam":"DISABLED"}},"s3filesVolumeConfiguration":{"fileSystemArn":"s","rootDirectory":"s","transitEncryptionPort":7,"accessPointArn":"s"},"fsxWindowsFileServerVolumeConfiguration":{"fileSystemId":"s","rootDirectory":"s","authorizationConfig":{"credentialsParameter":"s","domain":"s"}},"configuredAtLaunch":true}],"status":"DELETE_IN_PROGRESS","requiresAttributes":[{"name":"s","value":"s","targetType":"container-instance","targetId":"s"}],"placementConstraints":[{"type":"memberOf","expression":"s"}],"compatibilities":["MANAGED_INSTANCES"],"runtimePlatform":{"cpuArchitecture":"ARM64","operatingSystemFamily":"LINUX"},"requiresCompatibilities":["MANAGED_INSTANCES"],"cpu":"s","memory":"s","inferenceAccelerators":[{"deviceName":"s","deviceType":"s"}],"pidMode":"task","ipcMode":"none","proxyConfiguration":{"type":"APPMESH","containerName":"s","properties":[{"name":"s","value":"s"}]},"registeredAt":1700000000.5,"deregisteredAt":1700000000.5,"deleteRequestedAt":1700000000.5,"registeredBy":"s","ephemeralStorage":{"sizeInGiB":7},"enableFaultInjection":true}"#;

    fn ctx(family: &str) -> RegistrationContext {
        RegistrationContext {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:1"),
            revision: 1,
            registered_at: 1_795_848_586_051,
            registered_by: "arn:aws:iam::123456789012:root".into(),
        }
    }

    fn decode(v: Value) -> RegisterTaskDefinitionRequest {
        serde_json::from_value(v).expect("request decodes")
    }

    fn register(v: Value) -> Result<(TaskDefinition, Vec<Tag>), ApiError> {
        let req = decode(v);
        let family = req.family.clone();
        req.into_task_definition(ctx(&family))
    }

    fn registered(v: Value) -> Value {
        match register(v) {
            Ok((td, _)) => serde_json::to_value(td).expect("encodes"),
            Err(e) => panic!("registration refused: {e}"),
        }
    }

    /// Deep-merges `patch` into `base`; a `null` in the patch deletes the member.
    fn merge(base: &mut Value, patch: Value) {
        match (base, patch) {
            (Value::Object(b), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        b.remove(&k);
                    } else if let Some(slot) = b.get_mut(&k).filter(|s| s.is_object() && v.is_object()) {
                        merge(slot, v);
                    } else {
                        b.insert(k, v);
                    }
                }
            }
            (b, p) => *b = p,
        }
    }

    /// A valid Fargate registration with `container` merged into its only container and `task` into the task.
    fn fargate_task(container: Value, task: Value) -> Value {
        let mut v = json!({
            "family": "web",
            "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc",
            "cpu": "256",
            "memory": "512",
            "executionRoleArn": EXEC_ROLE,
            "containerDefinitions": [{"name": "app", "image": "nginx:latest"}]
        });
        merge(&mut v["containerDefinitions"][0], container);
        merge(&mut v, task);
        v
    }

    fn fg(container: Value) -> Value {
        fargate_task(container, json!({}))
    }

    fn fgt(task: Value) -> Value {
        fargate_task(json!({}), task)
    }

    /// A valid EC2 (no requiresCompatibilities, bridge) registration, patched likewise.
    fn ec2_task(container: Value, task: Value) -> Value {
        let mut v = json!({
            "family": "batch",
            "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 128}]
        });
        merge(&mut v["containerDefinitions"][0], container);
        merge(&mut v, task);
        v
    }

    fn ec2(container: Value) -> Value {
        ec2_task(container, json!({}))
    }

    fn ec2t(task: Value) -> Value {
        ec2_task(json!({}), task)
    }

    fn awslogs() -> Value {
        json!({"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"}})
    }

    fn attribute_names(td: &Value) -> Vec<String> {
        td["requiresAttributes"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["name"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    macro_rules! check_enum {
        ($t:ty, [$($wire:literal),+ $(,)?]) => {{
            let ours: Vec<&str> = <$t>::ALL.iter().map(|v| v.as_str()).collect();
            assert_eq!(ours, vec![$($wire),+], stringify!($t));
            for v in <$t>::ALL {
                let encoded = serde_json::to_value(v).expect("encodes");
                assert_eq!(encoded, json!(v.as_str()));
                assert_eq!(serde_json::from_value::<$t>(encoded).ok(), Some(*v));
                assert_eq!(<$t>::from_wire(v.as_str()), Some(*v));
            }
            assert!(serde_json::from_value::<$t>(json!("not-a-value")).is_err());
        }};
    }

    #[test]
    fn enums_carry_the_model_values() {
        // Lists copied from botocore's ECS model (service-2.json, 2014-11-13).
        check_enum!(NetworkMode, ["bridge", "host", "awsvpc", "none"]);
        check_enum!(PidMode, ["host", "task"]);
        check_enum!(IpcMode, ["host", "task", "none"]);
        check_enum!(TaskDefinitionStatus, ["ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"]);
        check_enum!(Compatibility, ["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"]);
        check_enum!(ProxyConfigurationType, ["APPMESH"]);
        check_enum!(CPUArchitecture, ["X86_64", "ARM64"]);
        check_enum!(
            OSFamily,
            [
                "WINDOWS_SERVER_2019_FULL",
                "WINDOWS_SERVER_2019_CORE",
                "WINDOWS_SERVER_2016_FULL",
                "WINDOWS_SERVER_2004_CORE",
                "WINDOWS_SERVER_2022_CORE",
                "WINDOWS_SERVER_2022_FULL",
                "WINDOWS_SERVER_2025_CORE",
                "WINDOWS_SERVER_2025_FULL",
                "WINDOWS_SERVER_20H2_CORE",
                "LINUX"
            ]
        );
        check_enum!(VersionConsistency, ["enabled", "disabled"]);
        check_enum!(TaskDefinitionPlacementConstraintType, ["memberOf"]);
        check_enum!(TargetType, ["container-instance"]);
        check_enum!(
            LogDriver,
            ["json-file", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "awsfirelens"]
        );
        check_enum!(FirelensConfigurationType, ["fluentd", "fluentbit"]);
        check_enum!(Scope, ["task", "shared"]);
        check_enum!(EFSTransitEncryption, ["ENABLED", "DISABLED"]);
        check_enum!(TransportProtocol, ["tcp", "udp"]);
        check_enum!(ApplicationProtocol, ["http", "http2", "grpc"]);
        check_enum!(EnvironmentFileType, ["s3"]);
        check_enum!(ContainerCondition, ["START", "COMPLETE", "SUCCESS", "HEALTHY"]);
        check_enum!(
            UlimitName,
            [
                "core",
                "cpu",
                "data",
                "fsize",
                "locks",
                "memlock",
                "msgqueue",
                "nice",
                "nofile",
                "nproc",
                "rss",
                "rtprio",
                "rttime",
                "sigpending",
                "stack"
            ]
        );
        check_enum!(ResourceType, ["GPU", "InferenceAccelerator"]);
        check_enum!(EFSAuthorizationConfigIAM, ["ENABLED", "DISABLED"]);
        check_enum!(DeviceCgroupPermission, ["read", "write", "mknod"]);
    }

    #[test]
    fn every_model_member_round_trips() {
        // deny_unknown_fields catches a misnamed member on the way in, equality a dropped one on the way out.
        let original: Value = serde_json::from_str(FULL_REQUEST).expect("fixture is JSON");
        let req: RegisterTaskDefinitionRequest = serde_json::from_value(original.clone()).expect("decodes");
        assert_eq!(serde_json::to_value(&req).expect("encodes"), original);

        let original: Value = serde_json::from_str(FULL_TASK_DEFINITION).expect("fixture is JSON");
        let td: TaskDefinition = serde_json::from_value(original.clone()).expect("decodes");
        assert_eq!(td.registered_at, Some(1_700_000_000_500));
        assert_eq!(serde_json::to_value(&td).expect("encodes"), original);
    }

    #[test]
    fn minimal_fargate_registration_is_what_ecs_returns() {
        let request = json!({
            "family": "web",
            "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc",
            "cpu": "256",
            "memory": "512",
            "containerDefinitions": [{
                "name": "app",
                "image": "public.ecr.aws/nginx/nginx:latest",
                "portMappings": [{"containerPort": 80}]
            }]
        });
        let (td, tags) = register(request).expect("registers");
        assert!(tags.is_empty());
        let expected = json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1",
            "containerDefinitions": [{
                "name": "app",
                "image": "public.ecr.aws/nginx/nginx:latest",
                "cpu": 0,
                "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
                "essential": true,
                "environment": [],
                "mountPoints": [],
                "volumesFrom": [],
                "systemControls": []
            }],
            "family": "web",
            "networkMode": "awsvpc",
            "revision": 1,
            "volumes": [],
            "status": "ACTIVE",
            "requiresAttributes": [
                {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"},
                {"name": "ecs.capability.task-eni"}
            ],
            "placementConstraints": [],
            "compatibilities": ["EC2", "FARGATE"],
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "registeredAt": 1_795_848_586.051,
            "registeredBy": "arn:aws:iam::123456789012:root"
        });
        assert_eq!(serde_json::to_value(&td).expect("encodes"), expected);
        // Timestamps are JSON numbers of epoch seconds, not strings.
        let text = serde_json::to_string(&td).expect("encodes");
        assert!(text.contains(r#""registeredAt":1795848586.051"#), "{text}");
        // What is stored reads back identically.
        let stored: TaskDefinition = serde_json::from_str(&text).expect("decodes");
        assert_eq!(stored, td);
        assert_eq!(td.family(), "web");
        assert_eq!(td.revision(), 1);
        assert!(td.is_compatible_with(Compatibility::Fargate));
        assert!(td.container("app").is_some_and(ContainerDefinition::is_essential));
    }

    #[test]
    fn full_fargate_registration_fills_defaults_and_attributes() {
        let request = json!({
            "family": "api",
            "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc",
            "cpu": "1 vCPU",
            "memory": "2 GB",
            "executionRoleArn": EXEC_ROLE,
            "taskRoleArn": TASK_ROLE,
            "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": ECR_IMAGE,
                    "cpu": 512,
                    "memoryReservation": 1024,
                    "portMappings": [{"containerPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http"}],
                    "environment": [{"name": "PORT", "value": "8080"}],
                    "logConfiguration": awslogs(),
                    "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"], "startPeriod": 10},
                    "linuxParameters": {"initProcessEnabled": true, "capabilities": {"add": ["SYS_PTRACE"]}},
                    "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
                    "ulimits": [{"name": "nofile", "softLimit": 65535, "hardLimit": 1_048_576}],
                    "stopTimeout": 120
                },
                {"name": "init", "image": "busybox", "essential": false, "command": ["true"]}
            ],
            "tags": [{"key": "team", "value": "core"}]
        });
        let (td, tags) = register(request).expect("registers");
        assert_eq!(tags, vec![Tag::new("team", "core")]);
        let v = serde_json::to_value(&td).expect("encodes");
        assert_eq!(v["cpu"], "1024");
        assert_eq!(v["memory"], "2048");
        assert_eq!(v["compatibilities"], json!(["EC2", "FARGATE"]));
        assert_eq!(
            v["containerDefinitions"][0]["healthCheck"],
            json!({"command": ["CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"],
                   "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 10})
        );
        assert_eq!(
            v["containerDefinitions"][0]["portMappings"],
            json!([{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http"}])
        );
        assert_eq!(
            v["containerDefinitions"][1],
            json!({"name": "init", "image": "busybox", "cpu": 0, "portMappings": [], "essential": false,
                   "command": ["true"], "environment": [], "mountPoints": [], "volumesFrom": [], "systemControls": []})
        );
        assert_eq!(
            attribute_names(&v),
            vec![
                "com.amazonaws.ecs.capability.logging-driver.awslogs",
                "ecs.capability.execution-role-awslogs",
                "com.amazonaws.ecs.capability.ecr-auth",
                "com.amazonaws.ecs.capability.docker-remote-api.1.19",
                "com.amazonaws.ecs.capability.task-iam-role",
                "ecs.capability.container-ordering",
                "com.amazonaws.ecs.capability.docker-remote-api.1.25",
                "ecs.capability.execution-role-ecr-pull",
                "ecs.capability.container-health-check",
                "com.amazonaws.ecs.capability.docker-remote-api.1.18",
                "ecs.capability.task-eni",
                "com.amazonaws.ecs.capability.docker-remote-api.1.29",
            ]
        );
    }

    #[test]
    fn ec2_registration_defaults() {
        let request = json!({
            "family": "batch",
            "containerDefinitions": [{
                "name": "app", "image": "busybox", "memory": 128,
                "portMappings": [{"containerPort": 80}, {"containerPort": 53, "hostPort": 5353, "protocol": "udp"}]
            }]
        });
        let v = registered(request);
        assert_eq!(
            v,
            json!({
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/batch:1",
                "containerDefinitions": [{
                    "name": "app", "image": "busybox", "cpu": 0, "memory": 128,
                    "portMappings": [
                        {"containerPort": 80, "hostPort": 0, "protocol": "tcp"},
                        {"containerPort": 53, "hostPort": 5353, "protocol": "udp"}
                    ],
                    "essential": true, "environment": [], "mountPoints": [], "volumesFrom": [], "systemControls": []
                }],
                "family": "batch",
                "networkMode": "bridge",
                "revision": 1,
                "volumes": [],
                "status": "ACTIVE",
                "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
                "placementConstraints": [],
                "compatibilities": ["EC2"],
                "registeredAt": 1_795_848_586.051,
                "registeredBy": "arn:aws:iam::123456789012:root"
            })
        );
        // EXTERNAL is listed when required; host mode fills hostPort like awsvpc.
        let v = registered(ec2_task(
            json!({"portMappings": [{"containerPort": 9000}]}),
            json!({"requiresCompatibilities": ["EXTERNAL"], "networkMode": "host", "cpu": "0.5 vCPU"}),
        ));
        assert_eq!(v["compatibilities"], json!(["EC2", "EXTERNAL"]));
        assert_eq!(v["requiresCompatibilities"], json!(["EXTERNAL"]));
        assert_eq!(v["cpu"], "512");
        assert_eq!(v["containerDefinitions"][0]["portMappings"][0]["hostPort"], 9000);
    }

    #[test]
    fn every_fargate_size_registers_and_others_are_refused() {
        for (cpu, memories) in fargate::FARGATE_CPU_MEMORY {
            for memory in *memories {
                let v = registered(fgt(json!({"cpu": cpu.to_string(), "memory": memory.to_string()})));
                assert_eq!(v["cpu"], cpu.to_string());
                assert_eq!(v["memory"], memory.to_string());
            }
            let (min, max) = (memories[0], memories[memories.len() - 1]);
            for bad in [min - 512, max + 1024, min + 1] {
                let e = register(fgt(json!({"cpu": cpu.to_string(), "memory": bad.to_string()}))).unwrap_err();
                assert_eq!(e.code, C, "{cpu}/{bad}");
                assert!(
                    e.message.contains(&format!(
                        "No Fargate configuration exists for given values: {cpu} CPU, {bad} memory"
                    )),
                    "{cpu}/{bad}: {}",
                    e.message
                );
            }
        }
        for cpu in ["128", "3072", "1000", "32768", "0"] {
            let e = register(fgt(json!({"cpu": cpu, "memory": "2048"}))).unwrap_err();
            assert_eq!(
                (e.code.as_ref(), e.message.contains("Invalid 'cpu' setting for task.")),
                (C, true),
                "{cpu}: {e}"
            );
        }
        // The "vCPU" / "GB" forms are converted before the check and stored as numbers.
        for (cpu, memory, want_cpu, want_memory) in [
            (".25 vCPU", "0.5GB", "256", "512"),
            ("2 vcpu", "16 GB", "2048", "16384"),
            ("16 vCPU", "120GB", "16384", "122880"),
        ] {
            let v = registered(fgt(json!({"cpu": cpu, "memory": memory})));
            assert_eq!((v["cpu"].as_str(), v["memory"].as_str()), (Some(want_cpu), Some(want_memory)));
        }
        let e = register(fgt(json!({"cpu": "1 vCPU", "memory": "1 GB"}))).unwrap_err();
        assert!(e.message.contains("1024 CPU, 1024 memory"), "{e}");
        // Garbage is malformed, not merely unsupported.
        for (field, value) in [("cpu", ""), ("cpu", "lots"), ("cpu", "-256"), ("memory", "2 TB"), ("memory", "0.1GB")] {
            let e = register(fgt(json!({ field: value }))).unwrap_err();
            assert_eq!(e.code, I, "{field}={value:?}");
            assert_eq!(e.message, format!("Invalid '{field}' setting for task."));
        }
    }

    fn two(first: Value, second: Value) -> Value {
        json!({"containerDefinitions": [first, second]})
    }

    #[test]
    fn refusals() {
        let base_app = json!({"name": "app", "image": "nginx"});
        let mut eleven = Vec::new();
        for i in 0..11 {
            eleven.push(json!({"name": format!("c{i}"), "image": "nginx"}));
        }
        let fifty_one: Vec<Value> = (0..51).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect();
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            // family
            ("empty family", fgt(json!({"family": ""})), C, "family must not be empty"),
            ("family chars", fgt(json!({"family": "my app"})), C, "Family contains invalid characters"),
            ("family dot", fgt(json!({"family": "my.app"})), C, "Family contains invalid characters"),
            ("family length", fgt(json!({"family": "f".repeat(256)})), C, "at most 255"),
            // container list and names
            ("no containers", fgt(json!({"containerDefinitions": []})), C, "Container list cannot be empty."),
            ("eleven containers", fgt(json!({"containerDefinitions": eleven})), C, "at most 10 container definitions"),
            ("no name", fg(json!({"name": null})), C, "Container.name should not be null or empty."),
            ("empty name", fg(json!({"name": ""})), C, "Container.name should not be null or empty."),
            ("bad name", fg(json!({"name": "my.app"})), C, "invalid container name 'my.app'"),
            ("duplicate name", fgt(two(base_app.clone(), base_app.clone())), C, "duplicate container name 'app'"),
            // image
            ("no image", fg(json!({"image": null})), C, "Container.image should not be null or empty."),
            ("empty image", fg(json!({"image": ""})), C, "Container.image should not be null or empty."),
            ("image space", fg(json!({"image": "nginx latest"})), I, "character ' ' is not allowed"),
            ("image digest", fg(json!({"image": "nginx@sha256:abc"})), I, "64 hexadecimal"),
            ("image md5", fg(json!({"image": format!("nginx@md5:{}", "a".repeat(64))})), I, "digest"),
            ("image length", fg(json!({"image": "i".repeat(256)})), I, "1 to 255 characters"),
            // essential
            ("no essential", fg(json!({"essential": false})), C, "at least one essential container"),
            // Fargate network mode and size
            ("fargate no mode", fgt(json!({"networkMode": null})), C, "Fargate only supports network mode \u{2018}awsvpc\u{2019}."),
            ("fargate bridge", fgt(json!({"networkMode": "bridge"})), C, "Fargate only supports network mode"),
            ("fargate no cpu", fgt(json!({"cpu": null})), C, "Fargate requires that 'cpu' be defined at the task level."),
            ("fargate no memory", fgt(json!({"memory": null})), C, "Fargate requires that 'memory' be defined at the task level."),
            ("fargate cpu 128", fgt(json!({"cpu": "128"})), C, "Invalid 'cpu' setting for task."),
            ("fargate bad pair", fgt(json!({"memory": "4096"})), C, "No Fargate configuration exists for given values: 256 CPU, 4096 memory."),
            ("malformed cpu", fgt(json!({"cpu": "lots"})), I, "Invalid 'cpu' setting for task."),
            ("malformed memory", fgt(json!({"memory": "2 TB"})), I, "Invalid 'memory' setting for task."),
            (
                "windows below 1 vCPU",
                fgt(json!({"runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}})),
                C,
                "at least 1 vCPU",
            ),
            // container cpu and memory against the task
            ("container cpu above task", fg(json!({"cpu": 300})), C, "reserve 300 CPU units in total, more than the task cpu (256)"),
            (
                "container cpu sum",
                fgt(two(json!({"name": "a", "image": "x", "cpu": 200}), json!({"name": "b", "image": "x", "cpu": 100}))),
                C,
                "reserve 300 CPU units",
            ),
            ("negative cpu", fg(json!({"cpu": -1})), C, "must not be negative"),
            ("memory above task", fg(json!({"memory": 1024})), C, "'memory' (1024 MiB) must not exceed the task memory (512 MiB)"),
            ("reservation above task", fg(json!({"memoryReservation": 600})), C, "'memoryReservation' (600 MiB) must not exceed"),
            (
                "reservation above memory",
                fg(json!({"memory": 256, "memoryReservation": 300})),
                C,
                "'memory' (256 MiB) must be greater than or equal to 'memoryReservation' (300 MiB)",
            ),
            ("zero memory", fg(json!({"memory": 0})), C, "'memory' must be greater than 0 MiB"),
            (
                "reservations sum",
                fgt(two(
                    json!({"name": "a", "image": "x", "memoryReservation": 300}),
                    json!({"name": "b", "image": "x", "memoryReservation": 300}),
                )),
                C,
                "reserve 600 MiB in total, more than the task memory (512 MiB)",
            ),
            ("ec2 no memory", ec2(json!({"memory": null})), C, "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."),
            ("ec2 cpu 64", ec2t(json!({"cpu": "64"})), C, "Invalid 'cpu' setting for task."),
            ("ec2 memory 0", ec2t(json!({"memory": "0"})), C, "Invalid 'memory' setting for task."),
            // parameters Fargate does not support
            ("privileged", fg(json!({"privileged": true})), C, "Tasks using the Fargate launch type do not support privileged (container 'app')."),
            ("disableNetworking", fg(json!({"disableNetworking": true})), C, "do not support disableNetworking"),
            ("dnsServers", fg(json!({"dnsServers": ["1.1.1.1"]})), C, "do not support dnsServers"),
            ("dnsSearchDomains", fg(json!({"dnsSearchDomains": ["corp"]})), C, "do not support dnsSearchDomains"),
            ("dockerSecurityOptions", fg(json!({"dockerSecurityOptions": ["no-new-privileges"]})), C, "do not support dockerSecurityOptions"),
            ("extraHosts", fg(json!({"extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.1"}]})), C, "do not support extraHosts"),
            (
                "links",
                fgt(two(json!({"name": "app", "image": "x", "links": ["db"]}), json!({"name": "db", "image": "x"}))),
                C,
                "do not support links",
            ),
            ("ipcMode", fgt(json!({"ipcMode": "task"})), C, "Tasks using the Fargate launch type do not support ipcMode."),
            ("pidMode host", fgt(json!({"pidMode": "host"})), C, "do not support pidMode 'host'. The supported value for pidMode is 'task'."),
            (
                "placementConstraints",
                fgt(json!({"placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}]})),
                C,
                "do not support placementConstraints",
            ),
            ("maxSwap", fg(json!({"linuxParameters": {"maxSwap": 0}})), C, "do not support linuxParameters.maxSwap"),
            ("swappiness", fg(json!({"linuxParameters": {"swappiness": 10}})), C, "do not support linuxParameters.swappiness"),
            ("devices", fg(json!({"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}})), C, "do not support linuxParameters.devices"),
            ("sharedMemorySize", fg(json!({"linuxParameters": {"sharedMemorySize": 64}})), C, "do not support linuxParameters.sharedMemorySize"),
            ("tmpfs", fg(json!({"linuxParameters": {"tmpfs": [{"containerPath": "/tmp", "size": 64}]}})), C, "do not support linuxParameters.tmpfs"),
            ("cap add", fg(json!({"linuxParameters": {"capabilities": {"add": ["NET_ADMIN"]}}})), C, "only support adding the SYS_PTRACE kernel capability, not 'NET_ADMIN'"),
            ("gpu", fg(json!({"resourceRequirements": [{"type": "GPU", "value": "1"}]})), C, "do not support GPU resource requirements"),
            ("accelerators", fgt(json!({"inferenceAccelerators": [{"deviceName": "d", "deviceType": "eia2.medium"}]})), C, "do not support inferenceAccelerators"),
            ("ephemeral 20", fgt(json!({"ephemeralStorage": {"sizeInGiB": 20}})), C, "between 21 and 200 GiB"),
            ("ephemeral 201", fgt(json!({"ephemeralStorage": {"sizeInGiB": 201}})), C, "'ephemeralStorage.sizeInGiB' 201"),
            ("host sourcePath", fgt(json!({"volumes": [{"name": "data", "host": {"sourcePath": "/srv"}}]})), C, "do not support host.sourcePath (volume 'data')"),
            ("docker volume", fgt(json!({"volumes": [{"name": "data", "dockerVolumeConfiguration": {"scope": "task"}}]})), C, "do not support dockerVolumeConfiguration"),
            ("stopTimeout 121", fg(json!({"stopTimeout": 121})), C, "invalid stopTimeout 121 for container 'app'"),
            ("stopTimeout 1", fg(json!({"stopTimeout": 1})), C, "2 to 120 seconds"),
            ("startTimeout 1", fg(json!({"startTimeout": 1})), C, "invalid startTimeout 1"),
            ("nofile above max", fg(json!({"ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2_000_000}]})), C, "at most 1048576"),
            // logging
            ("fargate json-file", fg(json!({"logConfiguration": {"logDriver": "json-file"}})), C, "log driver 'json-file' of container 'app' is not supported on Fargate"),
            ("awslogs no group", fg(json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-region": "us-east-1", "awslogs-stream-prefix": "p"}}})), C, "requires the 'awslogs-group' option"),
            ("awslogs no region", fg(json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-stream-prefix": "p"}}})), C, "requires the 'awslogs-region' option"),
            ("awslogs no prefix", fg(json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "us-east-1"}}})), C, "requires the 'awslogs-stream-prefix' option on Fargate"),
            ("awslogs empty prefix", fg(json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "r", "awslogs-stream-prefix": ""}}})), C, "'awslogs-stream-prefix'"),
            ("awslogs no exec role", fargate_task(json!({"logConfiguration": awslogs()}), json!({"executionRoleArn": null})), C, "Fargate requires task definition to have execution role ARN to support log driver awslogs."),
            ("ec2 awslogs no region", ec2(json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}}})), C, "'awslogs-region'"),
            ("firelens without router", fg(json!({"logConfiguration": {"logDriver": "awsfirelens"}})), C, "no container of the task definition has a firelensConfiguration"),
            ("secretOptions", fg(json!({"logConfiguration": {"logDriver": "splunk", "secretOptions": [{"name": "splunk-token", "valueFrom": ""}]}})), C, "secretOptions"),
            // port mappings
            ("port 0", fg(json!({"portMappings": [{"containerPort": 0}]})), C, "invalid containerPort 0 in container 'app': must be between 1 and 65535"),
            ("port 70000", fg(json!({"portMappings": [{"containerPort": 70000}]})), C, "between 1 and 65535"),
            ("no port", fg(json!({"portMappings": [{"protocol": "tcp"}]})), C, "containerPort or containerPortRange is required"),
            ("host port differs", fg(json!({"portMappings": [{"containerPort": 80, "hostPort": 8080}]})), C, "When networkMode=awsvpc, the host ports and container ports in port mappings must match."),
            ("host mode differs", ec2t(json!({"networkMode": "host", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 81}]}]})), C, "When networkMode=host"),
            ("bridge host port", ec2(json!({"portMappings": [{"containerPort": 80, "hostPort": 70000}]})), C, "invalid hostPort 70000"),
            ("duplicate port", fg(json!({"portMappings": [{"containerPort": 80}, {"containerPort": 80, "protocol": "tcp"}]})), C, "port 80/tcp appears in more than one port mapping of container 'app'"),
            ("range reversed", fg(json!({"portMappings": [{"containerPortRange": "8100-8000"}]})), I, "invalid containerPortRange '8100-8000'"),
            ("range garbage", fg(json!({"portMappings": [{"containerPortRange": "80"}]})), I, "invalid containerPortRange"),
            ("range too high", fg(json!({"portMappings": [{"containerPortRange": "65000-65536"}]})), I, "invalid containerPortRange"),
            ("range and port", fg(json!({"portMappings": [{"containerPort": 80, "containerPortRange": "80-90"}]})), C, "not both"),
            ("range and host port", fg(json!({"portMappings": [{"containerPortRange": "80-90", "hostPort": 80}]})), C, "hostPort must be omitted"),
            ("range overlap", fg(json!({"portMappings": [{"containerPortRange": "8000-8100"}, {"containerPort": 8050}]})), C, "port 8050/tcp appears in more than one"),
            ("range host mode", ec2t(json!({"networkMode": "host", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "portMappings": [{"containerPortRange": "80-90"}]}]})), C, "containerPortRange is only supported"),
            ("port name case", fg(json!({"portMappings": [{"containerPort": 80, "name": "Web"}]})), I, "invalid port mapping name 'Web'"),
            ("port name hyphen", fg(json!({"portMappings": [{"containerPort": 80, "name": "-web"}]})), I, "not starting with a hyphen"),
            (
                "port name twice",
                fgt(two(
                    json!({"name": "a", "image": "x", "portMappings": [{"containerPort": 80, "name": "web"}]}),
                    json!({"name": "b", "image": "x", "portMappings": [{"containerPort": 81, "name": "web"}]}),
                )),
                C,
                "port mapping name 'web' is used more than once",
            ),
            (
                "host port twice",
                fgt(two(
                    json!({"name": "a", "image": "x", "portMappings": [{"containerPort": 80}]}),
                    json!({"name": "b", "image": "x", "portMappings": [{"containerPort": 80}]}),
                )),
                C,
                "host port 80/tcp is mapped by both container 'a' and container 'b'",
            ),
            ("ports with none", ec2_task(json!({"portMappings": [{"containerPort": 80}]}), json!({"networkMode": "none"})), C, "networkMode=none"),
            // dependsOn
            ("depends on unknown", fg(json!({"dependsOn": [{"containerName": "db", "condition": "START"}]})), C, "container 'app' depends on container 'db', which is not defined"),
            ("depends on self", fg(json!({"dependsOn": [{"containerName": "app", "condition": "START"}]})), C, "container 'app' cannot depend on itself"),
            (
                "dependency cycle",
                fgt(json!({"containerDefinitions": [
                    {"name": "a", "image": "x", "dependsOn": [{"containerName": "b", "condition": "START"}]},
                    {"name": "b", "image": "x", "dependsOn": [{"containerName": "c", "condition": "START"}]},
                    {"name": "c", "image": "x", "dependsOn": [{"containerName": "a", "condition": "START"}]}
                ]})),
                C,
                "container dependencies form a cycle: a -> b -> c -> a",
            ),
            (
                "complete on essential",
                fgt(two(
                    json!({"name": "a", "image": "x", "dependsOn": [{"containerName": "b", "condition": "COMPLETE"}]}),
                    json!({"name": "b", "image": "x"}),
                )),
                C,
                "with condition COMPLETE: COMPLETE and SUCCESS can only be used with non-essential containers",
            ),
            (
                "healthy without check",
                fgt(two(
                    json!({"name": "a", "image": "x", "dependsOn": [{"containerName": "b", "condition": "HEALTHY"}]}),
                    json!({"name": "b", "image": "x"}),
                )),
                C,
                "but 'b' has no healthCheck",
            ),
            // health checks
            ("hc empty", fg(json!({"healthCheck": {"command": []}})), C, "invalid healthCheck.command for container 'app'"),
            ("hc no CMD", fg(json!({"healthCheck": {"command": ["curl", "-f", "http://localhost/"]}})), C, "must start with CMD or CMD-SHELL"),
            ("hc bare CMD-SHELL", fg(json!({"healthCheck": {"command": ["CMD-SHELL"]}})), C, "healthCheck.command"),
            ("hc blank CMD", fg(json!({"healthCheck": {"command": ["CMD", " "]}})), C, "healthCheck.command"),
            ("hc interval 4", fg(json!({"healthCheck": {"command": ["CMD", "true"], "interval": 4}})), C, "invalid healthCheck.interval 4 for container 'app': must be between 5 and 300"),
            ("hc interval 301", fg(json!({"healthCheck": {"command": ["CMD", "true"], "interval": 301}})), C, "healthCheck.interval 301"),
            ("hc timeout 1", fg(json!({"healthCheck": {"command": ["CMD", "true"], "timeout": 1}})), C, "healthCheck.timeout 1"),
            ("hc timeout 61", fg(json!({"healthCheck": {"command": ["CMD", "true"], "timeout": 61}})), C, "healthCheck.timeout 61"),
            ("hc retries 0", fg(json!({"healthCheck": {"command": ["CMD", "true"], "retries": 0}})), C, "healthCheck.retries 0"),
            ("hc retries 11", fg(json!({"healthCheck": {"command": ["CMD", "true"], "retries": 11}})), C, "healthCheck.retries 11"),
            ("hc startPeriod -1", fg(json!({"healthCheck": {"command": ["CMD", "true"], "startPeriod": -1}})), C, "healthCheck.startPeriod -1"),
            ("hc startPeriod 301", fg(json!({"healthCheck": {"command": ["CMD", "true"], "startPeriod": 301}})), C, "healthCheck.startPeriod 301"),
            // ulimits
            ("ulimit soft > hard", ec2(json!({"ulimits": [{"name": "nofile", "softLimit": 2048, "hardLimit": 1024}]})), C, "softLimit (2048) must not exceed hardLimit (1024)"),
            ("ulimit twice", ec2(json!({"ulimits": [{"name": "nproc", "softLimit": 1, "hardLimit": 1}, {"name": "nproc", "softLimit": 2, "hardLimit": 2}]})), C, "ulimit 'nproc' is set more than once"),
            ("ulimit -2", ec2(json!({"ulimits": [{"name": "core", "softLimit": -2, "hardLimit": 0}]})), C, "-1 (unlimited) or greater"),
            ("ulimit soft unlimited", ec2(json!({"ulimits": [{"name": "memlock", "softLimit": -1, "hardLimit": 1024}]})), C, "must not exceed hardLimit"),
            // volumes and mounts
            ("unknown volume", fg(json!({"mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]})), C, "sourceVolume 'data' is not a volume of the task definition"),
            ("mount without path", fargate_task(json!({"mountPoints": [{"sourceVolume": "data"}]}), json!({"volumes": [{"name": "data"}]})), C, "containerPath must not be empty"),
            ("volume without name", fgt(json!({"volumes": [{}]})), C, "Volume.name should not be null or empty."),
            ("volume bad name", fgt(json!({"volumes": [{"name": "my data"}]})), C, "invalid volume name 'my data'"),
            ("volume twice", fgt(json!({"volumes": [{"name": "d"}, {"name": "d"}]})), C, "duplicate volume name 'd'"),
            ("volume two kinds", fgt(json!({"volumes": [{"name": "d", "host": {}, "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}]})), C, "specify at most one of"),
            ("efs no id", fgt(json!({"volumes": [{"name": "d", "efsVolumeConfiguration": {"fileSystemId": ""}}]})), C, "fileSystemId must not be empty"),
            ("efs iam clear", fgt(json!({"volumes": [{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "authorizationConfig": {"iam": "ENABLED"}}}]})), C, "transit encryption must be ENABLED when EFS IAM authorization is used"),
            ("efs ap clear", fgt(json!({"volumes": [{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "authorizationConfig": {"accessPointId": "fsap-1"}}}]})), C, "when an EFS access point is used"),
            ("efs ap root", fgt(json!({"volumes": [{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "rootDirectory": "/data", "transitEncryption": "ENABLED", "authorizationConfig": {"accessPointId": "fsap-1"}}}]})), C, "rootDirectory must be omitted or '/'"),
            ("efs port", fgt(json!({"volumes": [{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "transitEncryptionPort": 70000}}]})), C, "transitEncryptionPort 70000"),
            ("volumesFrom self", fg(json!({"volumesFrom": [{"sourceContainer": "app"}]})), C, "sourceContainer 'app' must be another container"),
            ("volumesFrom unknown", fg(json!({"volumesFrom": [{"sourceContainer": "db"}]})), C, "sourceContainer 'db'"),
            // networking on EC2
            ("links in awsvpc", ec2_task(json!({"links": ["app"]}), json!({"networkMode": "awsvpc"})), C, "links are only supported when networkMode=bridge, not awsvpc"),
            ("link unknown", ec2(json!({"links": ["db:database"]})), C, "invalid link 'db:database'"),
            ("hostname awsvpc", ec2_task(json!({"hostname": "web"}), json!({"networkMode": "awsvpc"})), C, "hostname is not supported on container when networkMode=awsvpc"),
            ("extraHosts awsvpc", ec2_task(json!({"extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.1"}]}), json!({"networkMode": "awsvpc"})), C, "extraHosts is not supported on container when networkMode=awsvpc"),
            ("extraHosts empty", ec2(json!({"extraHosts": [{"hostname": "", "ipAddress": "10.0.0.1"}]})), C, "hostname and ipAddress must not be empty"),
            // other container checks
            ("unknown cap", ec2(json!({"linuxParameters": {"capabilities": {"drop": ["NOT_A_CAP"]}}})), C, "capabilities.drop value 'NOT_A_CAP'"),
            ("swappiness 101", ec2(json!({"linuxParameters": {"swappiness": 101}})), C, "between 0 and 100"),
            ("maxSwap -1", ec2(json!({"linuxParameters": {"maxSwap": -1}})), C, "linuxParameters.maxSwap -1"),
            ("shm 0", ec2(json!({"linuxParameters": {"sharedMemorySize": 0}})), C, "sharedMemorySize 0"),
            ("tmpfs size", ec2(json!({"linuxParameters": {"tmpfs": [{"containerPath": "/t", "size": 0}]}})), C, "linuxParameters.tmpfs"),
            ("device path", ec2(json!({"linuxParameters": {"devices": [{"hostPath": ""}]}})), C, "hostPath must not be empty"),
            ("ec2 stopTimeout -1", ec2(json!({"stopTimeout": -1})), C, "invalid stopTimeout -1 for container 'app': must not be negative"),
            ("ec2 startTimeout -1", ec2(json!({"startTimeout": -1})), C, "invalid startTimeout -1"),
            ("restart period", ec2(json!({"restartPolicy": {"enabled": true, "restartAttemptPeriod": 30}})), C, "between 60 and 1800"),
            ("restart codes", ec2(json!({"restartPolicy": {"enabled": true, "ignoredExitCodes": (0..51).collect::<Vec<i32>>()}})), C, "at most 50 ignoredExitCodes"),
            ("env name", ec2(json!({"environment": [{"value": "x"}]})), C, "variable names must not be empty"),
            ("env files", ec2(json!({"environmentFiles": (0..11).map(|i| json!({"type": "s3", "value": format!("arn:aws:s3:::b/{i}.env")})).collect::<Vec<_>>()})), C, "at most 10 files"),
            ("env file empty", ec2(json!({"environmentFiles": [{"type": "s3", "value": ""}]})), C, "environmentFiles"),
            ("secret valueFrom", ec2(json!({"secrets": [{"name": "DB_PASSWORD", "valueFrom": ""}]})), C, "name and valueFrom must not be empty"),
            ("credentialSpecs", ec2(json!({"credentialSpecs": ["credentialspec:a", "credentialspec:b"]})), C, "at most 1"),
            ("gpu 0", ec2(json!({"resourceRequirements": [{"type": "GPU", "value": "0"}]})), C, "positive whole number"),
            ("accelerator unknown", ec2(json!({"resourceRequirements": [{"type": "InferenceAccelerator", "value": "d1"}]})), C, "no inferenceAccelerators entry"),
            ("sysctl namespace", ec2(json!({"systemControls": [{"value": "1"}]})), C, "namespace must not be empty"),
            ("proxy container", fgt(json!({"proxyConfiguration": {"type": "APPMESH", "containerName": "envoy"}})), C, "invalid proxyConfiguration: container 'envoy'"),
            ("memberOf without expression", ec2t(json!({"placementConstraints": [{"type": "memberOf"}]})), C, "needs an expression"),
            // tags
            ("aws tag", fgt(json!({"tags": [{"key": "aws:cloudformation:stack-name", "value": "x"}]})), I, "invalid tag key 'aws:cloudformation:stack-name'"),
            ("51 tags", fgt(json!({"tags": fifty_one})), I, "too many tags: 51"),
            ("tag twice", fgt(json!({"tags": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]})), I, "duplicate tag key 'a'"),
        ];
        let mut failures = Vec::new();
        for (name, request, code, message) in cases {
            match register(request) {
                Ok(_) => failures.push(format!("{name}: accepted")),
                Err(e) => {
                    if e.code != code || !e.message.contains(message) || e.status != 400 {
                        failures.push(format!(
                            "{name}: got {} {:?}, want {code} containing {message:?}",
                            e.code, e.message
                        ));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn acceptances() {
        let cases: Vec<(&str, Value)> = vec![
            ("SYS_PTRACE", fg(json!({"linuxParameters": {"capabilities": {"add": ["SYS_PTRACE"], "drop": ["ALL"]}}}))),
            ("CAP_SYS_PTRACE", fg(json!({"linuxParameters": {"capabilities": {"add": ["CAP_SYS_PTRACE"]}}}))),
            ("ec2 NET_ADMIN", ec2(json!({"linuxParameters": {"capabilities": {"add": ["NET_ADMIN"]}}}))),
            (
                "privileged false",
                fg(json!({"privileged": false, "disableNetworking": false, "dnsServers": [], "links": []})),
            ),
            (
                "ec2 privileged",
                ec2(
                    json!({"privileged": true, "dnsServers": ["1.1.1.1"], "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.1"}]}),
                ),
            ),
            ("pidMode task", fgt(json!({"pidMode": "task"}))),
            ("ec2 ipcMode", ec2t(json!({"ipcMode": "host", "pidMode": "host"}))),
            ("ephemeral 21", fgt(json!({"ephemeralStorage": {"sizeInGiB": 21}}))),
            ("ephemeral 200", fgt(json!({"ephemeralStorage": {"sizeInGiB": 200}}))),
            ("timeouts at the limits", fg(json!({"stopTimeout": 120, "startTimeout": 2}))),
            ("ec2 long stop timeout", ec2(json!({"stopTimeout": 600, "startTimeout": 0}))),
            (
                "ec2 awslogs without prefix",
                ec2(
                    json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "r"}}}),
                ),
            ),
            (
                "ec2 json-file",
                ec2(json!({"logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}}})),
            ),
            (
                "splunk on fargate",
                fg(json!({"logConfiguration": {"logDriver": "splunk", "options": {"splunk-url": "https://s"}}})),
            ),
            (
                "nofile at the Fargate max",
                fg(json!({"ulimits": [{"name": "nofile", "softLimit": 1_048_576, "hardLimit": 1_048_576}]})),
            ),
            (
                "ec2 big nofile",
                ec2(json!({"ulimits": [{"name": "nofile", "softLimit": 2_000_000, "hardLimit": 2_000_000}]})),
            ),
            ("memlock unlimited", ec2(json!({"ulimits": [{"name": "memlock", "softLimit": -1, "hardLimit": -1}]}))),
            ("hc NONE", fg(json!({"healthCheck": {"command": ["NONE"]}}))),
            (
                "hc limits",
                fg(
                    json!({"healthCheck": {"command": ["CMD", "true"], "interval": 300, "timeout": 60, "retries": 10, "startPeriod": 300}}),
                ),
            ),
            (
                "port range",
                fg(
                    json!({"portMappings": [{"containerPortRange": "8000-8100"}, {"containerPort": 8000, "protocol": "udp"}]}),
                ),
            ),
            (
                "same port two protocols",
                fg(json!({"portMappings": [{"containerPort": 53}, {"containerPort": 53, "protocol": "udp"}]})),
            ),
            ("hostPort equal", fg(json!({"portMappings": [{"containerPort": 80, "hostPort": 80}]}))),
            (
                "bridge dynamic ports twice",
                ec2t(two(
                    json!({"name": "a", "image": "x", "memory": 64, "portMappings": [{"containerPort": 80}]}),
                    json!({"name": "b", "image": "x", "memory": 64, "portMappings": [{"containerPort": 80}]}),
                )),
            ),
            (
                "dependencies",
                fgt(json!({"containerDefinitions": [
                    {"name": "app", "image": "x", "dependsOn": [
                        {"containerName": "init", "condition": "SUCCESS"},
                        {"containerName": "db", "condition": "HEALTHY"},
                        {"containerName": "log", "condition": "START"}]},
                    {"name": "init", "image": "x", "essential": false},
                    {"name": "db", "image": "x", "healthCheck": {"command": ["CMD", "pg_isready"]},
                     "dependsOn": [{"containerName": "init", "condition": "COMPLETE"}]},
                    {"name": "log", "image": "x"}
                ]})),
            ),
            (
                "efs with access point",
                fargate_task(
                    json!({"mountPoints": [{"sourceVolume": "d", "containerPath": "/d", "readOnly": true}]}),
                    json!({"volumes": [{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "rootDirectory": "/",
                        "transitEncryption": "ENABLED", "authorizationConfig": {"accessPointId": "fsap-1", "iam": "ENABLED"}}}]}),
                ),
            ),
            (
                "bind mount without source",
                fargate_task(
                    json!({"mountPoints": [{"sourceVolume": "d", "containerPath": "/d"}]}),
                    json!({"volumes": [{"name": "d"}, {"name": "e", "host": {}}]}),
                ),
            ),
            ("ec2 host path", ec2t(json!({"volumes": [{"name": "d", "host": {"sourcePath": "/srv"}}]}))),
            (
                "ec2 links",
                ec2t(two(
                    json!({"name": "app", "image": "x", "memory": 64, "links": ["db:database"]}),
                    json!({"name": "db", "image": "x", "memory": 64}),
                )),
            ),
            ("ec2 memoryReservation only", ec2(json!({"memory": null, "memoryReservation": 64}))),
            ("ec2 task memory only", ec2_task(json!({"memory": null}), json!({"memory": "1 GB", "cpu": "128"}))),
            ("memory equals reservation", fg(json!({"memory": 512, "memoryReservation": 512}))),
            ("container cpu equals task", fg(json!({"cpu": 256}))),
            (
                "windows at 1 vCPU",
                fgt(
                    json!({"cpu": "1024", "memory": "2048", "runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE", "cpuArchitecture": "X86_64"}}),
                ),
            ),
            (
                "managed instances",
                ec2t(json!({"requiresCompatibilities": ["MANAGED_INSTANCES"], "networkMode": "awsvpc"})),
            ),
            ("tags", fgt(json!({"tags": [{"key": "Name", "value": ""}, {"key": "cost-center", "value": "42"}]}))),
            ("image digest", fg(json!({"image": format!("{ECR_IMAGE}@sha256:{}", "a".repeat(64))}))),
            ("image hash sign", fg(json!({"image": "registry.local:5000/team/app:v1#build"}))),
        ];
        for (name, request) in cases {
            if let Err(e) = register(request) {
                panic!("{name}: refused: {e}");
            }
        }
    }

    #[test]
    fn firelens_and_secrets_attributes() {
        let request = fgt(json!({
            "taskRoleArn": TASK_ROLE,
            "volumes": [{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1",
                "transitEncryption": "ENABLED", "authorizationConfig": {"iam": "ENABLED"}}}],
            "containerDefinitions": [
                {"name": "router", "image": ECR_IMAGE, "firelensConfiguration": {"type": "fluentbit"}, "essential": true},
                {"name": "app", "image": "nginx",
                 "logConfiguration": {"logDriver": "awsfirelens", "options": {"Name": "cloudwatch"}},
                 "secrets": [{"name": "A", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:a"},
                             {"name": "B", "valueFrom": "/app/b"}],
                 "environmentFiles": [{"type": "s3", "value": "arn:aws:s3:::bucket/app.env"}],
                 "mountPoints": [{"sourceVolume": "d", "containerPath": "/d"}]}
            ]
        }));
        let v = registered(request);
        assert_eq!(
            attribute_names(&v),
            vec![
                "ecs.capability.efsAuth",
                "com.amazonaws.ecs.capability.ecr-auth",
                "com.amazonaws.ecs.capability.docker-remote-api.1.19",
                "com.amazonaws.ecs.capability.logging-driver.awsfirelens",
                "ecs.capability.efs",
                "com.amazonaws.ecs.capability.task-iam-role",
                "ecs.capability.firelens.fluentbit",
                "ecs.capability.execution-role-ecr-pull",
                "ecs.capability.secrets.ssm.environment-variables",
                "ecs.capability.secrets.asm.environment-variables",
                "ecs.capability.env-files.s3",
                "com.amazonaws.ecs.capability.docker-remote-api.1.18",
                "ecs.capability.task-eni",
            ]
        );
        // The volume is returned as given: ECS fills nothing in volumes.
        assert_eq!(
            v["volumes"],
            json!([{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1",
                "transitEncryption": "ENABLED", "authorizationConfig": {"iam": "ENABLED"}}}])
        );
    }

    #[test]
    fn ecr_hosts() {
        assert!(is_ecr_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1"));
        assert!(is_ecr_image("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/web"));
        assert!(is_ecr_image("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/web"));
        assert!(!is_ecr_image("public.ecr.aws/nginx/nginx"));
        assert!(!is_ecr_image("nginx:latest"));
        assert!(!is_ecr_image("12345.dkr.ecr.us-east-1.amazonaws.com/web"));
        assert!(!is_ecr_image("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io/web"));
    }

    #[test]
    fn decoding_refuses_what_the_model_does_not_allow() {
        let valid = fg(json!({}));
        assert!(serde_json::from_value::<RegisterTaskDefinitionRequest>(valid).is_ok());
        let cases: Vec<(&str, Value)> = vec![
            ("unknown top-level member", fgt(json!({"bogus": 1}))),
            ("wrong case member", fgt(json!({"NetworkMode": "awsvpc"}))),
            ("read-only member on input", fgt(json!({"revision": 3}))),
            ("unknown container member", fg(json!({"memoryLimit": 512}))),
            ("unknown port mapping member", fg(json!({"portMappings": [{"containerPort": 80, "hostport": 80}]}))),
            ("unknown log member", fg(json!({"logConfiguration": {"logDriver": "awslogs", "option": {}}}))),
            ("unknown health check member", fg(json!({"healthCheck": {"command": ["CMD", "true"], "grace": 1}}))),
            ("unknown volume member", fgt(json!({"volumes": [{"name": "d", "efs": {}}]}))),
            ("sizeInGib spelling", fgt(json!({"ephemeralStorage": {"sizeInGib": 30}}))),
            ("unknown tag member", fgt(json!({"tags": [{"Key": "a", "Value": "b"}]}))),
            ("bad network mode", fgt(json!({"networkMode": "bridged"}))),
            ("lowercase compatibility", fgt(json!({"requiresCompatibilities": ["fargate"]}))),
            ("bad protocol", fg(json!({"portMappings": [{"containerPort": 80, "protocol": "sctp"}]}))),
            ("bad log driver", fg(json!({"logConfiguration": {"logDriver": "awslogs2"}}))),
            ("bad ulimit", fg(json!({"ulimits": [{"name": "files", "softLimit": 1, "hardLimit": 1}]}))),
            ("bad condition", fg(json!({"dependsOn": [{"containerName": "x", "condition": "READY"}]}))),
            ("bad pid mode", fgt(json!({"pidMode": "container"}))),
            ("bad architecture", fgt(json!({"runtimePlatform": {"cpuArchitecture": "x86_64"}}))),
            ("memory above i32", fg(json!({"memory": 2_147_483_648_i64}))),
            ("port above i32", fg(json!({"portMappings": [{"containerPort": 10_000_000_000_i64}]}))),
            ("fractional cpu", fg(json!({"cpu": 0.5}))),
            ("numeric task cpu", fgt(json!({"cpu": 256}))),
            ("string essential", fg(json!({"essential": "true"}))),
            ("missing family", fgt(json!({"family": null}))),
            ("missing containers", fgt(json!({"containerDefinitions": null}))),
            ("missing log driver", fg(json!({"logConfiguration": {"options": {}}}))),
            ("missing health command", fg(json!({"healthCheck": {"interval": 5}}))),
            ("missing ulimit limit", fg(json!({"ulimits": [{"name": "nofile", "softLimit": 1}]}))),
            ("missing dependency condition", fg(json!({"dependsOn": [{"containerName": "x"}]}))),
            ("missing tag key", fgt(json!({"tags": [{"value": "b"}]}))),
        ];
        for (name, request) in cases {
            assert!(serde_json::from_value::<RegisterTaskDefinitionRequest>(request).is_err(), "{name}: decoded");
        }
        // Stored task definitions are just as strict.
        assert!(serde_json::from_value::<TaskDefinition>(json!({"family": "x", "tags": []})).is_err());
        assert!(serde_json::from_value::<TaskDefinition>(json!({"status": "DELETED"})).is_err());
    }

    #[test]
    fn decode_error_names_the_member_through_the_json_layer() {
        let body = serde_json::to_vec(&fg(json!({"portMappings": [{"containerPort": 80, "protocol": "sctp"}]})))
            .expect("encodes");
        let e = skiff_proto::json::decode::<RegisterTaskDefinitionRequest>(&body, "ClientException").unwrap_err();
        assert!(e.message.contains("containerDefinitions[0].portMappings[0].protocol"), "{}", e.message);
        assert!(e.message.contains("sctp"), "{}", e.message);
    }
}
