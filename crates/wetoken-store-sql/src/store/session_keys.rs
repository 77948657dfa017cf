//! Users' session keys (SPEC §13).

use async_trait::async_trait;
use wetoken_core::domain::AccountId;
use wetoken_core::store::{Sealed, SessionKeyStore, StoreResult};

use super::{SqlStore, work};
use crate::binds;
use crate::columns;
use crate::tx::{Backend, Tx};

#[async_trait]
impl<B: Backend> SessionKeyStore for SqlStore<B> {
    async fn put_session_key(
        &self,
        account: &AccountId,
        openid: &str,
        key: &Sealed,
        expires_at: i64,
    ) -> StoreResult<()> {
        let (account, openid, key) = (account.to_string(), openid.to_owned(), key.as_str().to_owned());
        work!(self, autocommit, |tx, sql| {
            let b = binds![&account, &openid, &key, expires_at];
            tx.execute(sql.upsert_session_key, &b).await.map(drop)
        })
    }

    async fn session_key(&self, account: &AccountId, openid: &str, now: i64) -> StoreResult<Option<Sealed>> {
        let (account, openid) = (account.to_string(), openid.to_owned());
        work!(self, autocommit, |tx, sql| {
            let b = binds![&account, &openid, now];
            let found = tx.optional(sql.select_session_key, &b, columns::text).await?;
            Ok(found.map(Sealed::from_stored))
        })
    }

    async fn purge_session_keys(&self, now: i64, limit: i64) -> StoreResult<u64> {
        work!(self, autocommit, |tx, sql| {
            let batch = tx
                .fetch(sql.session_keys_batch, &binds![now, limit.max(1)], columns::int)
                .await?;
            match batch.last() {
                None => Ok(0),
                Some(&last) => tx.execute(sql.purge_session_keys, &binds![now, last]).await,
            }
        })
    }
}
