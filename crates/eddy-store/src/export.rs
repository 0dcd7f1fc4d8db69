//! Rows written as a standalone Parquet file, for captures other engines read in batch.

use std::fs::File;
use std::path::Path;

use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

use crate::rows::rows_to_batch;
use crate::table::sync_dir;
use crate::{Row, StoreError};

/// Writes `rows` to `path` as one Snappy-compressed Parquet file, atomically (a temporary
/// file, fsync, rename, directory fsync): readers see the whole file or none, and a
/// rewrite with the same rows replaces it. Creates the parent directories.
pub fn write_parquet_file(path: &Path, rows: &[Row]) -> Result<(), StoreError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
    let batch = rows_to_batch(rows)?;
    let tmp = path.with_extension("parquet.tmp");
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let data_err =
            |e: datafusion::parquet::errors::ParquetError| StoreError::Data(e.to_string());
        let mut writer =
            ArrowWriter::try_new(&file, batch.schema(), Some(props)).map_err(data_err)?;
        writer.write(&batch).map_err(data_err)?;
        writer.close().map_err(data_err)?;
        file.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    sync_dir(parent)
}
