// glibc's malloc showed at the top of the post page's profile (many small strings per comment,
// across worker threads); mimalloc keeps per-thread heaps and is markedly faster here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lectern::cli::run()
}
