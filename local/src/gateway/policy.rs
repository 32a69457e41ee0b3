//! A REST API's resource policy, evaluated as API Gateway evaluates it for callers that do not
//! sign their requests (`anonymous`): an explicit deny wins, else an allow that matches lets
//! the request through, else it is denied implicitly. API Gateway checks it before the API key.
//!
//! The part of the policy language evaluated here is what a policy for unsigned callers can
//! use: principal `*`, the actions `execute-api:Invoke` / `execute-api:*` / `*`, resources as
//! ARN patterns (`*` and `?`, and the `execute-api:/…` shorthand of the console), and the
//! `aws:SourceIp` condition under `IpAddress` or `NotIpAddress`. A statement with anything else
//! (another principal, another condition key, `NotAction`…) cannot be decided locally: it is
//! left out and counted ([`ResourcePolicy::skipped`]), and `books-local` says so when it starts.
//! No crate of the ecosystem evaluates IAM policies offline for this subset, so it is written
//! here.

use std::net::IpAddr;

use serde_json::Value;

/// How API Gateway decides a request under the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// A statement allows it and none denies it.
    Allowed,
    /// No statement allows it.
    ImplicitDeny,
    /// A statement denies it.
    ExplicitDeny,
}

/// An address range of `aws:SourceIp`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().ok()?;
        let full = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(full);
        (prefix <= full).then_some(Self { network, prefix })
    }

    fn contains(&self, address: IpAddr) -> bool {
        let bits = |a: IpAddr| match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let (network, width) = bits(self.network);
        let (candidate, candidate_width) = bits(address.to_canonical());
        if width != candidate_width {
            return false;
        }
        let shift = u32::from(width - self.prefix);
        shift >= 128 || (network >> shift) == (candidate >> shift)
    }
}

/// `aws:SourceIp` under one of the two IP operators.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SourceCondition {
    In(Vec<Cidr>),
    NotIn(Vec<Cidr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    resources: Vec<String>,
    source: Option<SourceCondition>,
}

/// Why a resource policy cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PolicyError {
    /// Neither as GetRestApi answers it nor as written.
    #[error("the resource policy is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// No `Statement`, or not an object or a list.
    #[error("the resource policy has no Statement")]
    NoStatement,
}

/// The statements of a resource policy that this emulator can decide.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePolicy {
    statements: Vec<Statement>,
    skipped: usize,
}

impl ResourcePolicy {
    /// Reads a policy as GetRestApi answers it (its quotes escaped) or as written.
    pub(crate) fn parse(text: &str) -> Result<Self, PolicyError> {
        let document: Value = serde_json::from_str(text)
            .or_else(|_| serde_json::from_str(&text.replace("\\\"", "\"")))
            .map_err(PolicyError::NotJson)?;
        let statements = match &document["Statement"] {
            Value::Array(statements) => statements.clone(),
            statement @ Value::Object(_) => vec![statement.clone()],
            _ => return Err(PolicyError::NoStatement),
        };
        let mut policy = Self::default();
        for statement in &statements {
            match Self::statement(statement) {
                Some(Some(statement)) => policy.statements.push(statement),
                Some(None) => {} // about other actions: nothing to do with invoking
                None => policy.skipped += 1,
            }
        }
        Ok(policy)
    }

    /// `None`: not decidable here; `Some(None)`: not about invoking.
    fn statement(statement: &Value) -> Option<Option<Statement>> {
        let object = statement.as_object()?;
        if ["NotAction", "NotResource", "NotPrincipal"].iter().any(|k| object.contains_key(*k)) {
            return None;
        }
        let allow = match object.get("Effect")?.as_str()? {
            "Allow" => true,
            "Deny" => false,
            _ => return None,
        };
        let invokes = strings(object.get("Action")?)?
            .iter()
            .any(|a| matches!(a.to_ascii_lowercase().as_str(), "execute-api:invoke" | "execute-api:*" | "*"));
        if !invokes {
            return Some(None);
        }
        let anyone = match object.get("Principal")? {
            Value::String(principal) => principal == "*",
            Value::Object(principal) => principal.get("AWS").and_then(Value::as_str) == Some("*"),
            _ => false,
        };
        if !anyone {
            return None;
        }
        let resources = strings(object.get("Resource")?)?.into_iter().map(expand_shorthand).collect();
        let source = match object.get("Condition") {
            None => None,
            Some(Value::Object(condition)) => {
                if condition.len() != 1 {
                    return None;
                }
                let (operator, keys) = condition.iter().next()?;
                let keys = keys.as_object()?;
                if keys.len() != 1 {
                    return None;
                }
                let ranges = strings(keys.get("aws:SourceIp")?)?
                    .iter()
                    .map(|range| Cidr::parse(range))
                    .collect::<Option<Vec<_>>>()?;
                match operator.as_str() {
                    "IpAddress" => Some(SourceCondition::In(ranges)),
                    "NotIpAddress" => Some(SourceCondition::NotIn(ranges)),
                    _ => return None,
                }
            }
            Some(_) => return None,
        };
        Some(Some(Statement { allow, resources, source }))
    }

    /// Statements left out because they cannot be decided locally.
    pub(crate) fn skipped(&self) -> usize {
        self.skipped
    }

    /// The decision for a request to `resource` (`arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<path>`)
    /// from `source`.
    pub(crate) fn decide(&self, resource: &str, source: IpAddr) -> Decision {
        let applies = |statement: &Statement| {
            statement.resources.iter().any(|pattern| glob(pattern, resource))
                && match &statement.source {
                    None => true,
                    Some(SourceCondition::In(ranges)) => ranges.iter().any(|r| r.contains(source)),
                    Some(SourceCondition::NotIn(ranges)) => !ranges.iter().any(|r| r.contains(source)),
                }
        };
        if self.statements.iter().any(|s| !s.allow && applies(s)) {
            Decision::ExplicitDeny
        } else if self.statements.iter().any(|s| s.allow && applies(s)) {
            Decision::Allowed
        } else {
            Decision::ImplicitDeny
        }
    }
}

/// A string or an array of strings.
fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(one) => Some(vec![one.clone()]),
        Value::Array(many) => many.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// `execute-api:/<stage>/<METHOD>/<path>`, the console's shorthand for this API's resources.
fn expand_shorthand(resource: String) -> String {
    match resource.strip_prefix("execute-api:/") {
        Some(rest) => format!("arn:*:execute-api:*:*:*/{rest}"),
        None => resource,
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t, mut star, mut resume) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            resume = t;
            p += 1;
        } else if let Some(at) = star {
            p = at + 1;
            resume += 1;
            t = resume;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// What terraform/modules/api renders with `allowed_source_cidrs` (aws_iam_policy_document).
    fn allow_list() -> String {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Invoke", "Effect": "Allow", "Action": "execute-api:Invoke", "Principal": "*",
                 "Resource": format!("{API}/*")},
                {"Sid": "OnlyFromAllowedSources", "Effect": "Deny", "Action": "execute-api:Invoke", "Principal": "*",
                 "Resource": format!("{API}/*"),
                 "Condition": {"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24", "198.51.100.7/32"]}}}
            ]
        })
        .to_string()
    }

    #[test]
    fn the_allow_list_lets_in_only_its_sources_and_denies_the_others_explicitly() {
        let policy = ResourcePolicy::parse(&allow_list()).unwrap();
        let books = format!("{API}/v1/GET/books");
        assert_eq!(policy.decide(&books, ip("203.0.113.9")), Decision::Allowed);
        assert_eq!(policy.decide(&books, ip("198.51.100.7")), Decision::Allowed);
        assert_eq!(policy.decide(&books, ip("198.51.100.8")), Decision::ExplicitDeny);
        assert_eq!(policy.decide(&books, ip("127.0.0.1")), Decision::ExplicitDeny);
        assert_eq!(policy.skipped(), 0);
    }

    #[test]
    fn the_escaped_form_get_rest_api_answers_reads_the_same() {
        let escaped = allow_list().replace('"', "\\\"");
        assert_eq!(ResourcePolicy::parse(&escaped).unwrap(), ResourcePolicy::parse(&allow_list()).unwrap());
    }

    /// The shape of AWS's documented source-IP example: deny listed ranges, allow the rest,
    /// resources in the console's shorthand.
    #[test]
    fn a_deny_list_in_the_shorthand_denies_its_ranges_only() {
        let policy = ResourcePolicy::parse(
            r#"{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
                {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
                 "Condition": {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}}}]}"#,
        )
        .unwrap();
        let get = format!("{API}/v1/GET/books/01J");
        assert_eq!(policy.decide(&get, ip("192.0.2.200")), Decision::ExplicitDeny);
        assert_eq!(policy.decide(&get, ip("2001:db8::1")), Decision::ExplicitDeny);
        assert_eq!(policy.decide(&get, ip("192.0.3.1")), Decision::Allowed);
        assert_eq!(policy.decide(&get, ip("::ffff:192.0.2.7")), Decision::ExplicitDeny, "an IPv4-mapped address");
    }

    #[test]
    fn resources_narrow_what_a_statement_covers_and_nothing_allowed_is_an_implicit_deny() {
        let policy = ResourcePolicy::parse(&format!(
            r#"{{"Statement": {{"Effect": "Allow", "Principal": {{"AWS": "*"}}, "Action": ["execute-api:*"],
                "Resource": ["{API}/v1/GET/books", "{API}/v1/GET/books/*"]}}}}"#
        ))
        .unwrap();
        assert_eq!(policy.decide(&format!("{API}/v1/GET/books"), ip("127.0.0.1")), Decision::Allowed);
        assert_eq!(policy.decide(&format!("{API}/v1/GET/books/01J"), ip("127.0.0.1")), Decision::Allowed);
        assert_eq!(policy.decide(&format!("{API}/v1/POST/books"), ip("127.0.0.1")), Decision::ImplicitDeny);
    }

    #[test]
    fn statements_that_need_a_signed_caller_or_other_conditions_are_left_out_and_counted() {
        let policy = ResourcePolicy::parse(
            r#"{"Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/dev"}, "Action": "execute-api:Invoke", "Resource": "*"},
                {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*",
                 "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}},
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}"#,
        )
        .unwrap();
        assert_eq!(policy.skipped(), 2);
        assert_eq!(policy.decide(&format!("{API}/v1/GET/books"), ip("127.0.0.1")), Decision::ImplicitDeny);
    }

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(glob("arn:*:execute-api:*:*:*/v1/*", "arn:aws:execute-api:us-east-1:1:a/v1/GET/books"));
        assert!(glob("*", ""));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(!glob("arn:*/v2/*", "arn:aws:execute-api:us-east-1:1:a/v1/GET/books"));
    }
}
