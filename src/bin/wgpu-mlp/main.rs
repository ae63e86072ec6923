//! `wgpu-mlp`: train, tune and use multilayer perceptrons on any GPU from the command line.
//!
//! ```text
//! wgpu-mlp fit DATA.csv [options]      cross-validated search, refit, test score, saved model
//! wgpu-mlp predict MODEL DATA.csv      predictions as CSV
//! wgpu-mlp info                        the adapters, the one chosen, its limits
//! ```
//!
//! Exit status: 0 done, 1 bad input or a failure (the message on stderr), 2 a usage error.
#![warn(clippy::too_many_lines)]

mod checks;
mod curves;
mod export;
mod fit;
mod fit_steps;
mod info;
mod messages;
mod predict;
mod progress;
mod table;

use clap::{Arg, ArgAction, ArgMatches, Command};
use wgpu_mlp::data::{CsvOptions, LabelColumn};

type Outcome = Result<(), Box<dyn std::error::Error>>;

/// `println!` that never fails: once standard output is closed (`| head`), output is dropped
/// quietly instead of panicking or printing an error.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::messages::say(format_args!($($arg)*))
    };
}
pub(crate) use say;

fn main() {
    // Mesa 22's device-select layer asks Wayland for a display while listing GPUs, which
    // prints "XDG_RUNTIME_DIR is invalid" twice on a headless machine; the library chooses
    // the adapter itself, so the layer is not needed.
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: the first statement of main, before any other thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    // Usage errors exit with 2 and --help with 0, from clap.
    let matches = cli().get_matches();
    let outcome = match matches.subcommand() {
        Some(("fit", args)) => fit::run(args),
        Some(("predict", args)) => predict::run(args),
        Some(("info", args)) => info::run(args),
        Some(("export", args)) => export::run(args),
        _ => Err("a subcommand is needed: fit, predict or info (see --help)".into()),
    };
    if outcome.is_ok()
        && let Some(failure) = messages::write_failure()
    {
        eprintln!("error: writing to standard output failed: {failure}");
        std::process::exit(1);
    }
    if let Err(e) = outcome {
        if messages::is_closed_pipe(e.as_ref()) {
            return; // the reader of our output went away (`| head`): nothing to say
        }
        eprintln!("error: {}", messages::describe(e.as_ref()));
        std::process::exit(1);
    }
}

fn cli() -> Command {
    Command::new("wgpu-mlp")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Train, tune and use multilayer perceptrons on any GPU (wgpu: Vulkan, Metal, DX12, GL)")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(fit::command())
        .subcommand(predict::command())
        .subcommand(export::command())
        .subcommand(info::command())
}

/// The options that say how to read a CSV file, shared by `fit` and `predict`.
fn csv_args() -> [Arg; 5] {
    [
        Arg::new("na-values")
            .long("na-values")
            .value_name("A,B,...")
            .help("Cells that mean a missing value, besides empty ones (default: NA,N/A,NaN,nan,null,?)"),
        Arg::new("label-column")
            .long("label-column")
            .visible_alias("label")
            .value_name("NAME|N|last")
            .help(
                "The label column: its header name, its number counted from 1 (as in a spreadsheet), or last (default)",
            ),
        Arg::new("header")
            .long("header")
            .action(ArgAction::SetTrue)
            .conflicts_with("no-header")
            .help("The first line is a header (default: recognised where the evidence is clear, else you are asked)"),
        Arg::new("no-header")
            .long("no-header")
            .action(ArgAction::SetTrue)
            .help("The first line is data, not a header"),
        Arg::new("delimiter")
            .long("delimiter")
            .value_name("C")
            .value_parser(parse_delimiter)
            .help("Field separator: one character or 'tab' (default: detects , ; tab)"),
    ]
}

fn csv_options(args: &ArgMatches) -> Result<CsvOptions, String> {
    let label_column = match args.get_one::<String>("label-column").map(String::as_str) {
        None | Some("last") => LabelColumn::Last,
        Some(text) => match text.parse::<usize>() {
            Ok(0) => return Err("--label-column: columns are numbered from 1 (as in a spreadsheet), got 0".into()),
            Ok(number) => LabelColumn::Index(number - 1),
            Err(_) => LabelColumn::Name(text.to_string()),
        },
    };
    let header = match (args.get_flag("header"), args.get_flag("no-header")) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let na_values = args
        .get_one::<String>("na-values")
        .map(|text| text.split(',').map(|v| v.trim().to_string()).collect());
    Ok(CsvOptions {
        label_column,
        header,
        delimiter: args.get_one::<u8>("delimiter").copied(),
        na_values,
        ..CsvOptions::default()
    })
}

fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "tab" | "\\t" => Ok(b'\t'),
        one if one.len() == 1 => Ok(one.as_bytes()[0]),
        other => Err(format!("one character or 'tab', got {other:?}")),
    }
}
