//! The region's default VPC, made on the first start: one transaction that writes the VPC, its two
//! subnets, its `default` security group and the region's default-VPC record, on condition that the
//! record is absent. Later starts (and a second server racing the first on the same store) find the record
//! and write nothing, so the ids are made once and stay.

use crate::records::{self, store_error};
use skiff_model::vpc::{default_vpc, keys, DefaultVpcRecord, IdBytes};
use skiff_proto::arn::ArnScope;
use skiff_proto::ApiError;
use skiff_store::{Store, Txn, TxnOutcome};

fn random_id_bytes() -> IdBytes {
    let mut bytes = IdBytes::default();
    if let Err(e) = getrandom::fill(&mut bytes) {
        // Ids need to be unique, not secret: fall back on a fresh v4 UUID's bytes (also OS randomness, but
        // through another path) rather than fail the start.
        tracing::warn!("cannot read the OS's randomness for an EC2 id ({e}); using a UUID");
        bytes.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..9]);
    }
    bytes
}

/// Creates the default VPC of `scope.region` (block `vpc_cidr`, a /16) unless it exists; returns its record
/// either way.
pub async fn ensure_default_vpc(
    store: &dyn Store,
    scope: &ArnScope,
    vpc_cidr: &str,
) -> Result<DefaultVpcRecord, ApiError> {
    let marker = keys::default_vpc(&scope.region);
    for _ in 0..8 {
        if let Some((existing, _)) = records::load::<DefaultVpcRecord>(store, &marker).await? {
            return Ok(existing);
        }
        let made = default_vpc(&scope.region, &scope.account, vpc_cidr, random_id_bytes);
        let mut txn = Txn::new().when(&marker, 0).put(&marker, records::encode(&made.record)?);
        let vpc_key = keys::vpc(&made.vpc.vpc_id);
        txn = txn.when(&vpc_key, 0).put(vpc_key, records::encode(&made.vpc)?);
        for subnet in &made.subnets {
            let key = keys::subnet(&subnet.subnet_id);
            txn = txn.when(&key, 0).put(key, records::encode(subnet)?);
        }
        let sg_key = keys::security_group(&made.security_group.group_id);
        txn = txn.when(&sg_key, 0).put(sg_key, records::encode(&made.security_group)?);
        match store.txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                tracing::info!(
                    region = %scope.region,
                    vpc = %made.record.vpc_id,
                    subnets = ?made.record.subnet_ids,
                    security_group = %made.record.security_group_id,
                    "created the default VPC"
                );
                return Ok(made.record);
            }
            // Another start got there first (or, vanishingly, an id collided): read what is there.
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("cannot create the default VPC of {}: the store kept conflicting", scope.region)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_model::vpc::{SecurityGroup, Subnet, Vpc, DEFAULT_VPC_CIDR};
    use std::sync::Arc;

    fn scope() -> ArnScope {
        ArnScope { region: "us-east-1".into(), account: "123456789012".into() }
    }

    #[tokio::test]
    async fn made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(skiff_store::SqliteStore::open(&dir.path().join("s.db")).unwrap());
        // Concurrent starts: exactly one default VPC.
        let runs = (0..6).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { ensure_default_vpc(store.as_ref(), &scope(), DEFAULT_VPC_CIDR).await.unwrap() })
        });
        let mut got = Vec::new();
        for r in runs {
            got.push(r.await.unwrap());
        }
        assert!(got.windows(2).all(|w| w[0] == w[1]), "{got:?}");
        let again = ensure_default_vpc(store.as_ref(), &scope(), DEFAULT_VPC_CIDR).await.unwrap();
        assert_eq!(again, got[0]);
        let vpcs = records::load_all::<Vpc>(store.as_ref(), keys::VPCS).await.unwrap();
        let subnets = records::load_all::<Subnet>(store.as_ref(), keys::SUBNETS).await.unwrap();
        let groups = records::load_all::<SecurityGroup>(store.as_ref(), keys::SECURITY_GROUPS).await.unwrap();
        assert_eq!((vpcs.len(), subnets.len(), groups.len()), (1, 2, 1));
        assert_eq!(vpcs[0].1.vpc_id, again.vpc_id);

        // Another region gets its own.
        let other = ArnScope { region: "eu-west-1".into(), account: "123456789012".into() };
        let eu = ensure_default_vpc(store.as_ref(), &other, DEFAULT_VPC_CIDR).await.unwrap();
        assert_ne!(eu.vpc_id, again.vpc_id);
    }
}
