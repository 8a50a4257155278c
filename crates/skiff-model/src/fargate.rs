//! Fargate task sizes: the task-level `cpu`/`memory` strings ECS accepts ("1024", "1 vCPU", "2 GB", …) and
//! the cpu/memory combinations Fargate offers. The runtime and the docs reuse [`FARGATE_CPU_MEMORY`].

/// Every Fargate cpu value (CPU units, 1024 = 1 vCPU) with the memory values (MiB) it can be paired with,
/// as the ECS developer guide's "Task size" table lists them (8 and 16 vCPU need Linux platform 1.4.0+).
pub const FARGATE_CPU_MEMORY: &[(u32, &[u32])] = &[
    (256, &[512, 1024, 2048]),
    (512, &[1024, 2048, 3072, 4096]),
    (1024, &[2048, 3072, 4096, 5120, 6144, 7168, 8192]),
    (2048, &[4096, 5120, 6144, 7168, 8192, 9216, 10240, 11264, 12288, 13312, 14336, 15360, 16384]),
    (
        4096,
        &[
            8192, 9216, 10240, 11264, 12288, 13312, 14336, 15360, 16384, 17408, 18432, 19456, 20480, 21504, 22528,
            23552, 24576, 25600, 26624, 27648, 28672, 29696, 30720,
        ],
    ),
    (8192, &[16384, 20480, 24576, 28672, 32768, 36864, 40960, 45056, 49152, 53248, 57344, 61440]),
    (16384, &[32768, 40960, 49152, 57344, 65536, 73728, 81920, 90112, 98304, 106496, 114688, 122880]),
];

/// The memory values (MiB) Fargate offers with `cpu` units, or `None` when `cpu` is not a Fargate size.
pub fn fargate_memory_values(cpu: u32) -> Option<&'static [u32]> {
    FARGATE_CPU_MEMORY.iter().find(|(c, _)| *c == cpu).map(|(_, m)| *m)
}

/// Whether `cpu` units is one of Fargate's task cpu values.
pub fn is_fargate_cpu(cpu: u32) -> bool {
    fargate_memory_values(cpu).is_some()
}

/// Whether (`cpu` units, `memory` MiB) is a task size Fargate offers.
pub fn is_valid_fargate_combination(cpu: u32, memory: u32) -> bool {
    fargate_memory_values(cpu).is_some_and(|m| m.contains(&memory))
}

/// Parses a task-level `cpu` string into CPU units: an integer number of units ("1024"), or a number of
/// vCPUs followed by `vCPU` in any case, with or without a space ("1 vCPU", ".25 vcpu", "0.5vCPU").
/// Returns `None` for anything else, including a vCPU count that is not a whole number of units.
pub fn parse_cpu(s: &str) -> Option<u32> {
    parse_quantity(s, &[("vcpu", 1024)])
}

/// Parses a task-level `memory` string into MiB: an integer number of MiB ("2048"), or a number of GB
/// followed by `GB` (or `GiB`) in any case, with or without a space ("2 GB", "0.5GB"). ECS's "GB" means
/// GiB: "1 GB" is 1024 MiB. Returns `None` for anything else, including a size that is not whole MiB.
pub fn parse_memory(s: &str) -> Option<u32> {
    parse_quantity(s, &[("gib", 1024), ("gb", 1024)])
}

/// A plain non-negative integer, or a decimal number followed by one of `units` (case-insensitive,
/// optionally separated by whitespace) whose scaled value is a whole number that fits in a `u32`.
fn parse_quantity(s: &str, units: &[(&str, u64)]) -> Option<u32> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    for (suffix, scale) in units {
        if let Some(number) = lower.strip_suffix(suffix) {
            return scaled_decimal(number.trim_end(), *scale);
        }
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok()
}

/// `number * scale` for a decimal `number` ("1", "0.25", ".5", "2."), if that is a whole number in range.
fn scaled_decimal(number: &str, scale: u64) -> Option<u32> {
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let digits_only = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(int_part) || !digits_only(frac_part) || int_part.len() > 12 || frac_part.len() > 12 {
        return None;
    }
    let int_value: u128 = if int_part.is_empty() { 0 } else { int_part.parse().ok()? };
    let frac_value: u128 = if frac_part.is_empty() { 0 } else { frac_part.parse().ok()? };
    let denominator = 10u128.pow(u32::try_from(frac_part.len()).ok()?);
    let numerator = (int_value * denominator + frac_value) * u128::from(scale);
    let whole = numerator / denominator;
    if whole * denominator != numerator {
        return None;
    }
    u32::try_from(whole).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matrix as AWS-PROTOCOLS §6.1 states it, written independently of the table: (cpu, first, last, step).
    const RULES: &[(u32, u32, u32, u32)] = &[
        (512, 1024, 4096, 1024),
        (1024, 2048, 8192, 1024),
        (2048, 4096, 16384, 1024),
        (4096, 8192, 30720, 1024),
        (8192, 16384, 61440, 4096),
        (16384, 32768, 122880, 8192),
    ];

    fn expected_matrix() -> Vec<(u32, Vec<u32>)> {
        let mut m = vec![(256, vec![512, 1024, 2048])];
        for &(cpu, first, last, step) in RULES {
            m.push((cpu, (first..=last).step_by(step as usize).collect()));
        }
        m
    }

    #[test]
    fn table_matches_the_documented_matrix() {
        let table: Vec<(u32, Vec<u32>)> = FARGATE_CPU_MEMORY.iter().map(|(c, m)| (*c, m.to_vec())).collect();
        assert_eq!(table, expected_matrix());
    }

    #[test]
    fn every_valid_pair_is_accepted() {
        let mut n = 0;
        for (cpu, memories) in expected_matrix() {
            for memory in memories {
                assert!(is_valid_fargate_combination(cpu, memory), "{cpu}/{memory} should be valid");
                assert!(is_fargate_cpu(cpu));
                n += 1;
            }
        }
        assert_eq!(n, 3 + 4 + 7 + 13 + 23 + 12 + 12);
    }

    #[test]
    fn invalid_pairs_are_rejected() {
        // (cpu, memory, why)
        let mut cases: Vec<(u32, u32, String)> = vec![
            (256, 256, "below min".into()),
            (256, 3072, "above max".into()),
            (256, 1536, "off the 256 list".into()),
            (256, 4096, "256 max is 2048".into()),
            (512, 512, "one step below".into()),
            (128, 512, "unknown cpu".into()),
            (128, 1024, "unknown cpu".into()),
            (3072, 6144, "unknown cpu".into()),
            (0, 0, "zero".into()),
            (1000, 2048, "unknown cpu".into()),
            (32768, 65536, "unknown cpu".into()),
        ];
        for &(cpu, first, last, step) in RULES {
            cases.push((cpu, first - step, format!("{cpu}: one step below min")));
            cases.push((cpu, last + step, format!("{cpu}: one step above max")));
            cases.push((cpu, first + 1, format!("{cpu}: off-step")));
            cases.push((cpu, first + step / 2, format!("{cpu}: half step")));
            cases.push((cpu, last - 1, format!("{cpu}: just below max")));
        }
        // The 8 and 16 vCPU sizes step by 4 and 8 GiB: 1 GiB steps in their range are invalid.
        cases.push((8192, 17408, "8192: 1 GiB step".into()));
        cases.push((16384, 36864, "16384: 4 GiB step".into()));
        for (cpu, memory, why) in cases {
            assert!(!is_valid_fargate_combination(cpu, memory), "{cpu}/{memory} ({why}) should be invalid");
        }
        assert!(fargate_memory_values(128).is_none());
        assert!(fargate_memory_values(3072).is_none());
    }

    #[test]
    fn cpu_strings() {
        let cases: &[(&str, Option<u32>)] = &[
            ("256", Some(256)),
            ("1024", Some(1024)),
            ("16384", Some(16384)),
            ("  512 ", Some(512)),
            ("1 vCPU", Some(1024)),
            ("1 vcpu", Some(1024)),
            ("1vCPU", Some(1024)),
            ("2 VCPU", Some(2048)),
            (".25 vCPU", Some(256)),
            ("0.25 vCPU", Some(256)),
            ("0.5 vcpu", Some(512)),
            ("16 vCPU", Some(16384)),
            ("4.0 vCPU", Some(4096)),
            ("0.1 vCPU", None), // 102.4 units
            ("1 GB", None),
            ("vCPU", None),
            (". vCPU", None),
            ("", None),
            ("   ", None),
            ("-1", None),
            ("+1", None),
            ("1.5", None),
            ("1e3", None),
            ("abc", None),
            ("1 vCPUs", None),
            ("1 v CPU", None),
            ("99999999999", None),
            ("9999999 vCPU", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_cpu(s), *want, "parse_cpu({s:?})");
        }
    }

    #[test]
    fn memory_strings() {
        let cases: &[(&str, Option<u32>)] = &[
            ("512", Some(512)),
            ("122880", Some(122880)),
            ("2 GB", Some(2048)),
            ("2GB", Some(2048)),
            ("2 gb", Some(2048)),
            ("0.5GB", Some(512)),
            (".5 GB", Some(512)),
            ("1.5 GB", Some(1536)),
            ("30 GB", Some(30720)),
            ("2 GiB", Some(2048)),
            ("0.3 GB", None), // 307.2 MiB
            ("2 MB", None),
            ("1 vCPU", None),
            ("GB", None),
            ("", None),
            ("-512", None),
            ("512.0", None),
            ("two GB", None),
            ("5000000 GB", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_memory(s), *want, "parse_memory({s:?})");
        }
    }

    #[test]
    fn string_forms_feed_the_matrix() {
        // The "1 vCPU" / "2 GB" forms, converted, are checked against the same matrix.
        let pairs: &[(&str, &str, bool)] = &[
            ("1 vCPU", "2 GB", true),
            (".25 vCPU", "0.5GB", true),
            ("0.5 vcpu", "4 GB", true),
            ("4 vCPU", "30 GB", true),
            ("8 vCPU", "60 GB", true),
            ("16 vCPU", "120 GB", true),
            ("1 vCPU", "1 GB", false),
            ("0.25 vCPU", "3 GB", false),
            ("8 vCPU", "17 GB", false),
            ("3 vCPU", "6 GB", false),
        ];
        for (cpu, memory, valid) in pairs {
            let c = parse_cpu(cpu).unwrap_or(0);
            let m = parse_memory(memory).unwrap_or(0);
            assert_eq!(is_valid_fargate_combination(c, m), *valid, "{cpu} / {memory}");
        }
    }
}
