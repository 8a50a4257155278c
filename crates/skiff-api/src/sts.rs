//! STS: who am I.

use crate::context::Ctx;
use skiff_proto::query::{escape, QueryParams};
use skiff_proto::ApiError;

pub async fn get_caller_identity(ctx: &Ctx, _params: QueryParams) -> Result<String, ApiError> {
    let c = &ctx.caller;
    Ok(format!(
        "<Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>",
        escape(&c.arn),
        escape(&c.user_id),
        escape(&c.account)
    ))
}
