//! `/admin/import`.
