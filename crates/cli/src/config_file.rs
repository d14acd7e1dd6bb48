//! `portcullis server --config FILE`: settings from a TOML file.
//!
//! The file's `[server]` table holds the server's long options by name, with their values:
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:8066"
//! data-dir = "/var/lib/portcullis"
//! tls-cert = "/etc/portcullis/cert.pem"
//! tls-key = "/etc/portcullis/key.pem"
//! agent-grace-seconds = 120
//! seed = false
//! ```
//!
//! The command line wins over the environment (`PORTCULLIS_*`), which wins over the file,
//! which wins over the defaults. Other tables are ignored, so one file can serve other tools;
//! an unknown setting in `[server]` is an error that lists the known ones.
//!
//! How: the arguments are parsed once to find the file and to learn where each value came
//! from; every setting of the file that neither the command line nor the environment gave is
//! appended as `--name=value`, and the result is parsed again, with clap's own checks.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;

/// The table of the file that configures `portcullis server`.
const SERVER_TABLE: &str = "server";

/// `argv` with the config file's settings added; `argv` as is when there is no file (or
/// the arguments do not parse: clap reports that on the second parse).
pub fn with_config_file(
    command: &clap::Command,
    argv: Vec<OsString>,
) -> Result<Vec<OsString>, String> {
    let Ok(matches) = command.clone().try_get_matches_from(&argv) else {
        return Ok(argv);
    };
    let Some((SERVER_TABLE, server_matches)) = matches.subcommand() else {
        return Ok(argv);
    };
    let Some(path) = server_matches.get_one::<PathBuf>("config") else {
        return Ok(argv);
    };
    let server = command
        .find_subcommand(SERVER_TABLE)
        .ok_or_else(|| "no server command".to_owned())?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    let extra = settings(server, server_matches, &text)
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    let mut argv = argv;
    argv.extend(extra.into_iter().map(OsString::from));
    Ok(argv)
}

/// The `--name=value` arguments the file adds.
fn settings(
    server: &clap::Command,
    given: &clap::ArgMatches,
    text: &str,
) -> Result<Vec<String>, String> {
    let file: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let Some(table) = file.get(SERVER_TABLE) else {
        return Ok(Vec::new());
    };
    let table = table
        .as_table()
        .ok_or_else(|| format!("`{SERVER_TABLE}` must be a table ([{SERVER_TABLE}])"))?;
    let known = || {
        server
            .get_arguments()
            .filter_map(clap::Arg::get_long)
            .filter(|long| *long != "config" && *long != "help")
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut extra = Vec::new();
    for (name, value) in table {
        let arg = server
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && name != "config" && name != "help")
            .ok_or_else(|| {
                format!(
                    "unknown setting `{name}` in [{SERVER_TABLE}]; known: {}",
                    known()
                )
            })?;
        let from_elsewhere = matches!(
            given.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if from_elsewhere {
            continue;
        }
        let is_switch = matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
        );
        match value {
            toml::Value::Boolean(on) if is_switch => {
                if *on {
                    extra.push(format!("--{name}"));
                }
            }
            toml::Value::String(s) if !is_switch => extra.push(format!("--{name}={s}")),
            toml::Value::Integer(n) if !is_switch => extra.push(format!("--{name}={n}")),
            _ if is_switch => return Err(format!("`{name}` must be true or false")),
            _ => return Err(format!("`{name}` must be a string or a number")),
        }
    }
    Ok(extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, Parser as _};

    fn server_args(cli: &[&str], file: &str) -> Result<Vec<String>, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("portcullis.toml");
        std::fs::write(&path, file).map_err(|e| e.to_string())?;
        let mut argv: Vec<OsString> = ["portcullis", "server", "--config"]
            .iter()
            .map(OsString::from)
            .collect();
        argv.push(path.clone().into_os_string());
        argv.extend(cli.iter().map(OsString::from));
        let out = with_config_file(&crate::Cli::command(), argv)?;
        Ok(out
            .iter()
            .skip(4 + cli.len())
            .map(|a| a.to_string_lossy().into_owned())
            .collect())
    }

    #[test]
    fn the_file_fills_in_what_the_command_line_did_not_give() {
        let added = server_args(
            &["--listen", "127.0.0.1:9000"],
            "[server]\nlisten = \"0.0.0.0:8066\"\ndata-dir = \"/var/lib/portcullis\"\n\
             agent-grace-seconds = 120\nseed = true\n\n[other]\nanything = 1\n",
        )
        .unwrap();
        assert_eq!(
            added,
            [
                "--agent-grace-seconds=120",
                "--data-dir=/var/lib/portcullis",
                "--seed"
            ]
        );
    }

    #[test]
    fn a_false_switch_adds_nothing_and_no_table_adds_nothing() {
        assert!(server_args(&[], "[server]\nseed = false\n")
            .unwrap()
            .is_empty());
        assert!(server_args(&[], "[agent]\nstate-dir = \"/x\"\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn mistakes_are_named() {
        let e = server_args(&[], "[server]\nlisten-on = \"x\"\n").unwrap_err();
        assert!(e.contains("unknown setting `listen-on`"), "{e}");
        assert!(e.contains("listen, data-dir"), "{e}");
        let e = server_args(&[], "[server]\nseed = \"yes\"\n").unwrap_err();
        assert!(e.contains("`seed` must be true or false"), "{e}");
        let e = server_args(&[], "[server]\nlisten = [1]\n").unwrap_err();
        assert!(e.contains("`listen` must be a string or a number"), "{e}");
        let e = server_args(&[], "server = 1\n").unwrap_err();
        assert!(e.contains("must be a table"), "{e}");
        let e = server_args(&[], "[server\n").unwrap_err();
        assert!(e.contains("config file"), "{e}");
        let e = server_args(&[], "[server]\nconfig = \"other.toml\"\n").unwrap_err();
        assert!(e.contains("unknown setting `config`"), "{e}");
    }

    #[test]
    fn the_result_parses_with_the_files_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[server]\nagent-grace-seconds = 0\n").unwrap();
        let argv: Vec<OsString> = vec![
            "portcullis".into(),
            "server".into(),
            "--config".into(),
            path.into_os_string(),
        ];
        let argv = with_config_file(&crate::Cli::command(), argv).unwrap();
        // clap's own range check still applies to values from the file.
        let e = crate::Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(e.contains("agent-grace-seconds"), "{e}");
    }
}
