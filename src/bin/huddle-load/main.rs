//! `huddle-load`: the load harness (see `huddle::load` and `docs/PERFORMANCE.md`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || matches!(args[0].as_str(), "--help" | "-h" | "help") {
        print!("{}", huddle::load::USAGE);
        return ExitCode::SUCCESS;
    }
    let options = match huddle::load::Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("huddle-load: {e}\nrun `huddle-load --help` for usage");
            return ExitCode::from(2);
        }
    };
    match huddle::load::run(&options) {
        Ok(_) if options.worker.is_some() => ExitCode::SUCCESS,
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
