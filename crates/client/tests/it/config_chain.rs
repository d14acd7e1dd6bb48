//! The credential, region and endpoint chain, with real files in a temp dir and a fixed
//! environment (no process-wide variables are touched).

use std::path::Path;

use portcullis_client::config::{resolve, ConfigError, Env, Overrides};

use crate::world::{World, NODE, REGION};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(credentials: &str, config: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("credentials"), credentials).unwrap();
        std::fs::write(dir.path().join("config"), config).unwrap();
        Files { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The environment pointing at these files, plus `extra`.
    fn env(&self, extra: &[(&str, &str)]) -> Env {
        let mut pairs = vec![
            (
                "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
                self.path().join("credentials").display().to_string(),
            ),
            (
                "AWS_CONFIG_FILE".to_owned(),
                self.path().join("config").display().to_string(),
            ),
            ("HOME".to_owned(), self.path().display().to_string()),
        ];
        pairs.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Env::from_pairs(pairs)
    }
}

const CREDENTIALS: &str = "\
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default-secret

[dev]
aws_access_key_id = AKIADEV
aws_secret_access_key = dev-secret
aws_session_token = dev-token
";

const CONFIG: &str = "\
[default]
region = eu-west-1

[profile dev]
region = ap-northeast-1
endpoint_url = http://127.0.0.1:1111

[profile cfgonly]
aws_access_key_id = AKIACFG
aws_secret_access_key = cfg-secret
region = us-west-2
services = local

[services local]
ssm =
  endpoint_url = http://127.0.0.1:2222

[profile assumer]
role_arn = arn:aws:iam::123456789012:role/r
source_profile = default
";

fn overrides(profile: Option<&str>, region: Option<&str>, endpoint: Option<&str>) -> Overrides {
    Overrides {
        profile: profile.map(str::to_owned),
        region: region.map(str::to_owned),
        endpoint_url: endpoint.map(str::to_owned),
    }
}

#[test]
fn environment_credentials_win_unless_a_profile_is_named() {
    let f = Files::new(CREDENTIALS, CONFIG);
    let env = f.env(&[
        ("AWS_ACCESS_KEY_ID", "AKIAENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ("AWS_SESSION_TOKEN", "env-token"),
    ]);
    let c = resolve(&Overrides::default(), &env).unwrap();
    assert_eq!(c.credentials.access_key_id, "AKIAENV");
    assert_eq!(c.credentials.session_token.as_deref(), Some("env-token"));
    assert_eq!(c.credentials.source, "env");
    // The default profile still gives the region.
    assert_eq!(c.region, "eu-west-1");
    assert_eq!(c.endpoint_url, "https://ssm.eu-west-1.amazonaws.com");

    // --profile: botocore drops the environment provider.
    let c = resolve(&overrides(Some("dev"), None, None), &env).unwrap();
    assert_eq!(c.credentials.access_key_id, "AKIADEV");
    assert_eq!(c.credentials.session_token.as_deref(), Some("dev-token"));
    assert_eq!(c.profile, "dev");

    // AWS_PROFILE does not outrank AWS_ACCESS_KEY_ID (botocore's order).
    let env2 = f.env(&[
        ("AWS_ACCESS_KEY_ID", "AKIAENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ("AWS_PROFILE", "dev"),
    ]);
    let c = resolve(&Overrides::default(), &env2).unwrap();
    assert_eq!(c.credentials.access_key_id, "AKIAENV");
    assert_eq!(
        c.region, "ap-northeast-1",
        "the profile's region still applies"
    );
}

#[test]
fn profiles_from_both_files() {
    let f = Files::new(CREDENTIALS, CONFIG);
    let c = resolve(&Overrides::default(), &f.env(&[])).unwrap();
    assert_eq!(c.credentials.access_key_id, "AKIADEFAULT");
    assert_eq!(c.profile, "default");

    let c = resolve(&Overrides::default(), &f.env(&[("AWS_PROFILE", "dev")])).unwrap();
    assert_eq!(c.credentials.access_key_id, "AKIADEV");
    assert_eq!(c.region, "ap-northeast-1");
    assert_eq!(c.endpoint_url, "http://127.0.0.1:1111");

    // Keys in the config file; the endpoint from the profile's `services` section.
    let c = resolve(&overrides(Some("cfgonly"), None, None), &f.env(&[])).unwrap();
    assert_eq!(c.credentials.access_key_id, "AKIACFG");
    assert!(c.credentials.source.starts_with("config-file"));
    assert_eq!(c.region, "us-west-2");
    assert_eq!(c.endpoint_url, "http://127.0.0.1:2222");

    // Default file locations under HOME.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(home.path().join(".aws/credentials"), CREDENTIALS).unwrap();
    std::fs::write(home.path().join(".aws/config"), CONFIG).unwrap();
    let env = Env::from_pairs([("HOME", home.path().display().to_string())]);
    let c = resolve(&overrides(Some("dev"), None, None), &env).unwrap();
    assert_eq!(c.credentials.access_key_id, "AKIADEV");
}

#[test]
fn region_and_endpoint_precedence() {
    let f = Files::new(CREDENTIALS, CONFIG);
    let dev = overrides(Some("dev"), None, None);
    let all = f.env(&[
        ("AWS_REGION", "r-env"),
        ("AWS_DEFAULT_REGION", "r-default"),
        ("AWS_ENDPOINT_URL_SSM", "http://ssm-env"),
        ("AWS_ENDPOINT_URL", "http://global-env"),
    ]);
    let c = resolve(
        &overrides(Some("dev"), Some("r-flag"), Some("http://flag/")),
        &all,
    )
    .unwrap();
    assert_eq!(
        (c.region.as_str(), c.endpoint_url.as_str()),
        ("r-flag", "http://flag")
    );
    let c = resolve(&dev, &all).unwrap();
    assert_eq!(
        (c.region.as_str(), c.endpoint_url.as_str()),
        ("r-env", "http://ssm-env")
    );
    let c = resolve(
        &dev,
        &f.env(&[
            ("AWS_DEFAULT_REGION", "r-default"),
            ("AWS_ENDPOINT_URL", "http://global-env"),
        ]),
    )
    .unwrap();
    assert_eq!(
        (c.region.as_str(), c.endpoint_url.as_str()),
        ("r-default", "http://global-env")
    );
    // Configured endpoints ignored on request: AWS's own, for the region.
    let c = resolve(
        &dev,
        &f.env(&[
            ("AWS_ENDPOINT_URL", "http://global-env"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]),
    )
    .unwrap();
    assert_eq!(c.endpoint_url, "https://ssm.ap-northeast-1.amazonaws.com");
    // CA bundle from the environment, `~` expanded.
    let c = resolve(&dev, &f.env(&[("AWS_CA_BUNDLE", "~/ca.pem")])).unwrap();
    assert_eq!(c.ca_bundle, Some(f.path().join("ca.pem")));
}

#[test]
fn errors_in_the_aws_clis_words() {
    let f = Files::new(CREDENTIALS, CONFIG);
    let e = resolve(&overrides(Some("nope"), None, None), &f.env(&[])).unwrap_err();
    assert_eq!(e, ConfigError::ProfileNotFound("nope".into()));
    assert_eq!(
        e.to_string(),
        "The config profile (nope) could not be found"
    );

    let e = resolve(&overrides(Some("assumer"), None, None), &f.env(&[])).unwrap_err();
    assert!(
        matches!(e, ConfigError::Unsupported { ref key, .. } if key == "role_arn"),
        "{e}"
    );

    let empty = Files::new("", "");
    let e = resolve(&Overrides::default(), &empty.env(&[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unable to locate credentials. You can configure credentials by running \"aws configure\"."
    );
    let e = resolve(
        &Overrides::default(),
        &empty.env(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")]),
    )
    .unwrap_err();
    assert_eq!(e, ConfigError::NoRegion);

    let half = Files::new(
        "[default]\naws_access_key_id = AKIA\n",
        "[default]\nregion = x\n",
    );
    let e = resolve(&Overrides::default(), &half.env(&[])).unwrap_err();
    assert!(
        e.to_string().contains("missing: aws_secret_access_key"),
        "{e}"
    );

    // Missing files are empty, not errors.
    let env = Env::from_pairs([
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ("AWS_CONFIG_FILE", "/nonexistent/config"),
        ("AWS_ACCESS_KEY_ID", "a"),
        ("AWS_SECRET_ACCESS_KEY", "b"),
        ("AWS_REGION", "us-east-1"),
    ]);
    assert!(resolve(&Overrides::default(), &env).is_ok());
}

/// The files `portcullis server` writes (profile `portcullis-admin`, `endpoint_url`) resolve
/// to a client whose signed calls the server accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_profile_files_work_end_to_end() {
    let world = World::start().await;
    let (id, secret) = &world.key;
    let endpoint = world.endpoint();
    let f = Files::new(
        &format!(
            "[portcullis-admin]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
        ),
        &format!("[profile portcullis-admin]\nregion = {REGION}\nendpoint_url = {endpoint}\n"),
    );
    let c = resolve(
        &overrides(Some("portcullis-admin"), None, None),
        &f.env(&[]),
    )
    .unwrap();
    assert_eq!(c.endpoint_url, endpoint);
    let good = portcullis_client::SsmClient::new(&c).unwrap();
    let sessions = good.describe_sessions("Active", &[]).await.unwrap();
    assert!(sessions.is_empty());
    // No agent connected: the node is not online.
    let e = good
        .start_session(&portcullis_client::StartSession {
            target: NODE.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("An error occurred (TargetNotConnected) when calling the StartSession operation: {NODE} is not connected.")
    );

    // A wrong secret: the service's refusal, as the AWS CLI prints it.
    let f = Files::new(
        &format!("[portcullis-admin]\naws_access_key_id = {id}\naws_secret_access_key = wrong\n"),
        &format!("[profile portcullis-admin]\nregion = {REGION}\nendpoint_url = {endpoint}\n"),
    );
    let c = resolve(
        &overrides(Some("portcullis-admin"), None, None),
        &f.env(&[]),
    )
    .unwrap();
    let api = portcullis_client::SsmClient::new(&c).unwrap();
    let e = api.describe_sessions("Active", &[]).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("An error occurred (InvalidSignatureException) when calling the DescribeSessions operation: "),
        "{e}"
    );
}
