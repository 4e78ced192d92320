//! Just enough X.509 (DER) to describe a receiver's certificate in `sls-syslog check`:
//! subject, issuer, validity and subject alternative names, plus a SHA-256 fingerprint.
//!
//! This is a reader, not a verifier: rustls (webpki) decides whether a certificate is
//! trusted. Anything this walker does not understand makes [`describe`] return `None`, and
//! `check` then shows the fingerprint only.

/// What `check` prints about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// `C=…, O=…, CN=…`, in certificate order.
    pub subject: String,
    pub issuer: String,
    /// `YYYY-MM-DD hh:mm:ss UTC`.
    pub not_before: String,
    pub not_after: String,
    /// `DNS:…`, `IP:…`, `email:…`, `URI:…`.
    pub alt_names: Vec<String>,
}

impl CertInfo {
    /// `None` when valid now, else why not (`expired`, `not yet valid`).
    pub fn validity_problem(&self, now: &crate::time::Utc) -> Option<&'static str> {
        let now = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            now.year, now.month, now.day, now.hour, now.minute, now.second
        );
        // Same fixed-width form: the text order is the time order.
        if now > self.not_after {
            Some("expired")
        } else if now < self.not_before {
            Some("not yet valid")
        } else {
            None
        }
    }
}

/// One DER element from the front of `input`: its tag and contents. Definite lengths only
/// (DER has no other), low tag numbers only (certificates use no others).
fn element<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    *input = after;
    Some((tag, contents))
}

/// The next element, which must have tag `tag`.
fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<&'a [u8]> {
    let (t, contents) = element(input)?;
    (t == tag).then_some(contents)
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Reads a DER certificate; `None` when it is not one this walker can read.
pub fn describe(der: &[u8]) -> Option<CertInfo> {
    let mut input = der;
    let mut cert = expect(&mut input, SEQUENCE)?;
    let mut tbs = expect(&mut cert, SEQUENCE)?;
    let (mut tag, _) = element(&mut tbs)?;
    if tag == 0xa0 {
        // [0] EXPLICIT version; the serial number follows.
        tag = element(&mut tbs)?.0;
    }
    if tag != INTEGER {
        return None;
    }
    expect(&mut tbs, SEQUENCE)?; // signature algorithm
    let issuer = name(expect(&mut tbs, SEQUENCE)?)?;
    let mut validity = expect(&mut tbs, SEQUENCE)?;
    let not_before = time(&mut validity)?;
    let not_after = time(&mut validity)?;
    let subject = name(expect(&mut tbs, SEQUENCE)?)?;
    expect(&mut tbs, SEQUENCE)?; // subject public key info
    let mut alt_names = Vec::new();
    while !tbs.is_empty() {
        let (tag, contents) = element(&mut tbs)?;
        if tag == 0xa3 {
            alt_names = subject_alt_names(contents)?;
        }
    }
    Some(CertInfo {
        subject,
        issuer,
        not_before,
        not_after,
        alt_names,
    })
}

/// A Name (SEQUENCE OF SET OF AttributeTypeAndValue) as `C=…, O=…, CN=…`.
fn name(mut rdns: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let mut set = expect(&mut rdns, SET)?;
        while !set.is_empty() {
            let mut attr = expect(&mut set, SEQUENCE)?;
            let oid = expect(&mut attr, OID)?;
            let (tag, value) = element(&mut attr)?;
            parts.push(format!("{}={}", attribute_name(oid), string(tag, value)));
        }
    }
    Some(if parts.is_empty() {
        "(empty)".into()
    } else {
        parts.join(", ")
    })
}

fn attribute_name(oid: &[u8]) -> String {
    let short = match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "street",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        _ => return dotted(oid),
    };
    short.to_string()
}

/// An OID in dotted form (`1.2.840.113549`).
fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut n = 0u64;
    for &b in oid {
        n = (n << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (n / 40).min(2);
                arcs.push(first);
                arcs.push(n - first * 40);
            } else {
                arcs.push(n);
            }
            n = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A directory string: UTF8String, PrintableString, IA5String, TeletexString (as Latin-1),
/// BMPString (UTF-16BE); anything else as `#hex`.
fn string(tag: u8, value: &[u8]) -> String {
    match tag {
        0x0c | 0x13 | 0x16 => String::from_utf8_lossy(value).into_owned(),
        0x14 => value.iter().map(|&b| char::from(b)).collect(),
        0x1e => {
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => format!("#{}", hex(value, "")),
    }
}

/// UTCTime (`YYMMDDhhmmssZ`) or GeneralizedTime (`YYYYMMDDhhmmssZ`) as
/// `YYYY-MM-DD hh:mm:ss UTC`.
fn time(input: &mut &[u8]) -> Option<String> {
    let (tag, value) = element(input)?;
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, digits.len()) {
        // RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
        (UTC_TIME, 12) => {
            let century = if digits < "50" { "20" } else { "19" };
            format!("{century}{digits}")
        }
        (GENERALIZED_TIME, 14) => digits.to_string(),
        _ => return None,
    };
    Some(format!(
        "{}-{}-{} {}:{}:{} UTC",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

/// The subjectAltName entries in the `[3]` extensions.
fn subject_alt_names(explicit: &[u8]) -> Option<Vec<String>> {
    let mut outer = explicit;
    let mut extensions = expect(&mut outer, SEQUENCE)?;
    while !extensions.is_empty() {
        let mut ext = expect(&mut extensions, SEQUENCE)?;
        let oid = expect(&mut ext, OID)?;
        if oid != [0x55, 0x1d, 0x11] {
            continue;
        }
        let (mut tag, mut value) = element(&mut ext)?;
        if tag == 0x01 {
            // critical BOOLEAN
            (tag, value) = element(&mut ext)?;
        }
        if tag != OCTET_STRING {
            return None;
        }
        let mut inner = value;
        let mut names = expect(&mut inner, SEQUENCE)?;
        let mut out = Vec::new();
        while !names.is_empty() {
            let (tag, v) = element(&mut names)?;
            match tag {
                0x81 => out.push(format!("email:{}", String::from_utf8_lossy(v))),
                0x82 => out.push(format!("DNS:{}", String::from_utf8_lossy(v))),
                0x86 => out.push(format!("URI:{}", String::from_utf8_lossy(v))),
                0x87 => out.push(format!("IP:{}", ip(v))),
                _ => {}
            }
        }
        return Some(out);
    }
    Some(Vec::new())
}

fn ip(v: &[u8]) -> String {
    if let Ok(a) = <[u8; 4]>::try_from(v) {
        std::net::Ipv4Addr::from(a).to_string()
    } else if let Ok(a) = <[u8; 16]>::try_from(v) {
        std::net::Ipv6Addr::from(a).to_string()
    } else {
        format!("#{}", hex(v, ""))
    }
}

/// `ab:cd:…` (with `sep` between bytes).
pub fn hex(bytes: &[u8], sep: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The SHA-256 fingerprint of a DER certificate, `AB:CD:…` (as `openssl x509 -fingerprint
/// -sha256` prints it), from the TLS provider's own SHA-256.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    match suite.tls13() {
        Some(s) => hex(s.common.hash_provider.hash(der).as_ref(), ":"),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
    /// -subj "/C=CN/O=Example Org/CN=siem.example.com" -addext
    /// "subjectAltName=DNS:siem.example.com,IP:10.0.0.5,IP:::1,email:ops@example.com"
    /// -addext "basicConstraints=critical,CA:FALSE" -days 36500` (OpenSSL 3.0): a UTCTime
    /// notBefore and a GeneralizedTime notAfter. `openssl x509 -noout -fingerprint -sha256`
    /// gives the fingerprint below.
    const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIICFzCCAb6gAwIBAgIUeTU4Lu0hI07dk2TZ0x0M8rzD0vUwCgYIKoZIzj0EAwIw
PjELMAkGA1UEBhMCQ04xFDASBgNVBAoMC0V4YW1wbGUgT3JnMRkwFwYDVQQDDBBz
aWVtLmV4YW1wbGUuY29tMCAXDTI2MTEyNjIwMzgxOVoYDzIxMjYxMTAyMjAzODE5
WjA+MQswCQYDVQQGEwJDTjEUMBIGA1UECgwLRXhhbXBsZSBPcmcxGTAXBgNVBAMM
EHNpZW0uZXhhbXBsZS5jb20wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARjYybR
Vg+p56cOnhV7SuSyz63uxdOnoaOuE3+oFncSzV7Gva58HRZzdM928Nz8c1cmRFvS
BUjijyGJTFjwy+HEo4GXMIGUMB0GA1UdDgQWBBTeP2eWV0caZ6VqCsDBAUq8CL4k
ejAfBgNVHSMEGDAWgBTeP2eWV0caZ6VqCsDBAUq8CL4kejBEBgNVHREEPTA7ghBz
aWVtLmV4YW1wbGUuY29thwQKAAAFhxAAAAAAAAAAAAAAAAAAAAABgQ9vcHNAZXhh
bXBsZS5jb20wDAYDVR0TAQH/BAIwADAKBggqhkjOPQQDAgNHADBEAiBCeVGyeQ0J
sdLjh49Phw4LsuZ1OxczWlaFnTtIHI6a7gIgSVKiO+/gaPTAb5fvWE/fTGhZ8IMe
pP+ysIdmWDHbPx4=
-----END CERTIFICATE-----
";
    const CERT_SHA256: &str = "1B:50:CA:A1:1F:CD:0F:65:4F:05:2B:75:C7:54:1B:20:DF:37:99:82:45:EF:E5:99:B5:F6:BE:3A:AF:89:D9:97";

    fn cert_der() -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(CERT_PEM.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn describes_an_openssl_certificate() {
        let der = cert_der();
        let info = describe(&der).unwrap();
        assert_eq!(info.subject, "C=CN, O=Example Org, CN=siem.example.com");
        assert_eq!(info.issuer, info.subject);
        assert_eq!(info.not_before, "2026-11-26 20:38:19 UTC");
        assert_eq!(info.not_after, "2126-11-02 20:38:19 UTC");
        assert_eq!(
            info.alt_names,
            [
                "DNS:siem.example.com",
                "IP:10.0.0.5",
                "IP:::1",
                "email:ops@example.com"
            ]
        );
        assert_eq!(sha256_fingerprint(&der), CERT_SHA256);
        let at = |y: i64| crate::time::Utc::from_unix((y - 1970) * 365 * 86_400);
        assert_eq!(info.validity_problem(&at(2000)), Some("not yet valid"));
        assert_eq!(info.validity_problem(&at(2100)), None);
        assert_eq!(info.validity_problem(&at(2200)), Some("expired"));
        // Every truncation is refused, none panics.
        for cut in 0..der.len() {
            assert_eq!(describe(&der[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn oids_print_dotted() {
        assert_eq!(
            dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            "1.2.840.113549"
        );
        assert_eq!(dotted(&[0x55, 0x1d, 0x11]), "2.5.29.17");
        assert_eq!(attribute_name(&[0x55, 0x04, 0x03]), "CN");
        assert_eq!(attribute_name(&[0x55, 0x04, 0x2a]), "2.5.4.42");
    }

    #[test]
    fn times_follow_rfc_5280() {
        let t = |tag: u8, s: &str| {
            let mut der = vec![tag, s.len() as u8];
            der.extend_from_slice(s.as_bytes());
            time(&mut der.as_slice())
        };
        assert_eq!(
            t(UTC_TIME, "240501123456Z").as_deref(),
            Some("2024-05-01 12:34:56 UTC")
        );
        assert_eq!(
            t(UTC_TIME, "991231235959Z").as_deref(),
            Some("1999-12-31 23:59:59 UTC")
        );
        assert_eq!(
            t(GENERALIZED_TIME, "20500101000000Z").as_deref(),
            Some("2050-01-01 00:00:00 UTC")
        );
        assert_eq!(t(UTC_TIME, "2405011234Z"), None);
        assert_eq!(t(UTC_TIME, "24050112345xZ"), None);
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(element(&mut &[0x30, 0x03, 0x01][..]), None);
        assert_eq!(element(&mut &[0x30, 0x81][..]), None);
        assert_eq!(element(&mut &[0x30, 0x80, 0x00, 0x00][..]), None);
        let mut input = &[0x30, 0x82, 0x00, 0x01, 0xff, 0x05][..];
        assert_eq!(element(&mut input), Some((0x30, &[0xff][..])));
        assert_eq!(input, &[0x05]);
        assert_eq!(describe(b"not a certificate"), None);
        assert_eq!(describe(&[]), None);
    }

    #[test]
    fn strings_and_addresses() {
        assert_eq!(string(0x0c, "日志".as_bytes()), "日志");
        assert_eq!(string(0x1e, &[0x65, 0xe5, 0x00, 0x41]), "日A");
        assert_eq!(string(0x14, &[0xe9]), "é");
        assert_eq!(string(0x03, &[0x01, 0xab]), "#01AB");
        assert_eq!(ip(&[10, 0, 0, 5]), "10.0.0.5");
        assert_eq!(ip(&[0; 15]).len(), 31);
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip(&v6), "::1");
    }

    #[test]
    fn fingerprint_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            sha256_fingerprint(b"abc").replace(':', ""),
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        );
    }
}
