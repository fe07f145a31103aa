//! Output: human tables by default, JSON with `--json`.

use serde::Serialize;

/// A plain text table with left-aligned, space-padded columns.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Add a row (as many cells as headers).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Render with a header line.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        widen(&mut widths, &self.rows);
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let mut out = line(&headers, &widths);
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row, &widths));
            out.push('\n');
        }
        out
    }
}

/// Grow `widths` to fit every cell of `rows`.
fn widen(widths: &mut [usize], rows: &[Vec<String>]) {
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
}

/// One table line: cells padded to `widths`, the last one as it is.
fn line(cells: &[String], widths: &[usize]) -> String {
    let mut s = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i + 1 == cells.len() {
            s.push_str(cell);
        } else {
            s.push_str(&format!("{cell:<width$}  ", width = widths[i]));
        }
    }
    s.trim_end().to_string()
}

/// Print a value as pretty JSON.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `-` for a missing value.
pub fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// Keep the first `limit` items of the list `v` (0 = all) and say on
/// stderr when there were more (`what` names them).
pub fn trim_to_limit(v: &mut serde_json::Value, limit: usize, what: &str) {
    if let Some(items) = v.as_array_mut() {
        if limit > 0 && items.len() > limit {
            items.truncate(limit);
            eprintln!(
                "note: showing the first {limit} {what}; --limit N for more, --limit 0 for all"
            );
        }
    }
}

/// Rows printed per block of a streamed table (column widths only grow
/// from one block to the next).
const STREAM_BLOCK: usize = 1000;

/// Run the streaming list `op` and print its items as they come: a JSON
/// array written item by item with `json`, else a table in blocks of
/// [`STREAM_BLOCK`] rows under one header. Memory stays one block.
pub async fn print_stream(
    backend: &crate::sensorctl::Backend,
    op: &str,
    params: serde_json::Value,
    json: bool,
    headers: &[&'static str],
    row: impl Fn(&serde_json::Value) -> Vec<String>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    let mut block: Vec<Vec<String>> = Vec::new();
    let mut first = true;
    let mut header = true;
    let mut flush = |block: &mut Vec<Vec<String>>, header: &mut bool| -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        widen(&mut widths, block);
        if std::mem::take(header) {
            let h: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
            writeln!(out, "{}", line(&h, &widths))?;
        }
        for r in block.drain(..) {
            writeln!(out, "{}", line(&r, &widths))?;
        }
        out.flush()
    };
    // A closed pipe (`| head`) ends the command quietly.
    let quiet_exit = |r: std::io::Result<()>| {
        if r.is_err() {
            std::process::exit(0);
        }
    };
    backend
        .stream(op, params, |v| {
            if json {
                let mut out = std::io::stdout().lock();
                let sep = if std::mem::take(&mut first) {
                    "[\n  "
                } else {
                    ",\n  "
                };
                quiet_exit(write!(out, "{sep}{}", serde_json::to_string(&v)?));
            } else {
                block.push(row(&v));
                if block.len() >= STREAM_BLOCK {
                    quiet_exit(flush(&mut block, &mut header));
                }
            }
            Ok(())
        })
        .await?;
    if json {
        println!("{}", if first { "[]" } else { "\n]" });
    } else {
        quiet_exit(flush(&mut block, &mut header));
    }
    Ok(())
}
