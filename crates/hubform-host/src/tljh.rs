//! What hubform asks of TLJH: the commands that change `tljh-config`
//! keys, the reloads those keys need, and package installs — each as one
//! shell script run with `sudo -n`, absolute paths and timeouts.

use hubform_core::model::Value;
use hubform_core::plan::Change;

/// The user environment's Python, by absolute path: over SSH, `sudo pip`
/// finds no pip.
pub const USER_PYTHON: &str = "/opt/tljh/user/bin/python";
/// The user environment's prefix.
pub const USER_PREFIX: &str = "/opt/tljh/user";
/// `tljh-config`, by absolute path.
pub const TLJH_CONFIG: &str = "/usr/bin/tljh-config";

/// Which services must reload to take up changed keys.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloads {
    /// traefik: HTTP, HTTPS and its API settings.
    pub proxy: bool,
    /// JupyterHub: everything else.
    pub hub: bool,
}

/// The reloads changed `keys` need: proxy keys reload the proxy, the rest
/// the hub, and `https.enabled` both (the hub learns the entrypoint).
pub fn reloads<'a>(keys: impl Iterator<Item = &'a str>) -> Reloads {
    let mut r = Reloads::default();
    for key in keys {
        let proxy = ["http.", "https.", "traefik_api."]
            .iter()
            .any(|p| key.starts_with(p));
        if proxy {
            r.proxy = true;
        } else {
            r.hub = true;
        }
        if key == "https.enabled" {
            r.hub = true;
        }
    }
    r
}

/// Quotes a word for a POSIX shell.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/@=+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// How `tljh-config` writes a scalar on its command line, so that its own
/// parsing gives back the type the spec wants.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(n) => Some(n.to_string()),
        Value::Decimal(d) => Some(d.clone()),
        Value::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// The shell lines that bring the changed keys of a `tljh_config` change
/// to the spec's values. Lists are rewritten whole (unset, then add each
/// item once), which also clears duplicates made by hand.
///
/// `tljh-config` (2.0 and later) validates the whole file on every write,
/// so one wrong value left by hand would refuse every fix but its own:
/// all writes but the last skip validation, and the last validates the
/// result. Older versions have no such flag and do not validate.
pub fn config_script(change: &Change) -> String {
    let lines = config_lines(change);
    if lines.is_empty() {
        return String::new();
    }
    let mut script = String::from("set -e\n");
    // Keys written but not yet loaded are noted first: a run killed
    // before its reloads leaves the note, and the next probe plans them
    // again (see `UNLOADED`).
    script.push_str(&format!("mkdir -p {STATE_DIR}\n"));
    for diff in &change.diffs {
        script.push_str(&format!(
            "printf '%s\\n' {} >> {UNLOADED}\n",
            quote(&diff.name)
        ));
    }
    if lines.len() > 1 {
        script.push_str(
            "NV=\nif /usr/bin/tljh-config --help 2>/dev/null | grep -q \
             -- --no-validate; then NV=--no-validate; fi\n",
        );
    }
    let last = lines.len() - 1;
    for (i, line) in lines.iter().enumerate() {
        let flag = if i < last { " $NV" } else { "" };
        script.push_str(&format!("{TLJH_CONFIG}{flag} {line}\n"));
    }
    script
}

/// TLJH's state folder on the server.
const STATE_DIR: &str = "/opt/tljh/state";

/// Where the keys written to `config.yaml` but not yet loaded by a reload
/// are listed, one per line, until the reloads finish.
pub const UNLOADED: &str = "/opt/tljh/state/hubform-unloaded";

/// The `tljh-config` subcommands of a change, without the program.
fn config_lines(change: &Change) -> Vec<String> {
    let mut lines = Vec::new();
    for diff in &change.diffs {
        let key = quote(&diff.name);
        let had = diff.old.as_ref().is_some_and(|v| *v != Value::None);
        match &diff.new {
            Some(Value::List(items)) => {
                if had {
                    lines.push(format!("unset {key}"));
                }
                for item in items {
                    lines.push(format!("add-item {key} {}", quote(item)));
                }
            }
            Some(Value::None) | None => {
                if had {
                    lines.push(format!("unset {key}"));
                }
            }
            Some(value) => {
                if let Some(text) = scalar(value) {
                    lines.push(format!("set {key} {}", quote(&text)));
                }
            }
        }
    }
    lines
}

/// The items a package change installs: those the spec wants and the host
/// lacks.
pub fn missing(change: &Change, manager: &str) -> Vec<String> {
    let want = change.wanted_items(manager);
    let have = change.live_items(manager);
    want.difference(&have).cloned().collect()
}

/// The command that installs pip packages into the user environment.
pub fn pip_install(packages: &[String]) -> String {
    let words: Vec<String> = packages.iter().map(|p| quote(p)).collect();
    format!(
        "sudo -n {USER_PYTHON} -m pip install --disable-pip-version-check {}",
        words.join(" ")
    )
}

/// The command that installs conda packages (mamba when there is one).
pub fn conda_install(packages: &[String]) -> String {
    let words: Vec<String> = packages.iter().map(|p| quote(p)).collect();
    format!(
        "if [ -x {USER_PREFIX}/bin/mamba ]; then c={USER_PREFIX}/bin/mamba; \
         else c={USER_PREFIX}/bin/conda; fi; sudo -n \"$c\" install --yes \
         -c conda-forge --prefix {USER_PREFIX} {}",
        words.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubform_core::model::{Kind, ResourceId};
    use hubform_core::plan::{Action, Diff};

    fn change(diffs: Vec<Diff>) -> Change {
        Change {
            id: ResourceId::new(Kind::TljhConfig, "hub"),
            action: Action::Update,
            desired: None,
            live: None,
            diffs,
            after: Vec::new(),
        }
    }

    fn diff(name: &str, old: Value, new: Value) -> Diff {
        Diff {
            name: name.into(),
            old: Some(old),
            new: Some(new),
            forces_replace: false,
            known_after_apply: false,
        }
    }

    #[test]
    fn proxy_keys_reload_the_proxy_and_https_both() {
        assert_eq!(
            reloads(["limits.memory"].into_iter()),
            Reloads {
                proxy: false,
                hub: true
            }
        );
        assert_eq!(
            reloads(["https.letsencrypt.email"].into_iter()),
            Reloads {
                proxy: true,
                hub: false
            }
        );
        assert_eq!(
            reloads(["https.enabled"].into_iter()),
            Reloads {
                proxy: true,
                hub: true
            }
        );
    }

    #[test]
    fn lists_are_rewritten_and_scalars_set() {
        let c = change(vec![
            diff(
                "users.admin",
                Value::List(vec!["a".into(), "a".into()]),
                Value::List(vec!["a".into(), "b c".into()]),
            ),
            diff("limits.memory", Value::None, Value::str("4G")),
            diff("services.cull.timeout", Value::Int(600), Value::Int(3600)),
        ]);
        assert_eq!(
            config_lines(&c),
            [
                "unset users.admin",
                "add-item users.admin a",
                "add-item users.admin 'b c'",
                "set limits.memory 4G",
                "set services.cull.timeout 3600",
            ]
        );
        let script = config_script(&c);
        assert!(script.contains(
            "/usr/bin/tljh-config $NV set limits.memory 4G\n\
             /usr/bin/tljh-config set services.cull.timeout 3600\n"
        ));
    }

    #[test]
    fn quoting_keeps_plain_words_and_escapes_the_rest() {
        assert_eq!(quote("it@example.org"), "it@example.org");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
