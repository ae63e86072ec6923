//! A CSV file as cells: the table read from it (`csv_reader.rs` reads it) and what a cell
//! means (missing, a number), shared by the reader, the header rule and the column coder.

/// Cells read as a missing value (pandas' defaults that matter in practice).
pub(crate) const MISSING: [&str; 7] = ["", "NA", "N/A", "NaN", "nan", "null", "?"];

pub(crate) fn is_missing(cell: &str) -> bool {
    MISSING.contains(&cell)
}

/// A finite number.
pub(crate) fn is_number(cell: &str) -> bool {
    cell.parse::<f64>().is_ok_and(f64::is_finite)
}

/// A CSV file split into its header and data rows, with the notes reading it produced.
pub(crate) struct Table {
    pub name: String,
    /// Column names as the header gives them (duplicates made unique), if it has one.
    pub header: Option<Vec<String>>,
    /// The header as written (for refusing an ambiguous label name).
    pub raw_header: Option<Vec<String>>,
    pub header_line: u64,
    pub rows: Vec<(u64, Vec<String>)>,
    pub notes: Vec<String>,
    /// Each column's 0-based position in the file as written (columns dropped as empty
    /// shift the others).
    pub original: Vec<usize>,
}
