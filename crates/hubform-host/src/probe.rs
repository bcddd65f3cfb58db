//! The probe: one script, run once as root over SSH, that prints
//! everything the planner needs to know about a host, in sections.
//!
//! ```
//! use hubform_host::probe::Facts;
//!
//! let facts = Facts::parse(
//!     "==hubform:tljh==\nversion=2.0.0\n==hubform:config==\nusers:\n  \
//!      admin:\n  - alice\n==hubform:end==\n",
//! )
//! .unwrap();
//! assert_eq!(facts.tljh_version.as_deref(), Some("2.0.0"));
//! ```

use std::collections::BTreeMap;

use hubform_core::model::Value;

/// The shell script the probe runs (`sudo -n sh -s`, script on stdin).
/// Every command is bounded, prints into its own section and never fails
/// the script: a missing piece is an empty section.
pub const SCRIPT: &str = r#"
exec 2>/dev/null
section() { printf '\n==hubform:%s==\n' "$1"; }
section os
cat /etc/os-release
section tljh
# The installer links tljh-config last: without it an install was cut off
# and is not there yet (running bootstrap again completes it).
if [ -x /opt/tljh/hub/bin/python3 ] && [ -e /usr/bin/tljh-config ]; then
  v=$(timeout 20 /opt/tljh/hub/bin/python3 -c "import importlib.metadata as m; print(m.version('the-littlest-jupyterhub'))") || v=unknown
  echo "version=${v:-unknown}"
fi
section config
[ -f /opt/tljh/config/config.yaml ] && cat /opt/tljh/config/config.yaml
section unloaded
[ -f /opt/tljh/state/hubform-unloaded ] && cat /opt/tljh/state/hubform-unloaded
section pip
[ -x /opt/tljh/user/bin/python ] && timeout 60 /opt/tljh/user/bin/python -m pip list --format=json --disable-pip-version-check
section conda
[ -x /opt/tljh/user/bin/conda ] && timeout 60 /opt/tljh/user/bin/conda list --json
section services
for s in jupyterhub traefik; do
  printf '%s=%s\n' "$s" "$(timeout 10 systemctl is-active "$s" || true)"
done
section verify
if [ -n "${HUB_PORT:-}" ] && command -v curl >/dev/null; then
  printf 'hub=%s\n' "$(timeout 15 curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HUB_PORT/hub/api")"
  for d in ${HTTPS_NAMES:-}; do
    timeout 15 curl -s -o /dev/null --resolve "$d:$HTTPS_PORT:127.0.0.1" "https://$d:$HTTPS_PORT/hub/api"
    printf 'https:%s=%s\n' "$d" "$?"
  done
fi
if [ -n "${IMPORTS:-}" ] && [ -x /opt/tljh/user/bin/python ]; then
  IMPORTS="$IMPORTS" timeout 300 /opt/tljh/user/bin/python - <<'PY'
import importlib, importlib.metadata as metadata, os
for dist in os.environ["IMPORTS"].split():
    try:
        top = (metadata.distribution(dist).read_text("top_level.txt") or "")
    except Exception:
        top = ""
    modules = top.split() or [dist.replace("-", "_").lower()]
    error = "not importable"
    for module in modules:
        try:
            importlib.import_module(module)
            error = ""
            break
        except Exception as e:
            error = type(e).__name__ + ": " + str(e).replace("\n", " ")
    print("import:" + dist + "=" + (error or "ok"))
PY
fi
section disk
df -P -k / | tail -n 1
section root
src=$(findmnt -no SOURCE /)
printf 'fs_bytes=%s\n' "$(findmnt -bno SIZE /)"
printf 'disk_bytes=%s\n' "$(lsblk -bdno SIZE "/dev/$(lsblk -no PKNAME "$src")")"
section memory
grep -E '^(MemTotal|MemAvailable):' /proc/meminfo
section apt
if [ -n "${APT:-}" ] && command -v apt-get >/dev/null; then
  printf 'upgradable=%s\n' "$(timeout 60 apt-get -s -q upgrade 2>/dev/null | grep -c '^Inst ')"
fi
section reboot
[ -f /var/run/reboot-required ] && echo yes
section end
exit 0
"#;

/// What the probe found on a host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// `/etc/os-release`, by variable.
    pub os: BTreeMap<String, String>,
    /// The installed TLJH version; `None` when TLJH is not installed.
    pub tljh_version: Option<String>,
    /// The `tljh-config` keys set in `config.yaml`, flattened to dotted
    /// paths, with TLJH's value types.
    pub config: BTreeMap<String, Value>,
    /// Keys written to `config.yaml` by a run that was stopped before its
    /// reloads: the hub may not have loaded their values.
    pub unloaded: std::collections::BTreeSet<String>,
    /// Packages of the user environment that pip sees, by normalised name.
    pub pip: BTreeMap<String, String>,
    /// Packages that conda sees (pip's included), by normalised name.
    pub conda: BTreeMap<String, String>,
    /// `systemctl is-active` of the TLJH services.
    pub services: BTreeMap<String, String>,
    /// The root file system's `df -P -k` line.
    pub disk: String,
    /// The root file system's size and its disk's, in bytes.
    pub root: Option<(u64, u64)>,
    /// Total and available memory in KiB.
    pub memory: BTreeMap<String, u64>,
    /// Whether the OS asks for a reboot.
    pub reboot_required: bool,
    /// The HTTP status of the hub's API on the server (`000`: no answer).
    pub hub_status: Option<String>,
    /// curl's exit code for each HTTPS name: 0 trusted, 60 untrusted
    /// certificate, others no answer.
    pub https: BTreeMap<String, i32>,
    /// For each distribution checked, `ok` or why it does not import.
    pub imports: BTreeMap<String, String>,
    /// Upgrades apt has pending (when asked for).
    pub upgradable: Option<u64>,
}

/// What to check on the host besides observing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    /// The port the hub answers HTTP on (`http.port`, 80 by default).
    pub hub_port: Option<i64>,
    /// The port HTTPS is served on (`https.port`, 443 by default).
    pub https_port: i64,
    /// Names whose certificate must be trusted.
    pub https_names: Vec<String>,
    /// pip distributions the user Python must import (after apply only:
    /// importing a scientific stack takes seconds).
    pub imports: Vec<String>,
    /// Count apt's pending upgrades.
    pub apt: bool,
}

/// Whether a word is safe inside the probe's single quotes.
fn plain(word: &str) -> bool {
    word.chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
}

impl Checks {
    /// The probe script with these checks' settings in front.
    pub fn script(&self) -> String {
        let mut head = String::new();
        if let Some(port) = self.hub_port {
            head.push_str(&format!("HUB_PORT={port}\n"));
        }
        head.push_str(&format!("HTTPS_PORT={}\n", self.https_port));
        let words = |list: &[String]| {
            let safe: Vec<&str> = list
                .iter()
                .map(String::as_str)
                .filter(|w| plain(w))
                .collect();
            safe.join(" ")
        };
        head.push_str(&format!("HTTPS_NAMES='{}'\n", words(&self.https_names)));
        head.push_str(&format!("IMPORTS='{}'\n", words(&self.imports)));
        if self.apt {
            head.push_str("APT=1\n");
        }
        format!("{head}{SCRIPT}")
    }
}

/// The probe's output is not what the script prints.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The output ends before the last section: the script was cut off.
    #[error("the probe's output is incomplete (no end marker)")]
    Incomplete,
    /// `config.yaml` is not YAML.
    #[error("/opt/tljh/config/config.yaml is not valid YAML: {0}")]
    Config(String),
}

impl Facts {
    /// Parses the probe's output.
    pub fn parse(output: &str) -> Result<Facts, ProbeError> {
        let sections = split(output);
        if !sections.contains_key("end") {
            return Err(ProbeError::Incomplete);
        }
        let text = |name: &str| sections.get(name).map_or("", String::as_str);

        let mut facts = Facts {
            os: pairs(text("os"), '='),
            tljh_version: pairs(text("tljh"), '=').remove("version"),
            services: pairs(text("services"), '='),
            disk: text("disk").trim().to_owned(),
            reboot_required: text("reboot").trim() == "yes",
            ..Facts::default()
        };
        let verify = pairs(text("verify"), '=');
        facts.hub_status = verify.get("hub").cloned();
        facts.https = verify
            .iter()
            .filter_map(|(k, v)| {
                Some((k.strip_prefix("https:")?.to_owned(), v.parse().ok()?))
            })
            .collect();
        facts.imports = verify
            .iter()
            .filter_map(|(k, v)| {
                Some((k.strip_prefix("import:")?.to_owned(), v.clone()))
            })
            .collect();
        let root = pairs(text("root"), '=');
        let bytes = |k: &str| root.get(k).and_then(|v| v.parse::<u64>().ok());
        facts.root = bytes("fs_bytes").zip(bytes("disk_bytes"));
        facts.upgradable = pairs(text("apt"), '=')
            .get("upgradable")
            .and_then(|n| n.parse().ok());
        facts.config = flatten_config(text("config"))?;
        facts.unloaded = text("unloaded")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        facts.pip = packages(text("pip"));
        facts.conda = packages(text("conda"));
        for (key, value) in pairs(text("memory"), ':') {
            let kib = value.trim().trim_end_matches("kB").trim();
            if let Ok(n) = kib.parse() {
                facts.memory.insert(key, n);
            }
        }
        Ok(facts)
    }
}

fn split(output: &str) -> BTreeMap<String, String> {
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in output.lines() {
        let marker = line
            .strip_prefix("==hubform:")
            .and_then(|rest| rest.strip_suffix("=="));
        if let Some(name) = marker {
            if let Some((done, body)) = current.take() {
                sections.insert(done, body);
            }
            current = Some((name.to_owned(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((done, body)) = current {
        sections.insert(done, body);
    }
    sections
}

fn pairs(text: &str, separator: char) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(separator))
        .map(|(k, v)| {
            (k.trim().to_owned(), v.trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// A package name as PEP 503 compares them: lowercase, runs of `-_.`
/// as one `-`.
pub fn normalise(name: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
            continue;
        }
        if dash && !out.is_empty() {
            out.push('-');
        }
        dash = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// `[{"name": …, "version": …}, …]` as pip and conda print it.
fn packages(json: &str) -> BTreeMap<String, String> {
    let Ok(serde_json::Value::Array(items)) =
        serde_json::from_str::<serde_json::Value>(json.trim())
    else {
        return BTreeMap::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let name = item.get("name")?.as_str()?;
            let version = item.get("version")?.as_str()?;
            Some((normalise(name), version.to_owned()))
        })
        .collect()
}

/// `config.yaml` as dotted keys with TLJH's types. Lists keep their order
/// and duplicates, sorted, so that a duplicate shows as drift.
pub fn flatten_config(
    yaml: &str,
) -> Result<BTreeMap<String, Value>, ProbeError> {
    let mut out = BTreeMap::new();
    if yaml.trim().is_empty() {
        return Ok(out);
    }
    let tree: serde_json::Value = serde_saphyr::from_str(yaml)
        .map_err(|e| ProbeError::Config(e.to_string()))?;
    flatten(&tree, "", &mut out);
    Ok(out)
}

fn flatten(
    node: &serde_json::Value,
    path: &str,
    out: &mut BTreeMap<String, Value>,
) {
    use serde_json::Value as J;
    let key = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    match node {
        J::Object(map) => {
            for (name, child) in map {
                flatten(child, &key(name), out);
            }
        }
        _ if path.is_empty() => {}
        J::Null => {
            out.insert(path.to_owned(), Value::None);
        }
        J::Bool(b) => {
            out.insert(path.to_owned(), Value::Bool(*b));
        }
        J::Number(n) => {
            let value = match n.as_i64() {
                Some(i) => Value::Int(i),
                None => {
                    Value::Decimal(format!("{:?}", n.as_f64().unwrap_or(0.0)))
                }
            };
            out.insert(path.to_owned(), value);
        }
        J::String(s) => {
            out.insert(path.to_owned(), Value::Str(s.clone()));
        }
        J::Array(items) => {
            let mut items: Vec<String> = items
                .iter()
                .map(|i| match i {
                    J::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            items.sort();
            out.insert(path.to_owned(), Value::List(items));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\n==hubform:os==\nID=ubuntu\nVERSION_ID=\"22.04\"\n\
        ==hubform:tljh==\nversion=2.0.0\n==hubform:config==\nusers:\n  \
        admin:\n  - bob\n  - alice\n  - alice\nhttps:\n  enabled: true\n\
        limits:\n  memory: 4G\n  cpu: 1.5\nservices:\n  cull:\n    \
        timeout: 3600\n==hubform:pip==\n[{\"name\": \"Flo_Py\", \"version\": \
        \"3.4\"}]\n==hubform:conda==\n[]\n==hubform:services==\n\
        jupyterhub=active\ntraefik=inactive\n==hubform:disk==\n/dev/root \
        20000 5000 15000 25% /\n==hubform:memory==\nMemTotal: 16000 kB\n\
        ==hubform:reboot==\n==hubform:end==\n";

    #[test]
    fn probe_output_parses_into_facts() {
        let facts = Facts::parse(OUTPUT).expect("parses");
        assert_eq!(facts.os["VERSION_ID"], "22.04");
        assert_eq!(facts.tljh_version.as_deref(), Some("2.0.0"));
        assert_eq!(
            facts.config["users.admin"],
            Value::List(vec!["alice".into(), "alice".into(), "bob".into()])
        );
        assert_eq!(facts.config["https.enabled"], Value::Bool(true));
        assert_eq!(facts.config["limits.memory"], Value::str("4G"));
        assert_eq!(facts.config["limits.cpu"], Value::Decimal("1.5".into()));
        assert_eq!(facts.config["services.cull.timeout"], Value::Int(3600));
        assert_eq!(facts.pip["flo-py"], "3.4");
        assert_eq!(facts.services["traefik"], "inactive");
        assert_eq!(facts.memory["MemTotal"], 16000);
        assert!(!facts.reboot_required);
    }

    #[test]
    fn a_cut_off_probe_is_an_error() {
        let cut = OUTPUT.split("==hubform:end==").next().expect("a part");
        assert!(matches!(Facts::parse(cut), Err(ProbeError::Incomplete)));
    }

    #[test]
    fn no_tljh_means_no_version_and_no_config() {
        let facts = Facts::parse(
            "==hubform:tljh==\n==hubform:config==\n\
            ==hubform:end==\n",
        )
        .expect("parses");
        assert_eq!(facts.tljh_version, None);
        assert!(facts.config.is_empty());
    }

    #[test]
    fn names_compare_as_pep_503_says() {
        assert_eq!(normalise("Flo_Py"), "flo-py");
        assert_eq!(normalise("zope.interface"), "zope-interface");
        assert_eq!(normalise("a--b__c"), "a-b-c");
    }
}
