//! Arbitrary bytes as an AWS query-protocol body (or URL query string) into `QueryParams::parse`, then
//! every accessor that interprets parameter names: `get`, `action`, `list`, `ec2_list`, `ec2_structs`.
//!
//! Properties: no panic; non-UTF-8 input is refused with `MalformedQueryString` (400) and UTF-8 input is
//! accepted; `list("Name")` returns exactly the values of the keys `Name.member.N` (N a `u32`), ordered
//! by N; `ec2_list` only keys `Name.N` with N >= 1 and `ec2_structs` only items N >= 1, in ascending order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_proto::query::QueryParams;

fuzz_target!(|data: &[u8]| {
    let params = match QueryParams::parse(data) {
        Ok(p) => p,
        Err(e) => {
            assert!(std::str::from_utf8(data).is_err(), "UTF-8 input refused: {e:?}");
            assert_eq!((e.code.as_ref(), e.status), ("MalformedQueryString", 400));
            return;
        }
    };
    assert!(std::str::from_utf8(data).is_ok(), "non-UTF-8 input accepted");
    let _ = params.action();

    // Every list name the input mentions, plus the ones the services use.
    let mut names: Vec<String> = params.keys().filter_map(|k| k.split_once('.').map(|(n, _)| n.to_string())).collect();
    names.extend(["Targets", "Names", "TargetGroupArns", "Filter", "InstanceId"].map(String::from));
    names.sort();
    names.dedup();
    for name in &names {
        let list = params.list(name);
        let prefix = format!("{name}.member.");
        let mut expected: Vec<(u32, &str)> = params
            .keys()
            .filter_map(|k| Some((k.strip_prefix(&prefix)?.parse::<u32>().ok()?, params.get(k)?)))
            .collect();
        expected.sort_by_key(|(n, _)| *n);
        assert_eq!(list, expected.iter().map(|(_, v)| *v).collect::<Vec<_>>(), "list({name:?})");
        let ec2 = params.ec2_list(name);
        assert!(ec2.len() <= params.keys().count());
        for v in &ec2 {
            assert!(params.keys().any(|k| params.get(k) == Some(*v)));
        }
        let structs = params.ec2_structs(name);
        assert!(structs.windows(2).all(|w| w[0].0 < w[1].0), "ec2_structs out of order");
        assert!(structs.iter().all(|(n, _)| *n >= 1), "ec2_structs item 0");
    }
});
