//! /admin/export.
