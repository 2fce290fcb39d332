//! `lectern export --format wordpress`: WXR 1.2.

use std::collections::BTreeMap;
use std::path::Path;

use super::ArchiveError;
use super::progress::Progress;
use crate::db::Db;

pub fn export_file(
    _db: &Db,
    _base: &str,
    _title: &str,
    _path: &Path,
    _progress: &mut dyn Progress,
) -> Result<BTreeMap<String, u64>, ArchiveError> {
    Err(ArchiveError::Io("not yet".into()))
}
