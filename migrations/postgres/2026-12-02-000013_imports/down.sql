DROP TABLE import_runs;
DROP TABLE old_addresses;
DROP TABLE import_items;
