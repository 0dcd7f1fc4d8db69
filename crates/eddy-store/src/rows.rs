//! Schema inference: rows → one Arrow batch, and widening of column types as tables evolve.
//!
//! Column identity is case-insensitive (a table keeps the case first written); the type of
//! a column is the merge of its cells' types: Null merges with anything, Int with Float
//! gives Float, any other mix gives String (text of each value).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, NullArray, StringArray,
    TimestampNanosecondArray, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::{Cell, Row, StoreError};

/// Arrow type of a timestamp column: nanoseconds, UTC.
pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// Formats nanoseconds since the epoch the way ASA prints datetimes.
pub(crate) fn format_timestamp(ns: i64) -> String {
    let seconds = chrono::DateTime::from_timestamp_nanos(ns).format("%Y-%m-%dT%H:%M:%S");
    format!("{seconds}.{:07}Z", ns.rem_euclid(1_000_000_000) / 100)
}

/// The type name shown in [`crate::TableInfo`].
pub(crate) fn type_name(t: &DataType) -> &'static str {
    match t {
        DataType::Null => "null",
        DataType::Boolean => "bool",
        DataType::Int64 => "bigint",
        DataType::Float64 => "float",
        DataType::Timestamp(..) => "timestamp",
        _ => "string",
    }
}

fn cell_type(cell: &Cell) -> DataType {
    match cell {
        Cell::Null => DataType::Null,
        Cell::Bool(_) => DataType::Boolean,
        Cell::Int(_) => DataType::Int64,
        Cell::Float(_) => DataType::Float64,
        Cell::Str(_) | Cell::Json(_) => DataType::Utf8,
        Cell::Timestamp(_) => timestamp_type(),
    }
}

/// The type a column takes when it has held values of types `a` and `b`.
pub(crate) fn merge_type(a: &DataType, b: &DataType) -> DataType {
    match (a, b) {
        _ if a == b => a.clone(),
        (DataType::Null, x) | (x, DataType::Null) => x.clone(),
        (DataType::Int64, DataType::Float64) | (DataType::Float64, DataType::Int64) => {
            DataType::Float64
        }
        _ => DataType::Utf8,
    }
}

fn cell_text(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Null => None,
        Cell::Bool(b) => Some(b.to_string()),
        Cell::Int(i) => Some(i.to_string()),
        Cell::Float(f) => Some(match serde_json::Number::from_f64(*f) {
            Some(n) => n.to_string(),
            None => f.to_string(),
        }),
        Cell::Str(s) | Cell::Json(s) => Some(s.clone()),
        Cell::Timestamp(ns) => Some(format_timestamp(*ns)),
    }
}

/// Builds one batch from `rows`; columns in first-seen order, types inferred from the cells.
pub(crate) fn rows_to_batch(rows: &[Row]) -> Result<RecordBatch, StoreError> {
    let n = rows.len();
    let mut names: Vec<&str> = Vec::new();
    let mut types: Vec<DataType> = Vec::new();
    let mut cells: Vec<Vec<Option<&Cell>>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (r, row) in rows.iter().enumerate() {
        for (name, cell) in row {
            let i = *index.entry(name.to_lowercase()).or_insert_with(|| {
                names.push(name);
                types.push(DataType::Null);
                cells.push(vec![None; n]);
                names.len() - 1
            });
            if cells[i][r].is_some() {
                return Err(StoreError::Invalid(format!(
                    "row {r} has column {name} twice"
                )));
            }
            cells[i][r] = Some(cell);
            types[i] = merge_type(&types[i], &cell_type(cell));
        }
    }
    let fields: Vec<Field> = names
        .iter()
        .zip(&types)
        .map(|(name, t)| Field::new(*name, t.clone(), true))
        .collect();
    let columns: Vec<ArrayRef> = cells
        .iter()
        .zip(&types)
        .map(|(c, t)| build_column(c, t))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let options = RecordBatchOptions::new().with_row_count(Some(n));
    RecordBatch::try_new_with_options(schema, columns, &options)
        .map_err(|e| StoreError::Data(e.to_string()))
}

/// Builds a column of type `t`; `t` is the merge of the cells' types, so every non-null
/// cell converts (a cell that does not is read as NULL rather than failing the write).
fn build_column(cells: &[Option<&Cell>], t: &DataType) -> ArrayRef {
    match t {
        DataType::Boolean => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Some(Cell::Bool(b)) => Some(*b),
                    _ => None,
                })
                .collect::<BooleanArray>(),
        ),
        DataType::Int64 => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Some(Cell::Int(i)) => Some(*i),
                    _ => None,
                })
                .collect::<Int64Array>(),
        ),
        DataType::Float64 => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Some(Cell::Float(f)) => Some(*f),
                    Some(Cell::Int(i)) => Some(*i as f64),
                    _ => None,
                })
                .collect::<Float64Array>(),
        ),
        DataType::Timestamp(..) => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Some(Cell::Timestamp(ns)) => Some(*ns),
                    _ => None,
                })
                .collect::<TimestampNanosecondArray>()
                .with_timezone("UTC"),
        ),
        DataType::Utf8 => Arc::new(
            cells
                .iter()
                .map(|c| c.and_then(cell_text))
                .collect::<StringArray>(),
        ),
        _ => Arc::new(NullArray::new(cells.len())),
    }
}

/// Merges `incoming` into `table` (case-insensitive names); `None` when nothing changes.
pub(crate) fn merge_schema(table: &Schema, incoming: &Schema) -> Option<SchemaRef> {
    let mut fields: Vec<Field> = table.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut changed = false;
    for f in incoming.fields() {
        match fields
            .iter_mut()
            .find(|t| t.name().to_lowercase() == f.name().to_lowercase())
        {
            Some(t) => {
                let merged = merge_type(t.data_type(), f.data_type());
                if &merged != t.data_type() {
                    *t = Field::new(t.name(), merged, true);
                    changed = true;
                }
            }
            None => {
                fields.push(Field::new(f.name(), f.data_type().clone(), true));
                changed = true;
            }
        }
    }
    changed.then(|| Arc::new(Schema::new(fields)))
}

/// Converts `batch` to `schema`: columns matched by name ignoring case, missing ones NULL,
/// types widened by cast (timestamps to text in the ASA format).
pub(crate) fn adapt(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, StoreError> {
    if batch.schema().as_ref() == schema.as_ref() {
        return Ok(batch.clone());
    }
    let n = batch.num_rows();
    let in_schema = batch.schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let found = in_schema
            .fields()
            .iter()
            .position(|f| f.name().to_lowercase() == field.name().to_lowercase());
        let column = match found {
            None => new_null_array(field.data_type(), n),
            Some(i) => cast_column(batch.column(i), field.data_type())?,
        };
        columns.push(column);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(n));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options)
        .map_err(|e| StoreError::Data(e.to_string()))
}

fn cast_column(column: &ArrayRef, to: &DataType) -> Result<ArrayRef, StoreError> {
    if column.data_type() == to {
        return Ok(column.clone());
    }
    if let (DataType::Timestamp(..), DataType::Utf8) = (column.data_type(), to) {
        let ns = cast(column, &timestamp_type()).map_err(|e| StoreError::Data(e.to_string()))?;
        if let Some(ns) = ns.as_any().downcast_ref::<TimestampNanosecondArray>() {
            return Ok(Arc::new(
                ns.iter()
                    .map(|v| v.map(format_timestamp))
                    .collect::<StringArray>(),
            ));
        }
    }
    cast(column, to).map_err(|e| StoreError::Data(e.to_string()))
}
