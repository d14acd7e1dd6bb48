//! Where credentials, the region and the endpoint come from: the AWS CLI's chain, for static
//! credentials.
//!
//! - **Credentials**: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`)
//!   unless a profile was named explicitly (`--profile`, as botocore does); then the profile
//!   (`--profile`, else `AWS_PROFILE`, else `default`) in the shared credentials file
//!   (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`, sections `[NAME]`), then
//!   in the config file (`AWS_CONFIG_FILE`, default `~/.aws/config`, sections
//!   `[profile NAME]` and `[default]`).
//! - **Region**: `--region`, `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`.
//! - **Endpoint**: `--endpoint-url`, `AWS_ENDPOINT_URL_SSM`, `AWS_ENDPOINT_URL`, the profile's
//!   `services` section's `ssm.endpoint_url`, the profile's `endpoint_url` (what
//!   `portcullis server` writes to `.portcullis/config`), else AWS's own
//!   `https://ssm.REGION.amazonaws.com`. `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` skips
//!   the environment and profile ones, as the AWS CLI does.
//! - **CA bundle** (for a server with a private CA): `AWS_CA_BUNDLE`, the profile's
//!   `ca_bundle`.
//!
//! Not supported (the profile must hold keys): `role_arn`/`source_profile`,
//! `credential_process`, SSO, instance metadata.
//!
//! Everything reads through [`Env`], so tests pass a map instead of the process environment.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// What the command line said (each overrides the environment and the files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--profile` (an empty string counts as not given, as the AWS CLI passes `''` to the
    /// plugin when there is no profile).
    pub profile: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
}

/// The environment variables the chain reads, and the home directory.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    /// A fixed set of variables (tests). `HOME` decides where `~` is.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A variable, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from)
    }

    /// `~/rest` → `$HOME/rest`.
    fn expand(&self, path: &str) -> PathBuf {
        match (path.strip_prefix("~/"), self.home()) {
            (Some(rest), Some(home)) => home.join(rest),
            _ if path == "~" => self.home().unwrap_or_else(|| PathBuf::from(path)),
            _ => PathBuf::from(path),
        }
    }

    /// The shared credentials file.
    pub fn credentials_file(&self) -> Option<PathBuf> {
        match self.get("AWS_SHARED_CREDENTIALS_FILE") {
            Some(p) => Some(self.expand(p)),
            None => self.home().map(|h| h.join(".aws").join("credentials")),
        }
    }

    /// The config file.
    pub fn config_file(&self) -> Option<PathBuf> {
        match self.get("AWS_CONFIG_FILE") {
            Some(p) => Some(self.expand(p)),
            None => self.home().map(|h| h.join(".aws").join("config")),
        }
    }
}

/// Static credentials, and where they came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token, for temporary credentials.
    pub session_token: Option<String>,
    /// `env`, or `shared-credentials-file`/`config-file` with the profile.
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .field("source", &self.source)
            .finish()
    }
}

/// Everything a call to the SSM API needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedConfig {
    /// The profile the files were read for.
    pub profile: String,
    /// The credentials.
    pub credentials: Credentials,
    /// The region (signing scope and default endpoint).
    pub region: String,
    /// The SSM endpoint, e.g. `http://127.0.0.1:8080`.
    pub endpoint_url: String,
    /// A PEM file of trusted CAs, replacing the system's.
    pub ca_bundle: Option<PathBuf>,
}

/// Why the configuration could not be resolved, in the AWS CLI's words where it has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No credentials anywhere in the chain.
    #[error(
        "Unable to locate credentials. You can configure credentials by running \"aws configure\"."
    )]
    NoCredentials,
    /// The named profile is in neither file.
    #[error("The config profile ({0}) could not be found")]
    ProfileNotFound(String),
    /// The profile names a way of getting credentials this client does not implement.
    #[error("The config profile ({profile}) uses `{key}`, which portcullis does not support; put aws_access_key_id and aws_secret_access_key in the profile, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    Unsupported {
        /// The profile.
        profile: String,
        /// The setting, e.g. `role_arn`.
        key: String,
    },
    /// The profile has one half of a key pair.
    #[error("Partial credentials found in {origin}, missing: {missing}")]
    PartialCredentials {
        /// Where.
        origin: String,
        /// The missing setting.
        missing: String,
    },
    /// No region anywhere.
    #[error("You must specify a region. You can also configure your region by running \"aws configure\".")]
    NoRegion,
    /// A file could not be read (other than not existing).
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        message: String,
    },
}

/// Sections of an INI file, by name, each a map of lower-cased keys to values. A key with an
/// empty value followed by indented `sub = value` lines gets entries `key.sub`.
pub type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// Reads the AWS shared-file INI dialect: `[section]`, `key = value` (or `key: value`), `#`
/// and `;` comment lines, indented nested settings.
pub fn parse_ini(text: &str) -> Ini {
    let mut out = Ini::new();
    let mut section: Option<String> = None;
    let mut parent: Option<String> = None;
    for raw in text.lines() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            out.entry(name.clone()).or_default();
            section = Some(name);
            parent = None;
            continue;
        }
        let Some(section) = &section else { continue };
        let Some((key, value)) = trimmed.split_once(['=', ':']) else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        let indented = raw.starts_with([' ', '\t']);
        let entries = out.entry(section.clone()).or_default();
        match (&parent, indented) {
            (Some(p), true) => {
                entries.insert(format!("{p}.{key}"), value);
            }
            _ => {
                parent = value.is_empty().then(|| key.clone());
                entries.insert(key, value);
            }
        }
    }
    out
}

fn read_ini(path: Option<&Path>) -> Result<Ini, ConfigError> {
    let Some(path) = path else {
        return Ok(Ini::new());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_ini(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ini::new()),
        Err(e) => Err(ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// The two shared files, read once.
#[derive(Debug, Clone, Default)]
pub struct SharedFiles {
    /// The credentials file's sections (`[NAME]`).
    pub credentials: Ini,
    /// The config file's sections (`[profile NAME]`, `[default]`, `[services NAME]`).
    pub config: Ini,
}

impl SharedFiles {
    /// Reads both files where `env` says they are; a missing file is empty.
    pub fn load(env: &Env) -> Result<SharedFiles, ConfigError> {
        Ok(SharedFiles {
            credentials: read_ini(env.credentials_file().as_deref())?,
            config: read_ini(env.config_file().as_deref())?,
        })
    }

    /// A profile's section in the config file.
    pub fn config_profile(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.config.get(&format!("profile {name}")).or_else(|| {
            (name == "default")
                .then(|| self.config.get("default"))
                .flatten()
        })
    }

    /// A profile's section in the credentials file.
    pub fn credentials_profile(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.credentials.get(name)
    }

    fn setting(&self, profile: &str, key: &str) -> Option<&str> {
        self.config_profile(profile)
            .and_then(|p| p.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `services = NAME` in the profile, then `[services NAME]`'s `ssm.endpoint_url`.
    fn service_endpoint(&self, profile: &str, service: &str) -> Option<&str> {
        let name = self.setting(profile, "services")?;
        self.config
            .get(&format!("services {name}"))?
            .get(&format!("{service}.endpoint_url"))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

fn keys_from(
    section: &BTreeMap<String, String>,
    source: &str,
) -> Result<Option<Credentials>, ConfigError> {
    let get = |k: &str| section.get(k).filter(|v| !v.is_empty()).cloned();
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: get("aws_session_token").or_else(|| get("aws_security_token")),
            source: source.to_owned(),
        })),
        (Some(_), None) => Err(ConfigError::PartialCredentials {
            origin: source.to_owned(),
            missing: "aws_secret_access_key".to_owned(),
        }),
        (None, Some(_)) => Err(ConfigError::PartialCredentials {
            origin: source.to_owned(),
            missing: "aws_access_key_id".to_owned(),
        }),
        (None, None) => Ok(None),
    }
}

/// The SSM endpoint AWS itself has for a region.
pub fn default_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://ssm.{region}.{suffix}")
}

/// Resolves the whole chain.
pub fn resolve(overrides: &Overrides, env: &Env) -> Result<ResolvedConfig, ConfigError> {
    let files = SharedFiles::load(env)?;
    resolve_with(overrides, env, &files)
}

/// [`resolve`] with files already read.
pub fn resolve_with(
    overrides: &Overrides,
    env: &Env,
    files: &SharedFiles,
) -> Result<ResolvedConfig, ConfigError> {
    let explicit = overrides.profile.as_deref().filter(|p| !p.is_empty());
    let profile = explicit
        .or_else(|| env.get("AWS_PROFILE"))
        .or_else(|| env.get("AWS_DEFAULT_PROFILE"))
        .unwrap_or("default")
        .to_owned();
    let in_credentials = files.credentials_profile(&profile);
    let in_config = files.config_profile(&profile);
    // A profile someone asked for by name must exist; `default` may be absent.
    let named = explicit.is_some() || env.get("AWS_PROFILE").is_some();
    if named && in_credentials.is_none() && in_config.is_none() {
        return Err(ConfigError::ProfileNotFound(profile));
    }

    let from_env = match (
        explicit,
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (None, Some(id), Some(secret)) => Some(Credentials {
            access_key_id: id.to_owned(),
            secret_access_key: secret.to_owned(),
            session_token: env
                .get("AWS_SESSION_TOKEN")
                .or_else(|| env.get("AWS_SECURITY_TOKEN"))
                .map(str::to_owned),
            source: "env".to_owned(),
        }),
        _ => None,
    };
    let credentials = match from_env {
        Some(c) => c,
        None => {
            let from_credentials = match in_credentials {
                Some(section) => keys_from(
                    section,
                    &format!("shared-credentials-file (profile {profile})"),
                )?,
                None => None,
            };
            let from_config = match (&from_credentials, in_config) {
                (None, Some(section)) => {
                    keys_from(section, &format!("config-file (profile {profile})"))?
                }
                _ => None,
            };
            match from_credentials.or(from_config) {
                Some(c) => c,
                None => {
                    for key in [
                        "role_arn",
                        "credential_process",
                        "sso_session",
                        "sso_start_url",
                        "web_identity_token_file",
                    ] {
                        if files.setting(&profile, key).is_some() {
                            return Err(ConfigError::Unsupported {
                                profile,
                                key: key.to_owned(),
                            });
                        }
                    }
                    return Err(ConfigError::NoCredentials);
                }
            }
        }
    };

    let region = overrides
        .region
        .as_deref()
        .filter(|r| !r.is_empty())
        .or_else(|| env.get("AWS_REGION"))
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
        .or_else(|| files.setting(&profile, "region"))
        .ok_or(ConfigError::NoRegion)?
        .to_owned();

    let ignore_configured = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || files
            .setting(&profile, "ignore_configured_endpoint_urls")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let configured = || {
        env.get("AWS_ENDPOINT_URL_SSM")
            .or_else(|| env.get("AWS_ENDPOINT_URL"))
            .or_else(|| files.service_endpoint(&profile, "ssm"))
            .or_else(|| files.setting(&profile, "endpoint_url"))
    };
    let endpoint_url = overrides
        .endpoint_url
        .as_deref()
        .filter(|e| !e.is_empty())
        .or_else(|| {
            if ignore_configured {
                None
            } else {
                configured()
            }
        })
        .map(|e| e.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| default_endpoint(&region));

    let ca_bundle = env
        .get("AWS_CA_BUNDLE")
        .or_else(|| files.setting(&profile, "ca_bundle"))
        .map(|p| env.expand(p));

    Ok(ResolvedConfig {
        profile,
        credentials,
        region,
        endpoint_url,
        ca_bundle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections_comments_and_nesting() {
        let ini = parse_ini(
            "# top comment\n[default]\nregion = us-east-1\n; another\n[profile  dev ]\n\
             Region=eu-west-1\nservices = local\n[services local]\nssm =\n  endpoint_url = http://127.0.0.1:9\n\
             s3 =\n\tendpoint_url: http://s3.local\nafter = x\n",
        );
        assert_eq!(ini["default"]["region"], "us-east-1");
        assert_eq!(ini["profile dev"]["region"], "eu-west-1");
        assert_eq!(
            ini["services local"]["ssm.endpoint_url"],
            "http://127.0.0.1:9"
        );
        assert_eq!(ini["services local"]["s3.endpoint_url"], "http://s3.local");
        assert_eq!(ini["services local"]["after"], "x");
    }

    #[test]
    fn tilde_expands_to_home() {
        let env = Env::from_pairs([("HOME", "/home/u"), ("AWS_CONFIG_FILE", "~/cfg")]);
        assert_eq!(env.config_file(), Some(PathBuf::from("/home/u/cfg")));
        assert_eq!(
            env.credentials_file(),
            Some(PathBuf::from("/home/u/.aws/credentials"))
        );
    }

    #[test]
    fn default_endpoints() {
        assert_eq!(
            default_endpoint("eu-west-1"),
            "https://ssm.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            default_endpoint("cn-north-1"),
            "https://ssm.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials {
            access_key_id: "AKIA".into(),
            secret_access_key: "s3cr3t".into(),
            session_token: Some("tok3n".into()),
            source: "env".into(),
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("tok3n"),
            "{shown}"
        );
    }
}
