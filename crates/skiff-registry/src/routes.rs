//! The `/v2/` URL layout. Repository names contain `/`, so a path is read from the right: the last one or
//! two components say what is addressed (`manifests/<ref>`, `blobs/<digest>`, `blobs/uploads/<id>`,
//! `referrers/<digest>`, `tags/list`) and everything before them is the name. Names are never
//! percent-decoded (a `%` makes the name invalid); the final component is.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    Catalog,
    Tags {
        name: String,
    },
    Manifest {
        name: String,
        reference: String,
    },
    Blob {
        name: String,
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/`: start an upload (or mount).
    Uploads {
        name: String,
    },
    Upload {
        name: String,
        id: String,
    },
    Referrers {
        name: String,
        digest: String,
    },
}

impl Route {
    pub fn name(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Tags { name }
            | Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::Uploads { name }
            | Route::Upload { name, .. }
            | Route::Referrers { name, .. } => Some(name),
        }
    }
}

/// The route of `path`, or `None` when it addresses nothing the registry serves.
pub fn parse(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags { name: name.to_string() });
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads/").or_else(|| rest.strip_suffix("/blobs/uploads")) {
        return Some(Route::Uploads { name: name.to_string() });
    }
    let (head, last) = rest.rsplit_once('/')?;
    let last = decode(last);
    if last.is_empty() {
        return None;
    }
    let (name, kind) = head.rsplit_once('/')?;
    let name = name.to_string();
    match kind {
        "manifests" => Some(Route::Manifest { name, reference: last }),
        "blobs" => Some(Route::Blob { name, digest: last }),
        "referrers" => Some(Route::Referrers { name, digest: last }),
        "uploads" => Some(Route::Upload { name: name.strip_suffix("/blobs")?.to_string(), id: last }),
        _ => None,
    }
}

fn decode(component: &str) -> String {
    percent_encoding::percent_decode_str(component).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn routes_read_from_the_right() {
        let cases = [
            ("/v2/", Some(Route::Base)),
            ("/v2", Some(Route::Base)),
            ("/v2/_catalog", Some(Route::Catalog)),
            ("/v2/team/web/tags/list", Some(Route::Tags { name: s("team/web") })),
            ("/v2/a/manifests/b/manifests/v1", Some(Route::Manifest { name: s("a/manifests/b"), reference: s("v1") })),
            ("/v2/blobs/blobs/sha256:ab", Some(Route::Blob { name: s("blobs"), digest: s("sha256:ab") })),
            ("/v2/web/blobs/sha256%3Aab", Some(Route::Blob { name: s("web"), digest: s("sha256:ab") })),
            ("/v2/x/y/blobs/uploads/", Some(Route::Uploads { name: s("x/y") })),
            ("/v2/x/y/blobs/uploads", Some(Route::Uploads { name: s("x/y") })),
            ("/v2/x/blobs/uploads/1234", Some(Route::Upload { name: s("x"), id: s("1234") })),
            ("/v2/x/referrers/sha256:ab", Some(Route::Referrers { name: s("x"), digest: s("sha256:ab") })),
            ("/v2/%2e%2e/manifests/v1", Some(Route::Manifest { name: s("%2e%2e"), reference: s("v1") })),
            ("/v2/x/uploads/1234", None),
            ("/v2/x/manifests/", None),
            ("/v2/x", None),
            ("/v2x/y/tags/list", None),
            ("/v3/x/tags/list", None),
        ];
        for (path, want) in cases {
            assert_eq!(parse(path), want, "{path}");
        }
    }
}
