//! Query results for people (aligned table) and for programs (NDJSON, CSV).

use clap::ValueEnum;
use serde_json::Value;

/// How `eddy query` prints a result.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Format {
    /// Aligned columns with a header and a row count.
    #[default]
    Table,
    /// One JSON object per row, columns in order.
    Json,
    /// RFC 4180 CSV with a header line.
    Csv,
}

/// A query result as every backend returns it.
#[derive(Debug, serde::Deserialize)]
pub struct ResultSet {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    /// The result printed in `format`, ending with a newline unless empty.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => self.table(),
            Format::Json => self.json(),
            Format::Csv => self.csv(),
        }
    }

    fn table(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(text).collect())
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line =
            |fields: Vec<String>| format!("{}\n", format!(" {}", fields.join(" | ")).trim_end());
        let header = self
            .columns
            .iter()
            .zip(&widths)
            .map(|(name, &width)| format!("{name:<width$}"))
            .collect();
        let mut out = line(header);
        out.push_str(
            &widths
                .iter()
                .map(|&width| "-".repeat(width + 2))
                .collect::<Vec<_>>()
                .join("+"),
        );
        out.push('\n');
        for (row, values) in cells.iter().zip(&self.rows) {
            let fields = row
                .iter()
                .zip(values)
                .zip(&widths)
                .map(|((cell, value), &width)| match value {
                    Value::Number(_) => format!("{cell:>width$}"),
                    _ => format!("{cell:<width$}"),
                })
                .collect();
            out.push_str(&line(fields));
        }
        let count = self.rows.len();
        out.push_str(&format!(
            "({count} row{})\n",
            if count == 1 { "" } else { "s" }
        ));
        out
    }

    fn json(&self) -> String {
        let mut out = String::new();
        for row in &self.rows {
            let fields: Vec<String> = self
                .columns
                .iter()
                .zip(row)
                .map(|(name, value)| format!("{}:{value}", Value::from(name.as_str())))
                .collect();
            out.push_str(&format!("{{{}}}\n", fields.join(",")));
        }
        out
    }

    fn csv(&self) -> String {
        let mut out = csv_line(self.columns.iter().map(String::as_str));
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|v| if v.is_null() { String::new() } else { text(v) })
                .collect();
            out.push_str(&csv_line(cells.iter().map(String::as_str)));
        }
        out
    }
}

/// A value as a person reads it: strings bare, NULL spelled out, the rest as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = fields
        .map(|field| {
            if field.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field.to_string()
            }
        })
        .collect();
    format!("{}\r\n", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> ResultSet {
        ResultSet {
            columns: vec!["Segment".into(), "n".into(), "note".into()],
            rows: vec![
                vec![json!("seg-01"), json!(5), json!(null)],
                vec![json!("s2"), json!(12.5), json!("a,\"b\"")],
            ],
        }
    }

    #[test]
    fn table_aligns_columns_and_right_aligns_numbers() {
        let expected = " Segment | n    | note\n\
                        ---------+------+-------\n \
                        seg-01  |    5 | NULL\n \
                        s2      | 12.5 | a,\"b\"\n\
                        (2 rows)\n";
        assert_eq!(sample().render(Format::Table), expected);
    }

    #[test]
    fn json_keeps_column_order() {
        assert_eq!(
            sample().render(Format::Json),
            "{\"Segment\":\"seg-01\",\"n\":5,\"note\":null}\n{\"Segment\":\"s2\",\"n\":12.5,\"note\":\"a,\\\"b\\\"\"}\n"
        );
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(
            sample().render(Format::Csv),
            "Segment,n,note\r\nseg-01,5,\r\ns2,12.5,\"a,\"\"b\"\"\"\r\n"
        );
    }
}
