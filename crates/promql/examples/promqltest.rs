//! Runs promqltest scripts: `cargo run -p hypnos-promql --example promqltest -- FILE...`
//! (the same runner as `hypnos tools promqltest`).

fn main() -> std::process::ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout().lock();
    match hypnos_promql::promqltest::run_files(&files, &mut out) {
        Ok((_, 0)) => std::process::ExitCode::SUCCESS,
        _ => std::process::ExitCode::FAILURE,
    }
}
