//! SLS request signature, version 1 (`x-log-signaturemethod: hmac-sha1`).
//!
//! ```text
//! StringToSign = VERB \n CONTENT-MD5 \n CONTENT-TYPE \n DATE \n
//!                sorted "name:value\n" of every x-log-* / x-acs-* header
//!                PATH [ "?" sorted "key=value" joined by "&" ]   (values decoded)
//! Authorization = "LOG " AccessKeyId ":" base64(HMAC-SHA1(secret, StringToSign))
//! ```

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The parts of a request that the v1 signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Upper-case hex MD5 of the body, `""` without a body.
    pub content_md5: &'a str,
    /// The `Content-Type` header, `""` when none is sent.
    pub content_type: &'a str,
    /// The `Date` header exactly as sent.
    pub date: &'a str,
    /// Every header sent (others than `x-log-*`/`x-acs-*` are ignored).
    pub headers: &'a [(&'a str, &'a str)],
    /// The path, e.g. `/logstores/my-logstore/shards/0`.
    pub path: &'a str,
    /// Query parameters with their decoded values.
    pub params: &'a [(&'a str, &'a str)],
}

/// Builds the string that is signed.
pub fn string_to_sign(req: &Request<'_>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(req.content_md5);
    out.push('\n');
    out.push_str(req.content_type);
    out.push('\n');
    out.push_str(req.date);
    out.push('\n');
    let mut headers: Vec<(String, &str)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
        .filter(|(k, _)| {
            (k.starts_with("x-log-") || k.starts_with("x-acs-")) && !k.starts_with("x-log-meta-")
        })
        .collect();
    headers.sort();
    for (k, v) in &headers {
        out.push_str(k);
        out.push(':');
        out.push_str(v);
        out.push('\n');
    }
    out.push_str(req.path);
    if !req.params.is_empty() {
        let mut params = req.params.to_vec();
        params.sort();
        out.push('?');
        for (i, (k, v)) in params.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// `base64(HMAC-SHA1(secret, string_to_sign))`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    // HMAC takes keys of any length, so new_from_slice cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization` header value for `req`.
pub fn authorization(access_key_id: &str, secret: &str, req: &Request<'_>) -> String {
    format!(
        "LOG {access_key_id}:{}",
        signature(secret, &string_to_sign(req))
    )
}

/// Constant-time comparison, for servers that check a signature.
pub fn equal_signatures(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    //! Vectors copied verbatim from the official SDK test suites and from the Python SDK
    //! (research/sls-api.md §4.1).
    use super::*;

    const PULL_HEADERS: &[(&str, &str)] = &[
        ("x-log-apiversion", "0.6.0"),
        ("x-log-bodyrawsize", "0"),
        ("x-log-signaturemethod", "hmac-sha1"),
    ];

    #[test]
    fn go_sdk_test_signature_get() {
        let req = Request {
            method: "GET",
            content_md5: "",
            content_type: "",
            date: "Mon, 3 Jan 2010 08:33:47 GMT",
            headers: &[
                ("x-log-apiversion", "0.6.0"),
                ("x-log-signaturemethod", "hmac-sha1"),
                ("x-log-bodyrawsize", "0"),
                ("Date", "Mon, 3 Jan 2010 08:33:47 GMT"),
            ],
            path: "/logstores",
            params: &[],
        };
        assert_eq!(
            string_to_sign(&req),
            "GET\n\n\nMon, 3 Jan 2010 08:33:47 GMT\nx-log-apiversion:0.6.0\nx-log-bodyrawsize:0\nx-log-signaturemethod:hmac-sha1\n/logstores"
        );
        assert_eq!(
            authorization("mockAccessKeyID", "mockAccessKeySecret", &req),
            "LOG mockAccessKeyID:Rwm6cTKzoti4HWoe+GKcb6Kv07E="
        );
    }

    #[test]
    fn go_sdk_test_signature_post() {
        let req = Request {
            method: "GET",
            content_md5: "8D6881250FF5559F59BBDF04100F6E59",
            content_type: "application/x-protobuf",
            date: "Mon, 3 Jan 2010 08:33:47 GMT",
            headers: &[
                ("x-log-apiversion", "0.6.0"),
                ("x-log-signaturemethod", "hmac-sha1"),
                ("x-log-bodyrawsize", "50"),
                ("Content-MD5", "8D6881250FF5559F59BBDF04100F6E59"),
                ("Content-Type", "application/x-protobuf"),
                ("Content-Length", "50"),
            ],
            path: "/logstores/app_log",
            params: &[],
        };
        assert_eq!(
            string_to_sign(&req),
            "GET\n8D6881250FF5559F59BBDF04100F6E59\napplication/x-protobuf\nMon, 3 Jan 2010 08:33:47 GMT\nx-log-apiversion:0.6.0\nx-log-bodyrawsize:50\nx-log-signaturemethod:hmac-sha1\n/logstores/app_log"
        );
        assert_eq!(
            authorization("mockAccessKeyID", "mockAccessKeySecret", &req),
            "LOG mockAccessKeyID:87xQWqFaOSewqRIma8kPjGYlXHc="
        );
    }

    const RUST_DATE: &str = "Thu, 01 Jan 1970 00:00:00 GMT";
    const RUST_MD5: &str = "CE688F8D1AC3ED309BA9BE0A5ABAFCE5";
    const RUST_V1: &[(&str, &str)] = &[
        ("x-log-apiversion", "0.6.0"),
        ("x-log-signaturemethod", "hmac-sha1"),
    ];
    const RUST_V1_STS: &[(&str, &str)] = &[
        ("x-log-apiversion", "0.6.0"),
        ("x-log-signaturemethod", "hmac-sha1"),
        ("x-acs-security-token", "test-security-token"),
    ];

    #[test]
    fn rust_sdk_case1_empty_credentials() {
        let req = Request {
            method: "GET",
            content_md5: "",
            content_type: "",
            date: RUST_DATE,
            headers: RUST_V1,
            path: "/",
            params: &[],
        };
        assert_eq!(
            string_to_sign(&req),
            "GET\n\n\nThu, 01 Jan 1970 00:00:00 GMT\nx-log-apiversion:0.6.0\nx-log-signaturemethod:hmac-sha1\n/"
        );
        assert_eq!(
            authorization("", "", &req),
            "LOG :SApFTtfTFKHmzdEdaMe5TjNn+RQ="
        );
    }

    #[test]
    fn rust_sdk_case2_params_sorted() {
        let req = Request {
            method: "POST",
            content_md5: RUST_MD5,
            content_type: "application/json",
            date: RUST_DATE,
            headers: RUST_V1,
            path: "/logstores/test-logstore",
            params: &[("type", "log"), ("offset", "0"), ("line", "100")],
        };
        assert_eq!(
            string_to_sign(&req),
            "POST\nCE688F8D1AC3ED309BA9BE0A5ABAFCE5\napplication/json\nThu, 01 Jan 1970 00:00:00 GMT\nx-log-apiversion:0.6.0\nx-log-signaturemethod:hmac-sha1\n/logstores/test-logstore?line=100&offset=0&type=log"
        );
        assert_eq!(
            authorization("test-access-key-id", "test-access-key", &req),
            "LOG test-access-key-id:4pL2xZJERC3tPKtRiHh9+nMG3tI="
        );
    }

    #[test]
    fn rust_sdk_case3_security_token() {
        let req = Request {
            method: "POST",
            content_md5: RUST_MD5,
            content_type: "application/json",
            date: RUST_DATE,
            headers: RUST_V1_STS,
            path: "/logstores/test-logstore",
            params: &[("type", "log"), ("offset", "0"), ("line", "100")],
        };
        assert_eq!(
            authorization("test-access-key-id", "test-access-key", &req),
            "LOG test-access-key-id:ZQt+0wIvpd+O9yIJKeKxZTJ2hv0="
        );
    }

    #[test]
    fn rust_sdk_case4_cursor_param_unencoded() {
        let req = Request {
            method: "POST",
            content_md5: RUST_MD5,
            content_type: "application/json",
            date: RUST_DATE,
            headers: RUST_V1_STS,
            path: "/logstores/test/shards/2",
            params: &[
                ("type", "log"),
                ("count", "1000"),
                ("cursor", "MTczNzY2OTAzNjAxNzIxODQ1NA=="),
            ],
        };
        assert_eq!(
            string_to_sign(&req),
            "POST\nCE688F8D1AC3ED309BA9BE0A5ABAFCE5\napplication/json\nThu, 01 Jan 1970 00:00:00 GMT\nx-acs-security-token:test-security-token\nx-log-apiversion:0.6.0\nx-log-signaturemethod:hmac-sha1\n/logstores/test/shards/2?count=1000&cursor=MTczNzY2OTAzNjAxNzIxODQ1NA==&type=log"
        );
        assert_eq!(
            authorization("test-access-key-id", "test-access-key", &req),
            "LOG test-access-key-id:K3rw5WXRe77aZ/meSyEa8NNUYFc="
        );
    }

    const PY_DATE: &str = "Mon, 09 Nov 2015 06:11:16 GMT";
    const CURSOR: &str = "MTU0NzQ3MDY4MjM3NjUxMzQ0Ng==";

    #[test]
    fn python_sdk_p1_pull_logs_with_end_cursor() {
        let req = Request {
            method: "GET",
            content_md5: "",
            content_type: "",
            date: PY_DATE,
            headers: PULL_HEADERS,
            path: "/logstores/my-logstore/shards/0",
            params: &[
                ("type", "log"),
                ("cursor", CURSOR),
                ("count", "1000"),
                ("end_cursor", "MTU0NzQ3MDY4MjM3NjUxMzQ1Ng=="),
            ],
        };
        assert_eq!(
            string_to_sign(&req),
            "GET\n\n\nMon, 09 Nov 2015 06:11:16 GMT\nx-log-apiversion:0.6.0\nx-log-bodyrawsize:0\nx-log-signaturemethod:hmac-sha1\n/logstores/my-logstore/shards/0?count=1000&cursor=MTU0NzQ3MDY4MjM3NjUxMzQ0Ng==&end_cursor=MTU0NzQ3MDY4MjM3NjUxMzQ1Ng==&type=log"
        );
        assert_eq!(
            authorization("testAccessKeyId", "testAccessKeySecret", &req),
            "LOG testAccessKeyId:OHolSDBS9INyYde3Auw6DTX7sKg="
        );
    }

    #[test]
    fn python_sdk_p2_pull_logs_with_sts_token() {
        let headers = [
            ("x-acs-security-token", "testSecurityToken"),
            ("x-log-apiversion", "0.6.0"),
            ("x-log-bodyrawsize", "0"),
            ("x-log-signaturemethod", "hmac-sha1"),
        ];
        let req = Request {
            method: "GET",
            content_md5: "",
            content_type: "",
            date: PY_DATE,
            headers: &headers,
            path: "/logstores/my-logstore/shards/0",
            params: &[("type", "log"), ("cursor", CURSOR), ("count", "100")],
        };
        assert_eq!(
            string_to_sign(&req),
            "GET\n\n\nMon, 09 Nov 2015 06:11:16 GMT\nx-acs-security-token:testSecurityToken\nx-log-apiversion:0.6.0\nx-log-bodyrawsize:0\nx-log-signaturemethod:hmac-sha1\n/logstores/my-logstore/shards/0?count=100&cursor=MTU0NzQ3MDY4MjM3NjUxMzQ0Ng==&type=log"
        );
        assert_eq!(
            authorization("STS.testAccessKeyId", "testAccessKeySecret", &req),
            "LOG STS.testAccessKeyId:VJFL4f3ThygW7NYbFr0baPF5LdU="
        );
    }

    #[test]
    fn python_sdk_p3_and_p4() {
        let p3 = Request {
            method: "GET",
            content_md5: "",
            content_type: "",
            date: PY_DATE,
            headers: PULL_HEADERS,
            path: "/logstores/my-logstore/shards/0",
            params: &[("type", "log"), ("cursor", CURSOR), ("count", "10")],
        };
        assert_eq!(
            authorization("testAccessKeyId", "testAccessKeySecret", &p3),
            "LOG testAccessKeyId:1GlfOKTFGuPYKSVRVXeleZNtdfo="
        );
        let p4 = Request {
            params: &[
                ("type", "log"),
                ("cursor", CURSOR),
                ("count", "1000"),
                ("pullMode", "scan_on_stream"),
                ("query", "* | where level = 'ERROR'"),
            ],
            ..p3
        };
        assert_eq!(
            string_to_sign(&p4),
            "GET\n\n\nMon, 09 Nov 2015 06:11:16 GMT\nx-log-apiversion:0.6.0\nx-log-bodyrawsize:0\nx-log-signaturemethod:hmac-sha1\n/logstores/my-logstore/shards/0?count=1000&cursor=MTU0NzQ3MDY4MjM3NjUxMzQ0Ng==&pullMode=scan_on_stream&query=* | where level = 'ERROR'&type=log"
        );
        assert_eq!(
            authorization("testAccessKeyId", "testAccessKeySecret", &p4),
            "LOG testAccessKeyId:E+JKT9K10rtEQLGDaH5sDfwCGB4="
        );
    }

    #[test]
    fn python_sdk_c1_get_cursor_with_content_type() {
        let req = Request {
            method: "GET",
            content_md5: "",
            content_type: "application/json",
            date: PY_DATE,
            headers: PULL_HEADERS,
            path: "/logstores/my-logstore/shards/0",
            params: &[("type", "cursor"), ("from", "begin")],
        };
        assert_eq!(
            authorization("testAccessKeyId", "testAccessKeySecret", &req),
            "LOG testAccessKeyId:uEA0Mmz+MPyKyM/bd7VkvuGamrY="
        );
    }

    #[test]
    fn constant_time_compare() {
        assert!(equal_signatures("abc", "abc"));
        assert!(!equal_signatures("abc", "abd"));
        assert!(!equal_signatures("abc", "ab"));
    }
}
