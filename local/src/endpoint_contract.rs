//! The examples of docs/local-endpoint-protocol.md, for books-local's side of the contract: the
//! unit tests of the modules that speak the local endpoint's private protocol read them here (the
//! endpoint's side is scripts/tests/test_endpoint_protocol.py).

/// The page, as it is built in.
const PAGE: &str = include_str!("../../docs/local-endpoint-protocol.md");

/// The JSON of the page's example marked `<!-- contract: {name} -->`.
pub(crate) fn example(name: &str) -> serde_json::Value {
    let marker = format!("<!-- contract: {name} -->");
    let after = PAGE.split_once(&marker).unwrap_or_else(|| panic!("the page has no contract example {name}")).1;
    let block = after.split_once("```json\n").and_then(|(_, rest)| rest.split_once("```")).map(|(json, _)| json);
    let json = block.unwrap_or_else(|| panic!("the contract example {name} is not a ```json block"));
    serde_json::from_str(json).unwrap_or_else(|error| panic!("the contract example {name}: {error}"))
}
