//! TagResource, UntagResource, ListTagsForResource on repositories
//! (`arn:aws:ecr:REGION:ACCOUNT:repository/NAME`).

use super::repositories::update_repository;
use super::{invalid_parameter, load_repository, repository_not_found, validate_tags, Tag};
use crate::context::Ctx;
use crate::records::Empty;
use serde::{Deserialize, Serialize};
use skiff_model::tag::{merge_tags, remove_tag_keys};
use skiff_proto::arn::Arn;
use skiff_proto::ApiError;

/// The repository a resource ARN names, and its registry. An ARN of another region or account names a
/// repository this registry does not have.
fn repository_of(ctx: &Ctx, arn_text: &str) -> Result<(String, String), ApiError> {
    let invalid = || invalid_parameter("resourceArn", format!("'{arn_text}' is not an ECR repository ARN"));
    let arn = Arn::parse(arn_text).ok_or_else(invalid)?;
    let (kind, name) = arn.resource_type();
    if arn.service != "ecr" || kind != "repository" || name.is_empty() {
        return Err(invalid());
    }
    if arn.region != ctx.scope().region || arn.account != ctx.scope().account {
        return Err(repository_not_found(name, arn.account));
    }
    Ok((name.to_string(), arn.account.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagResourceRequest {
    resource_arn: String,
    tags: Vec<Tag>,
}

pub async fn tag_resource(ctx: &Ctx, req: TagResourceRequest) -> Result<Empty, ApiError> {
    let (name, registry) = repository_of(ctx, &req.resource_arn)?;
    let new: Vec<skiff_model::tag::Tag> = req.tags.into_iter().map(Into::into).collect();
    validate_tags(&new)?;
    update_repository(ctx, &name, &registry, |r| {
        merge_tags(&mut r.record.tags, new.clone());
        validate_tags(&r.record.tags)
    })
    .await?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UntagResourceRequest {
    resource_arn: String,
    tag_keys: Vec<String>,
}

pub async fn untag_resource(ctx: &Ctx, req: UntagResourceRequest) -> Result<Empty, ApiError> {
    let (name, registry) = repository_of(ctx, &req.resource_arn)?;
    skiff_model::tag::validate_tag_keys(&req.tag_keys)
        .map_err(|e| ApiError::client("InvalidTagParameterException", e.message))?;
    update_repository(ctx, &name, &registry, |r| {
        remove_tag_keys(&mut r.record.tags, &req.tag_keys);
        Ok(())
    })
    .await?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListTagsForResourceRequest {
    resource_arn: String,
}

#[derive(Debug, Serialize)]
pub struct ListTagsForResourceResponse {
    tags: Vec<Tag>,
}

pub async fn list_tags_for_resource(
    ctx: &Ctx,
    req: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, ApiError> {
    let (name, registry) = repository_of(ctx, &req.resource_arn)?;
    let (repo, _) = load_repository(ctx, &name, &registry).await?;
    Ok(ListTagsForResourceResponse { tags: repo.record.tags.into_iter().map(Into::into).collect() })
}

#[cfg(test)]
mod tests {
    use super::super::repositories::{create_repository, CreateRepositoryRequest};
    use super::super::testing::{server, ACCOUNT};
    use super::*;

    fn arn(name: &str) -> String {
        format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}")
    }

    #[test]
    fn ecr_tags_have_capitalised_members() {
        let t: Tag = serde_json::from_str(r#"{"Key":"k","Value":"v"}"#).unwrap();
        assert_eq!(skiff_model::tag::Tag::from(t.clone()), skiff_model::tag::Tag::new("k", "v"));
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"Key":"k","Value":"v"}"#);
        assert!(serde_json::from_str::<Tag>(r#"{"key":"k","value":"v"}"#).is_err());
        assert!(serde_json::from_str::<Tag>(r#"{"Key":"k"}"#).is_err(), "Value is required by the model");
    }

    #[tokio::test]
    async fn tags_round_trip() {
        let s = server();
        let ctx = &s.ctx;
        let req: CreateRepositoryRequest = serde_json::from_value(serde_json::json!({
            "repositoryName": "team/web", "tags": [{"Key": "a", "Value": "1"}]
        }))
        .unwrap();
        create_repository(ctx, req).await.unwrap();
        let tag = |k: &str, v: &str| Tag { key: k.into(), value: v.into() };
        tag_resource(
            ctx,
            TagResourceRequest { resource_arn: arn("team/web"), tags: vec![tag("b", "2"), tag("a", "10")] },
        )
        .await
        .unwrap();
        untag_resource(
            ctx,
            UntagResourceRequest { resource_arn: arn("team/web"), tag_keys: vec!["b".into(), "zz".into()] },
        )
        .await
        .unwrap();
        let out =
            list_tags_for_resource(ctx, ListTagsForResourceRequest { resource_arn: arn("team/web") }).await.unwrap();
        assert_eq!(out.tags, vec![tag("a", "10")]);

        let cases = [
            ("arn:aws:ecs:us-east-1:123456789012:cluster/x", "InvalidParameterException"),
            ("not-an-arn", "InvalidParameterException"),
            ("arn:aws:ecr:us-east-1:123456789012:repository/missing", "RepositoryNotFoundException"),
            ("arn:aws:ecr:eu-west-1:123456789012:repository/team/web", "RepositoryNotFoundException"),
            ("arn:aws:ecr:us-east-1:123456789012:repository/Bad", "InvalidParameterException"),
        ];
        for (a, code) in cases {
            let e =
                list_tags_for_resource(ctx, ListTagsForResourceRequest { resource_arn: a.into() }).await.unwrap_err();
            assert_eq!(e.code, code, "{a}");
        }
        let e = tag_resource(ctx, TagResourceRequest { resource_arn: arn("team/web"), tags: vec![tag("aws:x", "")] })
            .await
            .unwrap_err();
        assert_eq!(e.code, "InvalidTagParameterException");
        let many = (0..50).map(|i| tag(&format!("k{i}"), "")).collect();
        let e = tag_resource(ctx, TagResourceRequest { resource_arn: arn("team/web"), tags: many }).await.unwrap_err();
        assert_eq!(e.code, "TooManyTagsException", "50 new plus the existing one");
    }
}
