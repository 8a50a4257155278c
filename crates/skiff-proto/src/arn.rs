//! Amazon Resource Names as Skiff emits and accepts them (long format, the current AWS default).

/// A parsed ARN: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Parses an ARN; `None` when `s` is not one.
    pub fn parse(s: &'a str) -> Option<Arn<'a>> {
        let mut parts = s.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let arn = Arn {
            partition: parts.next()?,
            service: parts.next()?,
            region: parts.next()?,
            account: parts.next()?,
            resource: parts.next()?,
        };
        if arn.partition.is_empty() || arn.service.is_empty() || arn.resource.is_empty() {
            return None;
        }
        Some(arn)
    }

    /// The resource type and the rest: `cluster/name` → (`cluster`, `name`).
    pub fn resource_type(&self) -> (&'a str, &'a str) {
        match self.resource.split_once('/') {
            Some((t, rest)) => (t, rest),
            None => (self.resource, ""),
        }
    }
}

/// Where ARNs are minted: the region and account the server runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    pub region: String,
    pub account: String,
}

impl ArnScope {
    pub fn ecs(&self, resource: &str) -> String {
        format!("arn:aws:ecs:{}:{}:{}", self.region, self.account, resource)
    }

    pub fn iam(&self, resource: &str) -> String {
        format!("arn:aws:iam::{}:{}", self.account, resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ecs_arns() {
        let a = Arn::parse("arn:aws:ecs:us-east-1:123456789012:task-definition/web:3").unwrap();
        assert_eq!(a.service, "ecs");
        assert_eq!(a.resource_type(), ("task-definition", "web:3"));
        assert!(Arn::parse("web:3").is_none());
        assert!(Arn::parse("arn:aws:ecs").is_none());
    }
}
