//! `huddle-load`: the load harness binary; everything it does lives in the `huddle_load` library
//! (`load/src/lib.rs`), the figures and how to take them in `docs/PERFORMANCE.md`.

use std::process::ExitCode;

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || matches!(args[0].as_str(), "--help" | "-h" | "help") {
        print!("{}", huddle_load::USAGE);
        return ExitCode::SUCCESS;
    }
    let options = match huddle_load::Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("huddle-load: {e}\nrun `huddle-load --help` for usage");
            return ExitCode::from(2);
        }
    };
    match huddle_load::run(&options) {
        // A worker printed its own report line; the floor server prints nothing more.
        Ok(_) if options.worker.is_some() || options.scenario == huddle_load::Scenario::FloorServer => {
            ExitCode::SUCCESS
        }
        Ok(report) => {
            if options.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.table());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("huddle-load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Elsewhere the library is empty (see its crate docs) and the binary says why.
#[cfg(not(target_os = "linux"))]
fn main() -> ExitCode {
    eprintln!("huddle-load: runs on Linux only (it samples the server through /proc and binds many loopback source addresses)");
    ExitCode::FAILURE
}
