//! Matches a request path against the REST API's resource templates the way API Gateway does:
//! literal segments beat `{param}` segments, which beat a greedy `{name+}` tail.

use std::collections::BTreeMap;

use super::config::{Method, Resource};

/// A resource matched by a request path, with its path parameters.
#[derive(Debug)]
pub(crate) struct Route<'a> {
    /// The resource.
    pub(crate) resource: &'a Resource,
    /// Its path parameters, by name (`id`, `proxy`).
    pub(crate) path_parameters: BTreeMap<String, String>,
}

impl<'a> Route<'a> {
    /// The method serving `http_method`, or the resource's `ANY` method.
    pub(crate) fn method(&self, http_method: &str) -> Option<&'a Method> {
        self.resource.methods.get(http_method).or_else(|| self.resource.methods.get("ANY"))
    }
}

/// How a template segment matched; the derived order ranks specificity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    Greedy,
    Variable,
    Literal,
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The most specific resource whose template matches `path` (the path below the stage).
pub(crate) fn route<'a>(resources: &'a [Resource], path: &str) -> Option<Route<'a>> {
    let request = segments(path);
    resources
        .iter()
        .filter_map(|resource| {
            let (rank, path_parameters) = match_template(&segments(&resource.path), &request)?;
            Some((rank, Route { resource, path_parameters }))
        })
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, route)| route)
}

fn match_template(template: &[&str], request: &[&str]) -> Option<(Vec<Match>, BTreeMap<String, String>)> {
    let mut rank = Vec::with_capacity(template.len());
    let mut parameters = BTreeMap::new();
    for (index, part) in template.iter().enumerate() {
        let variable = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'));
        match variable {
            Some(name) if name.ends_with('+') => {
                // A greedy variable takes one or more of the remaining segments, and ends the template.
                if index + 1 != template.len() || index >= request.len() {
                    return None;
                }
                parameters.insert(name.trim_end_matches('+').to_owned(), request[index..].join("/"));
                rank.push(Match::Greedy);
                return Some((rank, parameters));
            }
            Some(name) => {
                parameters.insert(name.to_owned(), (*request.get(index)?).to_owned());
                rank.push(Match::Variable);
            }
            None if request.get(index) == Some(part) => rank.push(Match::Literal),
            None => return None,
        }
    }
    (template.len() == request.len()).then_some((rank, parameters))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> Resource {
        Resource { id: path.to_owned(), path: path.to_owned(), methods: BTreeMap::new() }
    }

    #[test]
    fn literal_segments_win_over_variables_and_greedy_tails() {
        let resources: Vec<Resource> =
            ["/", "/books", "/books/{id}", "/books/search", "/{proxy+}"].into_iter().map(resource).collect();
        let found = |path: &str| route(&resources, path).map(|r| (r.resource.path.clone(), r.path_parameters));

        assert_eq!(found("/").unwrap().0, "/");
        assert_eq!(found("/books").unwrap().0, "/books");
        assert_eq!(found("/books/search").unwrap().0, "/books/search");
        let (path, parameters) = found("/books/01J").unwrap();
        assert_eq!(path, "/books/{id}");
        assert_eq!(parameters["id"], "01J");
        let (path, parameters) = found("/books/01J/covers/front").unwrap();
        assert_eq!(path, "/{proxy+}");
        assert_eq!(parameters["proxy"], "books/01J/covers/front");
    }

    #[test]
    fn unknown_paths_match_nothing() {
        let resources: Vec<Resource> = ["/", "/books", "/books/{id}"].into_iter().map(resource).collect();
        assert!(route(&resources, "/authors").is_none());
        assert!(route(&resources, "/books/1/2").is_none());
    }

    #[test]
    fn a_greedy_variable_needs_at_least_one_segment() {
        let resources = vec![resource("/files/{path+}")];
        assert!(route(&resources, "/files").is_none());
        assert_eq!(route(&resources, "/files/a/b").unwrap().path_parameters["path"], "a/b");
    }
}
