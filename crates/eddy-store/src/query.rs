//! Queries: a DataFusion schema over the store's tables, case-insensitive names, JSON results.
//!
//! DataFusion's identifier normalization is off (so column names keep their case) and the
//! SQL text is rewritten first: each unquoted identifier that matches a table, a column or a
//! `AS` alias ignoring case is replaced by that name's stored spelling.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int64Type, SchemaRef, TimeUnit, TimestampNanosecondType,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::union::UnionExec;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use serde_json::Value;

use crate::rows::format_timestamp;
use crate::store::Tables;
use crate::table::Snapshot;
use crate::{QueryResult, StoreError};

/// The `public` schema: every store table, resolved ignoring case.
#[derive(Debug)]
pub(crate) struct StoreSchema {
    pub tables: Tables,
}

#[async_trait]
impl SchemaProvider for StoreSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables
            .read()
            .values()
            .map(|t| t.name.clone())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let table = self.tables.read().get(&name.to_lowercase()).cloned();
        Ok(table.map(|t| Arc::new(SnapshotTable(t.snapshot())) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.read().contains_key(&name.to_lowercase())
    }
}

/// A table as of the moment the query planned it.
#[derive(Debug)]
struct SnapshotTable(Snapshot);

#[async_trait]
impl TableProvider for SnapshotTable {
    fn schema(&self) -> SchemaRef {
        self.0.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let Snapshot {
            schema,
            batches,
            files,
        } = &self.0;
        let mut plans: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !files.is_empty() {
            let urls = files
                .iter()
                .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
                .collect::<Result<Vec<_>, _>>()?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options)
                .with_schema(schema.clone());
            plans.push(
                ListingTable::try_new(config)?
                    .scan(state, projection, filters, limit)
                    .await?,
            );
        }
        if !batches.is_empty() || plans.is_empty() {
            plans.push(MemorySourceConfig::try_new_exec(
                std::slice::from_ref(batches),
                schema.clone(),
                projection.cloned(),
            )?);
        }
        UnionExec::try_new(plans)
    }
}

/// DataFusion's words for a failed query, without the `SQL error: ParserError("…")` wrapping
/// of a syntax error that `StoreError::Sql` would print twice.
pub(crate) fn sql_error(e: DataFusionError) -> StoreError {
    match e.find_root() {
        DataFusionError::SQL(parse, _) => match parse.as_ref() {
            ParserError::ParserError(message) | ParserError::TokenizerError(message) => {
                StoreError::Sql(format!("syntax error: {message}"))
            }
            other => StoreError::Sql(other.to_string()),
        },
        _ => StoreError::Sql(e.to_string()),
    }
}

/// Rewrites unquoted identifiers to the stored spelling of the name they match ignoring case.
/// `names` maps lowercase to stored spelling; `AS` aliases in `sql` are added to it.
pub(crate) fn canonicalize_identifiers(
    sql: &str,
    mut names: HashMap<String, String>,
) -> Result<String, StoreError> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| StoreError::Sql(e.to_string()))?;
    let mut after_as = false;
    for t in &tokens {
        if let Token::Word(w) = &t.token {
            if after_as && w.quote_style.is_none() {
                names
                    .entry(w.value.to_lowercase())
                    .or_insert_with(|| w.value.clone());
            }
            after_as = w.keyword == Keyword::AS;
        } else if !matches!(t.token, Token::Whitespace(_)) {
            after_as = false;
        }
    }
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0usize;
    for t in &tokens {
        let Token::Word(w) = &t.token else { continue };
        if w.quote_style.is_some() {
            continue;
        }
        let Some(stored) = names.get(&w.value.to_lowercase()) else {
            continue;
        };
        if *stored == w.value {
            continue;
        }
        let start = t.span.start;
        let Some(line_start) = usize::try_from(start.line)
            .ok()
            .and_then(|l| line_starts.get(l.wrapping_sub(1)))
        else {
            continue;
        };
        let skip = usize::try_from(start.column).unwrap_or(0).saturating_sub(1);
        let Some(begin) = sql[*line_start..]
            .char_indices()
            .nth(skip)
            .map(|(i, _)| line_start + i)
        else {
            continue;
        };
        let end = begin + w.value.len();
        // Only replace when the source text really is this word (spans are best effort).
        if begin < copied || sql.get(begin..end) != Some(w.value.as_str()) {
            continue;
        }
        out.push_str(&sql[copied..begin]);
        out.push_str(stored);
        copied = end;
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

/// Converts result batches to JSON rows.
pub(crate) fn to_result(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<QueryResult, StoreError> {
    let columns = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows = Vec::new();
    for batch in batches {
        let mut out: Vec<Vec<Value>> =
            vec![Vec::with_capacity(batch.num_columns()); batch.num_rows()];
        for column in batch.columns() {
            for (row, value) in out.iter_mut().zip(column_values(column)?) {
                row.push(value);
            }
        }
        rows.extend(out);
    }
    Ok(QueryResult { columns, rows })
}

fn column_values(column: &ArrayRef) -> Result<Vec<Value>, StoreError> {
    let err = |e: datafusion::arrow::error::ArrowError| StoreError::Data(e.to_string());
    let n = column.len();
    let values = match column.data_type() {
        DataType::Null => vec![Value::Null; n],
        DataType::Boolean => column
            .as_boolean()
            .iter()
            .map(|v| v.map_or(Value::Null, Value::Bool))
            .collect(),
        t if t.is_integer() => {
            let c = cast(column, &DataType::Int64).map_err(err)?;
            c.as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map_or(Value::Null, Value::from))
                .collect()
        }
        t if t.is_floating() => {
            let c = cast(column, &DataType::Float64).map_err(err)?;
            c.as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.map_or(Value::Null, Value::from))
                .collect()
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let c = cast(column, &DataType::Utf8).map_err(err)?;
            c.as_string::<i32>()
                .iter()
                .map(|v| v.map_or(Value::Null, Value::from))
                .collect()
        }
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
            let c = cast(column, &DataType::Timestamp(TimeUnit::Nanosecond, None)).map_err(err)?;
            c.as_primitive::<TimestampNanosecondType>()
                .iter()
                .map(|v| v.map_or(Value::Null, |ns| Value::String(format_timestamp(ns))))
                .collect()
        }
        _ => {
            let f =
                ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default()).map_err(err)?;
            (0..n)
                .map(|i| {
                    if column.is_null(i) {
                        Value::Null
                    } else {
                        Value::String(f.value(i).to_string())
                    }
                })
                .collect()
        }
    };
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> HashMap<String, String> {
        [("tollcounts", "TollCounts"), ("tollid", "TollId")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn identifiers_take_the_stored_spelling_but_literals_and_quotes_do_not() {
        let sql = "SELECT tollid, 'tollid é' AS Label,\n  \"tollid\" FROM TOLLCOUNTS -- tollid\nORDER BY label";
        let want = "SELECT TollId, 'tollid é' AS Label,\n  \"tollid\" FROM TollCounts -- tollid\nORDER BY Label";
        assert_eq!(canonicalize_identifiers(sql, names()).unwrap(), want);
    }

    #[test]
    fn identifiers_after_multibyte_text_are_placed_correctly() {
        let sql = "SELECT 'ünïcödé', tollid FROM tollcounts";
        let want = "SELECT 'ünïcödé', TollId FROM TollCounts";
        assert_eq!(canonicalize_identifiers(sql, names()).unwrap(), want);
    }

    #[test]
    fn unterminated_string_is_a_sql_error() {
        assert!(matches!(
            canonicalize_identifiers("SELECT 'x", names()),
            Err(StoreError::Sql(_))
        ));
    }
}
