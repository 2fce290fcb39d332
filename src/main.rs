fn main() -> std::process::ExitCode {
    lectern::db::configure_sqlite_for_this_process();
    lectern::cli::run()
}
