//! MED cautionary blocks (migration 0018): one per infraction report against a Pix a customer
//! received. The state is stored in columns and read back only as a [`BlockState`]; every write
//! is by version, so two writers never both move a block.

use chrono::{DateTime, Utc};
use pix_core::med::{BlockColumns, BlockState, BlockStatus};
use uuid::Uuid;

use crate::{Store, StoreError, StoreResult, Tx, on_pool, on_tx};

#[derive(Debug, Clone, PartialEq)]
pub struct CautionaryBlock {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The cash-in reported.
    pub transfer_id: Uuid,
    pub end_to_end_id: String,
    /// The Midaz alias of the account it credited: the block is held there.
    pub account_alias: String,
    pub infraction_report_id: Uuid,
    /// Centavos the report asked to block.
    pub requested_amount: i64,
    pub state: BlockState,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CautionaryBlock {
    pub fn status(&self) -> BlockStatus {
        self.state.status()
    }
}

const BLOCK_COLUMNS: &str = "id, tenant_id, transfer_id, end_to_end_id, account_alias, infraction_report_id, \
    requested_amount, amount, status, attempt, hold_tx_id, refund_id, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct BlockRow {
    #[sqlx(try_from = "String")]
    id: Uuid,
    #[sqlx(try_from = "String")]
    tenant_id: Uuid,
    #[sqlx(try_from = "String")]
    transfer_id: Uuid,
    end_to_end_id: String,
    account_alias: String,
    #[sqlx(try_from = "String")]
    infraction_report_id: Uuid,
    requested_amount: i64,
    amount: Option<i64>,
    status: BlockStatus,
    attempt: i32,
    hold_tx_id: Option<String>,
    refund_id: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<BlockRow> for CautionaryBlock {
    type Error = StoreError;
    fn try_from(r: BlockRow) -> StoreResult<CautionaryBlock> {
        let refund_id = r.refund_id.as_deref().map(crate::parse_uuid).transpose()?;
        let columns = BlockColumns {
            status: r.status,
            amount: r.amount,
            attempt: r.attempt,
            hold_tx_id: r.hold_tx_id,
            refund_id,
        };
        let state = BlockState::from_columns(columns)
            .map_err(|e| StoreError::Corrupt(format!("cautionary block {}: {e}", r.id)))?;
        Ok(CautionaryBlock {
            id: r.id,
            tenant_id: r.tenant_id,
            transfer_id: r.transfer_id,
            end_to_end_id: r.end_to_end_id,
            account_alias: r.account_alias,
            infraction_report_id: r.infraction_report_id,
            requested_amount: r.requested_amount,
            state,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// The final statuses as an SQL list, from the enum.
fn final_statuses() -> String {
    let quoted: Vec<String> =
        BlockStatus::ALL.iter().filter(|s| s.is_final()).map(|s| format!("'{}'", s.as_str())).collect();
    quoted.join(", ")
}

fn blocks(rows: Vec<BlockRow>) -> StoreResult<Vec<CautionaryBlock>> {
    rows.into_iter().map(CautionaryBlock::try_from).collect()
}

/// Inserts a block; `false` when the report already has one (a redelivered report).
pub async fn insert_block(tx: &mut Tx, b: &CautionaryBlock) -> StoreResult<bool> {
    let sql = format!(
        "INSERT INTO cautionary_blocks ({BLOCK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
         $13, $14, $15) ON CONFLICT (tenant_id, infraction_report_id) DO NOTHING"
    );
    let c = b.state.columns();
    let done = on_tx!(tx, conn => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(b.id.to_string())
            .bind(b.tenant_id.to_string())
            .bind(b.transfer_id.to_string())
            .bind(&b.end_to_end_id)
            .bind(&b.account_alias)
            .bind(b.infraction_report_id.to_string())
            .bind(b.requested_amount)
            .bind(c.amount)
            .bind(c.status)
            .bind(c.attempt)
            .bind(&c.hold_tx_id)
            .bind(c.refund_id.map(|r| r.to_string()))
            .bind(b.version)
            .bind(b.created_at)
            .bind(b.updated_at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Writes the state of `b` if nobody moved the row since it was read (its `version`); `false`
/// when the row moved on.
pub async fn save_block(tx: &mut Tx, b: &CautionaryBlock) -> StoreResult<bool> {
    let c = b.state.columns();
    let done = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE cautionary_blocks SET amount = $3, status = $4, attempt = $5, hold_tx_id = $6, refund_id = $7,
                 updated_at = $8, version = version + 1
             WHERE tenant_id = $1 AND id = $2 AND version = $9",
        )
        .bind(b.tenant_id.to_string())
        .bind(b.id.to_string())
        .bind(c.amount)
        .bind(c.status)
        .bind(c.attempt)
        .bind(&c.hold_tx_id)
        .bind(c.refund_id.map(|r| r.to_string()))
        .bind(b.updated_at)
        .bind(b.version)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// The blocks not yet final on a payment (`end_to_end_id`), read inside `tx`, oldest first.
pub async fn live_blocks_of_payment(
    tx: &mut Tx,
    tenant: Uuid,
    end_to_end_id: &str,
) -> StoreResult<Vec<CautionaryBlock>> {
    let sql = format!(
        "SELECT {BLOCK_COLUMNS} FROM cautionary_blocks
         WHERE tenant_id = $1 AND end_to_end_id = $2 AND status NOT IN ({})
         ORDER BY created_at, id",
        final_statuses()
    );
    let rows: Vec<BlockRow> = on_tx!(tx, conn => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant.to_string()).bind(end_to_end_id).fetch_all(conn).await
    })?;
    blocks(rows)
}

/// The block of an infraction report, read inside `tx`.
pub async fn block_of_report_in(tx: &mut Tx, tenant: Uuid, report: Uuid) -> StoreResult<Option<CautionaryBlock>> {
    let sql =
        format!("SELECT {BLOCK_COLUMNS} FROM cautionary_blocks WHERE tenant_id = $1 AND infraction_report_id = $2");
    let row: Option<BlockRow> = on_tx!(tx, conn => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant.to_string()).bind(report.to_string()).fetch_optional(conn).await
    })?;
    row.map(CautionaryBlock::try_from).transpose()
}

impl Store {
    pub async fn cautionary_block(&self, tenant: Uuid, id: Uuid) -> StoreResult<Option<CautionaryBlock>> {
        let sql = format!("SELECT {BLOCK_COLUMNS} FROM cautionary_blocks WHERE tenant_id = $1 AND id = $2");
        let row: Option<BlockRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant.to_string()).bind(id.to_string()).fetch_optional(pool).await
        })?;
        row.map(CautionaryBlock::try_from).transpose()
    }

    pub async fn cautionary_block_of_report(&self, tenant: Uuid, report: Uuid) -> StoreResult<Option<CautionaryBlock>> {
        let sql =
            format!("SELECT {BLOCK_COLUMNS} FROM cautionary_blocks WHERE tenant_id = $1 AND infraction_report_id = $2");
        let row: Option<BlockRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant.to_string()).bind(report.to_string()).fetch_optional(pool).await
        })?;
        row.map(CautionaryBlock::try_from).transpose()
    }

    /// The blocks on any of `transfers` (a page of transfers), oldest first.
    pub async fn cautionary_blocks_of_transfers(
        &self,
        tenant: Uuid,
        transfers: &[Uuid],
    ) -> StoreResult<Vec<CautionaryBlock>> {
        if transfers.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (2..transfers.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {BLOCK_COLUMNS} FROM cautionary_blocks WHERE tenant_id = $1 AND transfer_id IN ({})
             ORDER BY created_at, id",
            placeholders.join(", ")
        );
        let rows: Vec<BlockRow> = on_pool!(self.db(), pool => {
            let mut q = sqlx::query_as::<_, BlockRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant.to_string());
            for t in transfers {
                q = q.bind(t.to_string());
            }
            q.fetch_all(pool).await
        })?;
        blocks(rows)
    }
}
